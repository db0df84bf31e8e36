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

The names below are loaded on first use: `controllers.core` imports `session.stream`, and a text
chat or the demo must not load LiveKit and numpy through this package's `__init__`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wespoke_tui.session.call_session import CallSession
    from wespoke_tui.session.data import DataHandler
    from wespoke_tui.session.parts import CallParts
    from wespoke_tui.session.quality import QualityMonitor
    from wespoke_tui.session.recording import CallRecorder, CallRecording
    from wespoke_tui.session.room_events import RoomEventHandler
    from wespoke_tui.session.stream import EventStream
    from wespoke_tui.session.turns import ResponseTimer, TurnTimer

__all__ = [
    "CallParts",
    "CallRecorder",
    "CallRecording",
    "CallSession",
    "DataHandler",
    "EventStream",
    "QualityMonitor",
    "ResponseTimer",
    "RoomEventHandler",
    "TurnTimer",
]


def __getattr__(name: str) -> Any:
    # Plain imports (not importlib), so tests/test_layers.py sees these dependencies.
    if name == "CallSession":
        from wespoke_tui.session.call_session import CallSession

        return CallSession
    if name == "RoomEventHandler":
        from wespoke_tui.session.room_events import RoomEventHandler

        return RoomEventHandler
    if name == "CallParts":
        from wespoke_tui.session.parts import CallParts

        return CallParts
    if name == "DataHandler":
        from wespoke_tui.session.data import DataHandler

        return DataHandler
    if name == "EventStream":
        from wespoke_tui.session.stream import EventStream

        return EventStream
    if name == "QualityMonitor":
        from wespoke_tui.session.quality import QualityMonitor

        return QualityMonitor
    if name in ("CallRecorder", "CallRecording"):
        from wespoke_tui.session.recording import CallRecorder, CallRecording

        return {"CallRecorder": CallRecorder, "CallRecording": CallRecording}[name]
    if name in ("ResponseTimer", "TurnTimer"):
        from wespoke_tui.session.turns import ResponseTimer, TurnTimer

        return {"ResponseTimer": ResponseTimer, "TurnTimer": TurnTimer}[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
