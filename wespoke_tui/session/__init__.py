"""The voice call over LiveKit: `CallSession` and the parts it is made of.

    call_session  `CallSession`: the state machine, setup, audio paths, teardown
    room_events   `RoomEventHandler`: what the room reports, turned into call events (the
                  session owns one, built with the callbacks it needs)
    parts         `CallParts` (what one call holds), the connect policy, small helpers
    data          `DataHandler`: data messages, transcription streams, history, typed lines
    stream        `EventStream`: the one event stream of a controller (also the chat's and demo's)
    quality       `QualityMonitor`: the call-quality figures, rated
    recording     `CallRecorder`, `CallRecording`: `--record DIR`
    turns         `TurnTimer`, `ResponseTimer`: turn-taking measured in the audio

The numpy mixing of the assistant's tracks is `wespoke_tui.audio.mixing`.

`CallSession` is loaded on first use: `controllers.core` imports `session.stream`, and a text
chat or the demo must not load LiveKit and numpy through this package's `__init__`. The other
parts are imported from their modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wespoke_tui.session.call_session import CallSession

__all__ = ["CallSession"]


def __getattr__(name: str) -> Any:
    # A plain import (not importlib), so tests/test_layers.py sees the dependency.
    if name == "CallSession":
        from wespoke_tui.session.call_session import CallSession

        return CallSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
