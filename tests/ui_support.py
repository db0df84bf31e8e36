"""Test parts for the UI: a recording controller for states a real session cannot reach on cue
(reconnecting, a transcript mid-stream), a null audio backend, and a frozen clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from textual.events import Key
from textual.keys import _character_to_key

from tests.support.waiting import eventually
from wespoke_tui.audio.base import FRAME_SAMPLES
from wespoke_tui.events import (
    VOICE,
    CallEvent,
    CallRecordDeleted,
    CallStarted,
    CallState,
    MuteChanged,
    RecordingChanged,
    StateChanged,
)
from wespoke_tui.settings import Settings
from wespoke_tui.ui.app import WespokeApp, build_app
from wespoke_tui.ui.screens.devices import DeviceEntry

FIXED_DEVICES = [
    DeviceEntry("Built-in Microphone", True, False),
    DeviceEntry("USB Headset", True, True),
    DeviceEntry("Built-in Speakers", False, True),
]


class FrozenClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingController:
    """A `CallController` that plays a scripted call and records what the UI asked of it.

    `start()` goes through token, connect and connected (with `CallStarted`), unless
    `hold_connect` is set: then it stays in `connecting` until hung up.
    """

    capabilities = VOICE

    def __init__(self, *, assistant_name: str = "Test Assistant", call_id: str = "call_123",
                 hold_connect: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.assistant_name = assistant_name
        self.call_id = call_id
        self.hold_connect = hold_connect
        self._state = CallState.IDLE
        self._muted = False
        self._queue: asyncio.Queue[CallEvent | None] = asyncio.Queue()
        self._released = asyncio.Event()

    @property
    def state(self) -> CallState:
        return self._state

    @property
    def muted(self) -> bool:
        return self._muted

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def emit(self, *events: CallEvent) -> None:
        for event in events:
            if isinstance(event, StateChanged):
                self._state = event.state
            self._queue.put_nowait(event)

    def move_to(self, state: CallState, error: Any = None) -> None:
        self.emit(StateChanged(state, self._state, error))

    async def events(self) -> AsyncIterator[CallEvent]:
        while (event := await self._queue.get()) is not None:
            yield event

    async def start(self) -> None:
        self.calls.append(("start", None))
        self.move_to(CallState.REQUESTING_TOKEN)
        self.emit(CallStarted(self.call_id, "room", "asst_test", self.assistant_name))
        self.move_to(CallState.CONNECTING)
        if self.hold_connect:
            await self._released.wait()
            return
        self.move_to(CallState.CONNECTED)

    async def hang_up(self) -> None:
        self.calls.append(("hang_up", None))
        self._released.set()
        if self._state.in_call:
            self.move_to(CallState.ENDING)
            self.move_to(CallState.ENDED)

    async def set_muted(self, muted: bool) -> None:
        self.calls.append(("set_muted", muted))
        self._muted = muted
        self.emit(MuteChanged(muted))

    async def send_text(self, text: str) -> None:
        self.calls.append(("send_text", text))

    async def set_recording(self, on: bool) -> bool:
        self.calls.append(("set_recording", on))
        if self._state is not CallState.CONNECTED and on:
            return False
        self.emit(RecordingChanged(on, "/recordings/call_123.wav"))
        return True

    async def delete_record(self) -> bool:
        self.calls.append(("delete_record", None))
        if self._state not in (CallState.ENDED, CallState.FAILED):
            return False
        self.emit(CallRecordDeleted(self.call_id))
        return True

    async def aclose(self) -> None:
        self.calls.append(("aclose", None))
        if self._state.in_call:
            await self.hang_up()
        self._queue.put_nowait(None)


class NullInput:
    """A microphone that plays `frames` (int16, FRAME_SAMPLES each) then silence, in real time."""

    def __init__(self, frames: Iterable[np.ndarray] = (), realtime: bool = True) -> None:
        self._frames = list(frames)
        self._realtime = realtime
        self._closed = False
        self.started = False
        self.delivered = 0  # frames the caller has taken, scripted and silent

    @property
    def played(self) -> bool:
        """Every scripted frame has been taken."""
        return self.delivered >= len(self._frames)

    async def start(self) -> None:
        self.started = True

    async def frames(self) -> AsyncIterator[np.ndarray]:
        """Frame n is due n × 10 ms after the first, as a sound card's are: a loop woken late
        gets the frames that came due meanwhile at once (no drift on a busy machine)."""
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        loop = asyncio.get_running_loop()
        first = loop.time()
        index = 0
        while not self._closed:
            yield self._frames[index] if index < len(self._frames) else silence
            index += 1
            self.delivered = index
            await asyncio.sleep(max(0.0, first + index * 0.01 - loop.time()) if self._realtime else 0)  # pacing

    async def aclose(self) -> None:
        self._closed = True


class NullOutput:
    """A speaker that keeps what it was given."""

    def __init__(self) -> None:
        self.written: list[np.ndarray] = []
        self.cleared = 0
        self.started = False
        self.closed = False

    async def start(self) -> None:
        self.started = True

    def write(self, frame: np.ndarray) -> None:
        self.written.append(frame.copy())

    def clear(self) -> None:
        self.cleared += 1

    async def aclose(self) -> None:
        self.closed = True


class NullBackend:
    """An `AudioBackend` with scripted microphone frames and a recording speaker."""

    def __init__(self, mic_frames: Iterable[np.ndarray] = (), realtime: bool = True) -> None:
        self.input = NullInput(mic_frames, realtime)
        self.output = NullOutput()

    def open_input(self) -> NullInput:
        return self.input

    def open_output(self) -> NullOutput:
        return self.output

    def health(self) -> dict[str, float]:
        return {}


def settings_for(lang: str = "en", **changes: Any) -> Settings:
    values: dict[str, Any] = dict(api_key="pk_test_" + "x" * 24, assistant_id="asst_test", lang=lang,
                                  mic_consent_given=True, config_path=Path("/nonexistent/config.toml"))
    values.update(changes)
    return Settings(**values)


def make_app(controller: Any, settings: Settings | None = None, **options: Any) -> WespokeApp:
    """The app on `controller`, with a frozen clock, fixed devices and no cursor blink."""
    options.setdefault("clock", FrozenClock())
    options.setdefault("devices_provider", lambda: FIXED_DEVICES)
    options.setdefault("cursor_blink", False)
    return build_app(settings or settings_for(), lambda _settings: controller, **options)


async def until(pilot: Any, predicate: Any, timeout: float = 5.0) -> None:
    """Let the app run until `predicate()` holds (events travel through workers)."""
    await eventually(predicate, timeout, 0.02, what="the app", pause=pilot.pause)


async def type_text(pilot: Any, text: str) -> None:
    """Type `text` into the focused widget: the key events `pilot.press(*text)` sends, sent at once
    (as a fast typist's), then wait until the app has handled them. `pilot.press` waits for the
    app to go idle after each key, some 60 ms: 2 s for an API key, most of a setup test's time."""
    app = pilot.app
    for character in text:
        key = Key(_character_to_key(character), character)
        key.set_sender(app)
        app.post_message(key)
    await pilot.pause()


def screen_text(app: Any) -> str:
    """Everything the user sees on the current screen (modal and background), as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def widget_text(widget: Any) -> str:
    """What `widget` shows on screen, as plain text (its region of the screen)."""
    region = widget.region
    strips = widget.screen._compositor.render_strips()
    rows = strips[region.y : region.y + region.height]
    return "\n".join(strip.text[region.x : region.x + region.width].rstrip() for strip in rows)
