"""A controller's event stream, recorded in the background, and waiting on it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from wespoke_tui.events import CallEvent, CallState, StateChanged, TranscriptItem


class EventSource(Protocol):
    def events(self) -> AsyncIterator[CallEvent]: ...


class EventRecorder:
    """Consumes `source.events()` (a session, a chat or the demo) in the background and keeps every
    event with its arrival time (`time.monotonic()`), so a test can ask for what came `since` a
    moment. `quiet` names event types left out of the failure message (e.g. the 10 Hz levels)."""

    def __init__(self, source: EventSource, *, quiet: tuple[type, ...] = ()) -> None:
        self.items: list[tuple[float, CallEvent]] = []
        self._quiet = quiet
        self._changed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(source))

    async def _run(self, source: EventSource) -> None:
        async for event in source.events():
            self.items.append((time.monotonic(), event))
            self._changed.set()

    @property
    def events(self) -> list[CallEvent]:
        """Every event so far, in order, without times."""
        return [e for _, e in self.items]

    def of(self, kind: type, since: float = 0.0) -> list[Any]:
        return [e for t, e in self.items if isinstance(e, kind) and t >= since]

    def states(self, since: float = 0.0) -> list[CallState]:
        return [e.state for e in self.of(StateChanged, since)]

    def lines(self) -> list[TranscriptItem]:
        return self.of(TranscriptItem)

    def finals(self) -> list[tuple[str, str]]:
        return [(e.role, e.text) for e in self.of(TranscriptItem) if e.final]

    async def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 10.0, since: float = 0.0) -> Any:
        """The first event (arrived at or after `since`) for which `predicate(event)` holds; waits
        for new events up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for t, event in self.items:
                if t >= since and predicate(event):
                    return event
            if not await self._next(deadline):
                raise AssertionError(f"no matching event within {timeout} s; recent: {self._recent()}")

    async def until(self, condition: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until `condition()` (about the events so far) holds, re-checked on each new event."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if not await self._next(deadline):
                raise AssertionError(f"timed out after {timeout} s; recent: {self._recent()}")

    async def state(self, state: CallState, timeout: float = 10.0, since: float = 0.0) -> StateChanged:
        return await self.wait_for(lambda e: isinstance(e, StateChanged) and e.state == state, timeout, since)

    async def _next(self, deadline: float) -> bool:
        """Wait for the next event; False once `deadline` has passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self._changed.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    def _recent(self) -> list[CallEvent]:
        return [e for _, e in self.items if not isinstance(e, self._quiet)][-20:]

    async def aclose(self) -> None:
        await asyncio.wait_for(self._task, 5)
