"""The offline echo assistant on a scripted microphone and a recording speaker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from tests.support.events import EventRecorder
from tests.support.waiting import eventually
from tests.ui_support import NullBackend
from wespoke_tui.audio.base import FRAME_SAMPLES, SAMPLE_RATE
from wespoke_tui.audio.meter import rms_dbfs
from wespoke_tui.audio.wav import read_wav_48k_mono, write_wav_48k_mono
from wespoke_tui.controllers.demo import DemoController, greeting_path
from wespoke_tui.errors import SPEAKER_ERROR, CallError, describe
from wespoke_tui.events import CallState, ErrorEvent, MicLevel
from wespoke_tui.settings import Settings


def tone(seconds: float, amplitude: float = 0.3, hz: float = 440.0) -> list[np.ndarray]:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    samples = np.round(amplitude * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    return [samples[i : i + FRAME_SAMPLES] for i in range(0, samples.size, FRAME_SAMPLES)]


def silence(seconds: float) -> list[np.ndarray]:
    return [np.zeros(FRAME_SAMPLES, dtype=np.int16)] * round(seconds * 100)


@pytest.fixture
def short_greeting(tmp_path: Path) -> Path:
    path = tmp_path / "greeting.wav"
    write_wav_48k_mono(path, np.concatenate(tone(0.2, 0.5, 300.0)))
    return path


async def test_greets_then_repeats_what_was_said(short_greeting: Path) -> None:
    speech = tone(1.0)
    backend = NullBackend(silence(0.5) + speech)
    demo = DemoController(Settings(lang="en"), lambda: backend, greeting=short_greeting)
    rec = EventRecorder(demo)
    await demo.start()
    await rec.until(lambda: len(rec.states()) >= 3, timeout=8.0)
    assert rec.states()[:3] == [CallState.REQUESTING_TOKEN, CallState.CONNECTING, CallState.CONNECTED]
    await rec.until(lambda: any(line.text == "I repeated it back." for line in rec.lines()), timeout=8.0)

    lines = rec.lines()
    assert lines[0].role == "assistant" and lines[0].text == "Hi! Say something and I will repeat it."
    spoke = next(line for line in lines if line.role == "user")
    seconds = float(spoke.text.split("for ")[1].split(" s")[0])
    assert 0.9 <= seconds <= 1.2
    repeating = [line for line in lines if line.text in ("Repeating what you said…", "I repeated it back.")]
    assert [line.added for line in repeating] == [True, False]
    assert repeating[0].id == repeating[1].id  # one line, updated in place

    written = np.concatenate(backend.output.written)
    greeting_samples = 20 * FRAME_SAMPLES
    echo = written[greeting_samples:]
    loud = [rms_dbfs(echo[i : i + FRAME_SAMPLES]) > -20 for i in range(0, echo.size, FRAME_SAMPLES)]
    assert 95 <= sum(loud) <= 105  # the 1 s tone came back, once
    await demo.hang_up()
    assert demo.state is CallState.ENDED
    assert backend.output.closed
    await demo.aclose()


async def test_muted_speech_is_neither_recorded_nor_repeated(short_greeting: Path) -> None:
    backend = NullBackend(silence(0.5) + tone(1.0) + silence(1.0))
    demo = DemoController(Settings(lang="en"), lambda: backend, greeting=short_greeting)
    rec = EventRecorder(demo)
    await demo.set_muted(True)
    await demo.start()
    await eventually(lambda: backend.input.played, timeout=10, what="the speech and the second of silence after it")
    assert not [line for line in rec.lines() if line.role == "user"]
    assert len(backend.output.written) <= 25  # the greeting only
    # The meter still reads the microphone while muted, so the UI can say "you are muted".
    assert any(isinstance(e, MicLevel) and e.muted and e.rms_dbfs > -20 for e in rec.events)
    await demo.aclose()
    await rec.until(lambda: rec.states()[-1] is CallState.ENDED, timeout=8.0)


async def test_hang_up_during_the_greeting_stops_playback() -> None:
    backend = NullBackend()
    demo = DemoController(Settings(lang="tr"), lambda: backend)
    rec = EventRecorder(demo)
    await demo.start()
    await eventually(lambda: len(backend.output.written) >= 10, what="the greeting playing")
    await demo.hang_up()
    written_at_hang_up = len(backend.output.written)
    await asyncio.sleep(0.3)  # a window: nothing more is written
    await rec.until(lambda: CallState.ENDED in rec.states(), timeout=8.0)
    assert len(backend.output.written) == written_at_hang_up
    greeting_frames = read_wav_48k_mono(greeting_path("tr")).size // FRAME_SAMPLES
    assert written_at_hang_up < greeting_frames / 2
    assert rec.states()[-2:] == [CallState.ENDING, CallState.ENDED]
    assert rec.lines()[0].text == "Merhaba! Bir şey söyleyin, tekrar edeyim."
    assert backend.input.started and backend.output.closed
    await demo.aclose()


async def test_no_speaker_fails_with_the_user_message() -> None:
    class NoSpeaker(NullBackend):
        def open_output(self):
            output = super().open_output()

            async def fail() -> None:
                raise CallError.of(SPEAKER_ERROR, "no output device")

            output.start = fail
            return output

    demo = DemoController(Settings(lang="tr"), NoSpeaker)
    rec = EventRecorder(demo)
    await demo.start()
    await eventually(lambda: demo.state is CallState.FAILED)
    await rec.until(lambda: rec.of(ErrorEvent))
    errors = [e for e in rec.events if isinstance(e, ErrorEvent)]
    assert errors and errors[0].fatal and describe(errors[0].error, "tr").startswith("Ses çıkış aygıtı bulunamadı")
    await demo.aclose()


async def test_typed_text_is_answered(short_greeting: Path) -> None:
    demo = DemoController(Settings(lang="en"), NullBackend, greeting=short_greeting)
    rec = EventRecorder(demo)
    await demo.send_text("before the call")  # ignored: no call
    await demo.start()
    await demo.send_text("hello there")
    await rec.until(lambda: "You wrote: hello there" in [line.text for line in rec.lines()])
    texts = [line.text for line in rec.lines()]
    assert "before the call" not in texts
    assert "hello there" in texts and "You wrote: hello there" in texts
    await demo.aclose()


def test_greeting_assets_are_small_16k_mono() -> None:
    import wave

    for lang in ("tr", "en"):
        path = greeting_path(lang)
        assert path.stat().st_size < 100_000
        with wave.open(str(path)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
            assert 1.0 < wav.getnframes() / 16000 < 3.5


async def test_demo_in_the_app_greets_echoes_mutes_and_hangs_up(short_greeting: Path) -> None:
    from tests.ui_support import make_app, settings_for, until, widget_text
    from wespoke_tui.ui.widgets.transcript import Transcript, TranscriptLine

    backend = NullBackend(silence(0.5) + tone(0.8))
    settings = settings_for("en", demo=True, api_key=None, assistant_id=None)
    demo = DemoController(settings, lambda: backend, greeting=short_greeting)
    app = make_app(demo, settings)
    async with app.run_test(size=(100, 32)) as pilot:
        assert "DEMO" in widget_text(app.query_one("#demo-banner"))
        await pilot.press("c")
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        assert app.status.assistant_name == "Echo (demo)"
        transcript = app.query_one(Transcript)

        def lines() -> list[str]:
            return [line.render().plain for line in transcript.query(TranscriptLine)]

        await until(pilot, lambda: "Echo (demo): I repeated it back." in lines(), timeout=8)
        assert lines()[0] == "Echo (demo): Hi! Say something and I will repeat it."
        assert lines()[1].startswith("You: (you spoke for 0.")
        assert len(lines()) == 3  # "Repeating…" became "I repeated it back." in place
        await pilot.press("m")
        await until(pilot, lambda: app.status.muted)
        assert demo.muted
        await pilot.press("h", "y")
        await until(pilot, lambda: app.status.state is CallState.ENDED)
        assert backend.output.closed
