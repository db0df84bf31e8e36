"""Snapshots (pytest-textual-snapshot) of every screen and call state, in both languages.

Time is frozen (an injected clock), cursors do not blink, devices are a fixed list.
Regenerate with `--snapshot-update` and look at the SVGs before committing them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.ui_support import FrozenClock, NullBackend, RecordingController, make_app, settings_for, type_text, until
from wespoke_tui.audio.wav import write_wav_48k_mono
from wespoke_tui.controllers.demo import DemoController
from wespoke_tui.errors import UNAUTHORIZED, CallError
from wespoke_tui.events import (
    AgentState,
    AgentStateChanged,
    AssistantLevel,
    CallQuality,
    CallState,
    ErrorEvent,
    MetricsEvent,
    MicLevel,
    QualityLevel,
    RateLimitInfo,
    ReconnectAttempt,
    ToolEvent,
    TranscriptItem,
)

SIZE = (100, 32)
LANGS = pytest.mark.parametrize("lang", ["en", "tr"])


def conversation(lang: str) -> list:
    user, reply = (("Merhaba, siparişim nerede?", "Hemen bakıyorum, sipariş numaranız"),
                   ("Hi, where is my order?", "Let me check, your order number is")) [lang == "en"]
    return [
        RateLimitInfo(97, 100),
        TranscriptItem("u1", "user", user, final=True, added=True),
        ToolEvent("complete", "lookup_order"),
        TranscriptItem("a1", "assistant", reply[:12], final=False, added=True),
        TranscriptItem("a1", "assistant", reply, final=False, added=False),
        AgentStateChanged(AgentState.SPEAKING),
        MetricsEvent(latency_ms=640.0),
        MicLevel(-52.0, -45.0, muted=False),
        AssistantLevel(-18.0, -12.0),
    ]


def in_call(lang: str, *events, clock: FrozenClock | None = None, muted: bool = False):
    """An app in a connected call 42 s old, after `events`; returns (app, run_before)."""
    clock = clock or FrozenClock()
    controller = RecordingController()
    app = make_app(controller, settings_for(lang), clock=clock)

    async def run_before(pilot) -> None:
        await pilot.press("c")
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        if muted:
            await pilot.press("m")
            await until(pilot, lambda: app.status.muted)
        for event in events:
            if callable(event):
                event(controller, clock)
            else:
                controller.emit(event)
            await pilot.pause(0.01)
        clock.advance(42)
        app._tick_duration()
        await pilot.pause(0.05)

    return app, run_before


@LANGS
def test_idle(snap_compare, lang: str) -> None:
    assert snap_compare(make_app(RecordingController(), settings_for(lang)), terminal_size=SIZE)


@LANGS
def test_setup_screen(snap_compare, lang: str) -> None:
    app = make_app(RecordingController(), settings_for(lang, api_key=None, assistant_id=None))

    async def run_before(pilot) -> None:
        # The key is typed, and shows masked; the assistant id is missing, so the form says so.
        await pilot.pause()
        await type_text(pilot, "pk_test_secret123")
        await pilot.press("enter", "enter")

    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)


def test_connecting(snap_compare) -> None:
    controller = RecordingController(hold_connect=True)
    app = make_app(controller)

    async def run_before(pilot) -> None:
        await pilot.press("c")
        await until(pilot, lambda: app.status.state is CallState.CONNECTING)

    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)


@LANGS
def test_connected_with_transcript(snap_compare, lang: str) -> None:
    app, run_before = in_call(lang, *conversation(lang))
    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)


@LANGS
def test_muted_while_talking(snap_compare, lang: str) -> None:
    def talk(controller, clock) -> None:
        controller.emit(MicLevel(-22.0, -15.0, muted=True))

    def later(controller, clock) -> None:
        clock.advance(0.4)
        controller.emit(MicLevel(-21.0, -15.0, muted=True))

    app, run_before = in_call(lang, talk, later, muted=True)
    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)


@LANGS
def test_reconnecting(snap_compare, lang: str) -> None:
    def reconnect(controller, clock) -> None:
        controller.emit(ReconnectAttempt(2, 3))
        controller.move_to(CallState.RECONNECTING)

    app, run_before = in_call(lang, TranscriptItem("u1", "user", "…", True, True), reconnect)
    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)


@LANGS
def test_failed_with_error(snap_compare, lang: str) -> None:
    def fail(controller, clock) -> None:
        error = CallError.of(UNAUTHORIZED, "Invalid API key", status=401)
        controller.emit(ErrorEvent(error, fatal=True))
        controller.move_to(CallState.FAILED, error)

    app, run_before = in_call(lang, fail)
    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)


@LANGS
def test_confirm_hang_up(snap_compare, lang: str) -> None:
    app, run_before = in_call(lang)

    async def then_h(pilot) -> None:
        await run_before(pilot)
        await pilot.press("h")

    assert snap_compare(app, run_before=then_h, terminal_size=SIZE)


@LANGS
def test_confirm_delete_record(snap_compare, lang: str) -> None:
    app, run_before = in_call(lang)

    async def hang_up_then_x(pilot) -> None:
        await run_before(pilot)
        await pilot.press("h", "y")
        await until(pilot, lambda: app.status.state is CallState.ENDED)
        await pilot.press("x")

    assert snap_compare(app, run_before=hang_up_then_x, terminal_size=SIZE)


@LANGS
def test_devices_screen(snap_compare, lang: str) -> None:
    app = make_app(RecordingController(), settings_for(lang, input_device="USB Headset"))
    assert snap_compare(app, press=["d"], terminal_size=SIZE)


@LANGS
def test_help(snap_compare, lang: str) -> None:
    app = make_app(RecordingController(), settings_for(lang))
    assert snap_compare(app, press=["question_mark"], terminal_size=SIZE)


@LANGS
def test_mic_consent(snap_compare, lang: str) -> None:
    app = make_app(RecordingController(), settings_for(lang, mic_consent_given=False))
    assert snap_compare(app, press=["c"], terminal_size=SIZE)


@LANGS
def test_demo(snap_compare, lang: str, tmp_path: Path) -> None:
    """The real demo controller on a silent microphone, after a short greeting."""
    greeting = tmp_path / "greeting.wav"
    write_wav_48k_mono(greeting, np.zeros(4800, dtype=np.int16))
    settings = settings_for(lang, demo=True, api_key=None, assistant_id=None)
    demo = DemoController(settings, NullBackend, greeting=greeting)
    app = make_app(demo, settings)

    async def run_before(pilot) -> None:
        await pilot.press("c")
        await until(pilot, lambda: app.status.agent_state is AgentState.LISTENING)
        await pilot.pause(0.1)

    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)


@LANGS
def test_recording(snap_compare, lang: str) -> None:
    app, run_before = in_call(lang, *conversation(lang))

    async def then_r(pilot) -> None:
        await run_before(pilot)
        await pilot.press("r")
        await until(pilot, lambda: app.status.recording)
        await pilot.pause(0.05)

    assert snap_compare(app, run_before=then_r, terminal_size=SIZE)


@LANGS
def test_quality_panel(snap_compare, lang: str) -> None:
    """Fair: the round trip is past 300 ms; the status bar says so in amber."""
    quality = CallQuality(QualityLevel.FAIR, rtt_ms=348.0, jitter_ms=12.0, packet_loss_pct=0.4, bitrate_in_kbps=41.0,
                          bitrate_out_kbps=38.0, playback_buffer_ms=46.0, underruns=0, aec_delay_ms=52.0,
                          response_ms=910.0)
    app, run_before = in_call(lang, *conversation(lang), quality)

    async def then_s(pilot) -> None:
        await run_before(pilot)
        await pilot.press("s")
        await pilot.pause(0.05)

    assert snap_compare(app, run_before=then_s, terminal_size=(100, 36))


def test_poor_quality_in_the_status_bar(snap_compare) -> None:
    app, run_before = in_call("en", CallQuality(QualityLevel.POOR, rtt_ms=40.0, packet_loss_pct=12.5))
    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)
