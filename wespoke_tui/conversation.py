"""What every conversation controller (the voice call, the text chat, the demo) needs and writes
once: its state and its changes, the start guard, the event stream the UI and the headless runner
read, and the background tasks a hang-up must stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from wespoke_tui.errors import CallError
from wespoke_tui.event_stream import EventStream
from wespoke_tui.events import CallEvent, CallState, StateChanged

log = logging.getLogger(__name__)


class ControllerCore:
    """State, events and tasks of a controller. Subclasses add the conversation itself."""

    def __init__(self) -> None:
        self._stream = EventStream()
        self._state = CallState.IDLE
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False  # aclose() ran: no call starts again

    def _may_start(self) -> bool:
        """The start guard of every controller: not closed, and no call in progress or ending."""
        return not self._closed and not self._state.in_call and self._state is not CallState.ENDING

    @property
    def state(self) -> CallState:
        return self._state

    def events(self) -> AsyncIterator[CallEvent]:
        return aiter(self._stream)

    def _emit(self, event: CallEvent) -> None:
        self._stream.put(event)

    def _set_state(self, state: CallState, error: CallError | None = None) -> None:
        """A change of state, said once (setting the state it is in says nothing)."""
        if state == self._state:
            return
        previous, self._state = self._state, state
        log.info("state %s → %s", previous, state)
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
