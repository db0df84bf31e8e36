"""The one event stream of a call controller.

State, transcript and every other event is kept until read, in order. Meter-like events
(levels, audio health) are coalesced: at most one of each type waits in the stream, and it
is always the newest, so a slow consumer sees current levels and never an ever-growing queue.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from wespoke_tui.events import AssistantLevel, AudioHealth, CallEvent, MicLevel

COALESCED_TYPES: tuple[type, ...] = (MicLevel, AssistantLevel, AudioHealth)


class _Latest:
    """A place in the stream taken by the newest event of one coalesced type."""

    __slots__ = ("kind",)

    def __init__(self, kind: type) -> None:
        self.kind = kind


class EventStream:
    """A single-consumer stream of call events; `close()` ends the iteration after a drain."""

    def __init__(self) -> None:
        self._items: deque[CallEvent | _Latest] = deque()
        self._latest: dict[type, CallEvent] = {}
        self._wakeup = asyncio.Event()
        self._closed = False

    def put(self, event: CallEvent) -> None:
        if self._closed:
            return
        kind = type(event)
        if kind in COALESCED_TYPES:
            if kind not in self._latest:
                self._items.append(_Latest(kind))
            self._latest[kind] = event
        else:
            self._items.append(event)
        self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    @property
    def pending(self) -> int:
        return len(self._items)

    async def __aiter__(self) -> AsyncIterator[CallEvent]:
        while True:
            while self._items:
                item = self._items.popleft()
                if isinstance(item, _Latest):
                    yield self._latest.pop(item.kind)
                else:
                    yield item
            if self._closed:
                return
            self._wakeup.clear()
            await self._wakeup.wait()
