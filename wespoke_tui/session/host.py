"""What the parts of a call see of `CallSession`, and nothing more: `RoomEventSink`, `SessionHost`.

The session gives each part (the room's events, the playback, the audio path, the reports, the
setup, the teardown) itself as one of these protocols when it makes it; a part reaches the
session only through these members, so the type checker sees every use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Protocol

from livekit import rtc

from wespoke_tui.api import WespokeClient
from wespoke_tui.errors import CallError
from wespoke_tui.events import CallEvent, CallState
from wespoke_tui.session.parts import CallParts


class RoomEventSink(Protocol):
    """The session as `RoomEventHandler` sees it: the call's state, the event sink, its tasks,
    the teardown and the playback of the assistant's tracks."""


    @property
    def state(self) -> CallState: ...

    def set_state(self, state: CallState, error: CallError | None = None) -> None: ...

    def emit(self, event: CallEvent) -> None: ...

    def call_task(self, call: CallParts, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """A task of `call`: the teardown cancels it."""
        ...

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """A task of the session (hang-ups, `/end`): awaited at `aclose`, not cancelled with the call."""
        ...

    async def teardown(self, call: CallParts, error: CallError | None) -> None: ...

    def start_playback(self, call: CallParts, track: rtc.RemoteAudioTrack) -> None: ...

    def stop_playback(self, call: CallParts, track_sid: str) -> None: ...


class SessionHost(RoomEventSink, Protocol):
    """The session as its other parts see it: also whether the user muted, and the API client."""

    @property
    def muted(self) -> bool: ...

    def api(self) -> WespokeClient:
        """The session's one client, made when first used."""
        ...
