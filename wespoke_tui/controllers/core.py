"""What every controller needs and writes once: its state, the event stream the UI and the
headless runner read, and the background tasks a hang-up must stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from wespoke_tui.errors import CallError
from wespoke_tui.event_stream import EventStream
from wespoke_tui.events import CallEvent, CallState, StateChanged


class ControllerCore:
    """State, events and tasks of a controller. Subclasses add the conversation itself."""

    def __init__(self) -> None:
        self._stream = EventStream()
        self._state = CallState.IDLE
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def state(self) -> CallState:
        return self._state

    def events(self) -> AsyncIterator[CallEvent]:
        return aiter(self._stream)

    def _emit(self, event: CallEvent) -> None:
        self._stream.put(event)

    def _set_state(self, state: CallState, error: CallError | None = None) -> None:
        previous, self._state = self._state, state
        self._emit(StateChanged(state, previous, error))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _cancel_tasks(self, timeout: float) -> None:
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def _close_stream(self) -> None:
        self._stream.close()
