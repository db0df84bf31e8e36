"""The app on the real `CallSession`, the real LiveKit server and the test assistant (Pilot)."""

from __future__ import annotations

from pathlib import Path

from tests.ui_support import FrozenClock, settings_for, until, widget_text
from wespoke_tui.audio.wav import WavBackend
from wespoke_tui.events import CallState
from wespoke_tui.session import CallSession
from wespoke_tui.ui.app import build_app
from wespoke_tui.ui.widgets.quality_panel import QualityPanel
from wespoke_tui.ui.widgets.status_bar import StatusBar
from wespoke_tui.ui.widgets.transcript import Transcript, TranscriptLine


async def test_connected_call_streams_the_transcript_in_place(wespoke_stack, tmp_path: Path) -> None:
    settings = settings_for("en", api_url=wespoke_stack.api_url, api_key=wespoke_stack.api_key,
                            assistant_id=wespoke_stack.assistant_id)
    speaker = tmp_path / "speaker.wav"
    app = build_app(settings, lambda s: CallSession(s, lambda: WavBackend(None, speaker)),
                    clock=FrozenClock(), cursor_blink=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("c")
        await until(pilot, lambda: app.status.state is CallState.CONNECTED, timeout=20)
        transcript = app.query_one(Transcript)

        def lines() -> list[str]:
            return [line.render().plain for line in transcript.query(TranscriptLine)]

        await until(pilot, lambda: "Test Assistant: Merhaba, size nasıl yardımcı olabilirim?" in lines(), timeout=20)
        await until(pilot, lambda: app.status.latency_ms == 420, timeout=10)
        assert sum(line.startswith("Test Assistant: Merhaba") for line in lines()) == 1
        assert any("lookup_weather" in line for line in lines())
        status = " ".join(widget_text(app.query_one(StatusBar)).split())
        assert "Call: " in status and app.status.call_id and app.status.call_id in status
        # The README's screenshot: a real connected call.
        await pilot.pause(0.3)
        app.save_screenshot(str(tmp_path / "connected.svg"))
        await pilot.press("h", "y")
        await until(pilot, lambda: app.status.state is CallState.ENDED, timeout=10)
    wespoke_stack.assistants[-1].wait_for("user_left", timeout=10)
    assert (tmp_path / "connected.svg").read_text().startswith("<svg")


async def test_the_quality_panel_shows_figures_read_from_a_real_call(wespoke_stack, tmp_path: Path) -> None:
    settings = settings_for("tr", api_url=wespoke_stack.api_url, api_key=wespoke_stack.api_key,
                            assistant_id=wespoke_stack.assistant_id)
    app = build_app(settings, lambda s: CallSession(s, lambda: WavBackend(None, tmp_path / "speaker.wav")),
                    clock=FrozenClock(), cursor_blink=False)
    async with app.run_test(size=(100, 36)) as pilot:
        panel = app.query_one(QualityPanel)
        assert not panel.display
        await pilot.press("c")
        await until(pilot, lambda: app.status.state is CallState.CONNECTED, timeout=20)
        await pilot.press("s")
        assert panel.display
        # Figures from the room's statistics: a round trip, and the bitrates (measured between
        # two samples, so from the second one on).
        await until(pilot, lambda: panel.quality is not None and panel.quality.rtt_ms is not None
                    and panel.quality.bitrate_in_kbps is not None, timeout=20)
        await pilot.pause(0.05)
        quality = panel.quality
        assert quality is not None and quality.bitrate_out_kbps is not None
        shown = " ".join(widget_text(panel).split())
        assert f"Gidiş-dönüş {quality.rtt_ms:.0f} ms" in shown
        assert f"Gelen / giden {quality.bitrate_in_kbps:.0f} kbit/s / {quality.bitrate_out_kbps:.0f} kbit/s" in shown
        status = " ".join(widget_text(app.query_one(StatusBar)).split())
        assert f"Kalite: {({'good': 'iyi', 'fair': 'orta', 'poor': 'zayıf'})[quality.level.value]}" in status
        await pilot.press("s")
        assert not panel.display
        await pilot.press("h", "y")
        await until(pilot, lambda: app.status.state is CallState.ENDED, timeout=10)
