"""Call quality: the figures read from a real call's WebRTC statistics and audio engine, the last
response time measured in the audio, and the thresholds that rate them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from livekit.rtc import stats

from tests.test_session import Recorder, make_settings
from wespoke_tui.audio.wav import WavBackend, write_wav_48k_mono
from wespoke_tui.events import CallQuality, CallState, QualityLevel
from wespoke_tui.session import CallSession
from wespoke_tui.session.quality import QualityMonitor, rate

RATE = 48_000


def tone_wav(path: Path, lead_s: float, tone_s: float, tail_s: float, hz: float = 300.0) -> Path:
    t = np.arange(int(tone_s * RATE)) / RATE
    samples = np.concatenate([np.zeros(int(lead_s * RATE)), np.sin(2 * np.pi * hz * t) * 8000, np.zeros(int(tail_s * RATE))])
    write_wav_48k_mono(path, samples.astype(np.int16))
    return path


async def test_a_real_call_reports_its_connection_and_audio_each_second(wespoke_stack, tmp_path: Path) -> None:
    sent = tone_wav(tmp_path / "in.wav", 0.5, 8.0, 0.0)
    session = CallSession(make_settings(wespoke_stack.api), lambda: WavBackend(sent, tmp_path / "out.wav"))
    events = Recorder(session)
    await session.start()
    assert session.state is CallState.CONNECTED
    await events.wait_for(lambda e: isinstance(e, CallQuality) and e.bitrate_in_kbps is not None, timeout=10)
    await asyncio.sleep(3.0)
    await session.aclose()
    await events.aclose()
    samples = [q for q in events.of(CallQuality) if q.bitrate_in_kbps is not None]
    assert len(samples) >= 3
    last = samples[-1]
    print(f"call quality on loopback: {last}")
    assert last.rtt_ms is not None and 0 <= last.rtt_ms < 200
    assert last.jitter_ms is not None and last.jitter_ms < 60
    assert last.packet_loss_pct is not None and last.packet_loss_pct < 2
    assert last.bitrate_out_kbps is not None and last.bitrate_out_kbps > 8  # our tone, Opus-coded
    assert last.bitrate_in_kbps > 8  # the echo of it
    assert all(q.level is rate(q) for q in samples)


@pytest.mark.assistant_options(no_echo=True, report_frames=True, no_script=True)
async def test_the_last_response_time_is_measured_from_the_end_of_speech_to_the_answer_heard(
    wespoke_stack, tmp_path: Path
) -> None:
    sent = tone_wav(tmp_path / "in.wav", 2.5, 1.0, 6.0)
    session = CallSession(make_settings(wespoke_stack.api), lambda: WavBackend(sent, tmp_path / "out.wav"))
    events = Recorder(session)
    await session.start()
    assistant = wespoke_stack.assistants[-1]
    # The assistant answers on command, a known time after it heard the caller stop.
    loud = await asyncio.to_thread(assistant.wait_for, "frame_rms", lambda e: e["rms_dbfs"] > -30, 15)
    quiet = await asyncio.to_thread(assistant.wait_for, "frame_rms",
                                    lambda e: e["t"] > loud["t"] + 0.5 and e["rms_dbfs"] < -60, 10)
    answer_after_s = 1.0
    await asyncio.sleep(max(0.0, answer_after_s - (time.time() - quiet["wall"])))
    assistant.send({"cmd": "tone", "freq": 500, "seconds": 0.8, "dbfs": -12})
    measured = await events.wait_for(lambda e: isinstance(e, CallQuality) and e.response_ms is not None, timeout=10)
    await session.aclose()
    await events.aclose()
    print(f"response time measured at the client: {measured.response_ms:.0f} ms (answer commanded "
          f"{answer_after_s * 1000:.0f} ms after the assistant heard the end of speech)")
    # Above the commanded wait by the two legs of the network and the playback buffer, no more.
    assert answer_after_s * 1000 <= measured.response_ms < answer_after_s * 1000 + 800


def test_the_thresholds_rate_the_worst_figure() -> None:
    good = CallQuality(QualityLevel.GOOD, rtt_ms=40, jitter_ms=5, packet_loss_pct=0.0, underruns=0)
    assert rate(good) is QualityLevel.GOOD
    assert rate(CallQuality(QualityLevel.GOOD)) is QualityLevel.GOOD  # nothing measured yet
    assert rate(CallQuality(QualityLevel.GOOD, rtt_ms=301)) is QualityLevel.FAIR
    assert rate(CallQuality(QualityLevel.GOOD, rtt_ms=301, packet_loss_pct=8.5)) is QualityLevel.POOR
    assert rate(CallQuality(QualityLevel.GOOD, jitter_ms=31)) is QualityLevel.FAIR
    assert rate(CallQuality(QualityLevel.GOOD, underruns=1)) is QualityLevel.FAIR
    assert rate(CallQuality(QualityLevel.GOOD, underruns=4)) is QualityLevel.POOR


def _candidate_pair(**fields: float) -> stats.RtcStats:
    report = stats.RtcStats()
    report.candidate_pair.candidate_pair.CopyFrom(stats.CandidatePairStats(**fields))
    return report


def test_a_round_trip_below_the_stats_resolution_is_a_measured_zero() -> None:
    monitor = QualityMonitor()
    loopback = _candidate_pair(nominated=True, responses_received=4, current_round_trip_time=0.0, total_round_trip_time=0.0)
    assert monitor.sample([loopback], [], {}, None).rtt_ms == 0.0
    unanswered = _candidate_pair(nominated=True, responses_received=0, current_round_trip_time=0.0)
    assert monitor.sample([unanswered], [], {}, None).rtt_ms is None
    not_in_use = _candidate_pair(nominated=False, responses_received=9, current_round_trip_time=0.05)
    assert monitor.sample([not_in_use], [], {}, None).rtt_ms is None
    averaged = _candidate_pair(nominated=True, responses_received=4, current_round_trip_time=0.0, total_round_trip_time=0.08)
    assert monitor.sample([averaged], [], {}, None).rtt_ms == pytest.approx(20.0)
    current = _candidate_pair(nominated=True, responses_received=4, current_round_trip_time=0.031)
    assert monitor.sample([current], [], {}, None).rtt_ms == pytest.approx(31.0)
