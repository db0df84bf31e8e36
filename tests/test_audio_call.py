"""A real call through `CallSession` on the sound-device engine: rig → PortAudio → LiveKit → assistant.

The microphone is the rig's `micfeed` (a WAV played into it), the speaker is the rig's `speaker`
sink (recorded from its monitor). The local stack (LiveKit server, API server, test assistant)
comes from `wespoke_stack`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.stack.pulse_rig import PulseRig, speech_wav
from tests.support.signals import dominant_hz, power_dbfs, read_wav, sine, write_wav
from wespoke_tui.audio.engine import SoundDeviceBackend
from wespoke_tui.events import CallState, ErrorEvent
from wespoke_tui.session import CallSession

# What the assistant should receive: plateaus of known level (peak dBFS) and pitch.
PLATEAU_S = 3.0
PLATEAUS = [(300.0, -20.0), (500.0, -35.0), (700.0, -12.0)]
ENERGY_TOLERANCE_DB = 3.0  # Opus and the 1 s buckets' alignment; the level itself is exact

GREETING_HZ = 440.0
GREETING_RMS_DBFS = -15.05  # -12 dBFS peaks


def loudest_window(samples: np.ndarray, seconds: float) -> np.ndarray:
    n = int(seconds * 48000)
    energy = np.concatenate(([0.0], np.cumsum(samples.astype(np.float64) ** 2)))
    starts = np.arange(0, max(1, samples.size - n), 480)
    start = int(starts[int(np.argmax(energy[np.minimum(starts + n, samples.size)] - energy[starts]))])
    return samples[start : start + n]


def plateau_levels(frame_reports: list[dict[str, Any]]) -> list[float]:
    """The received level of each plateau, from the assistant's per-frame reports.

    Each plateau is found by its own edges, the steps in level between plateaus, not at fixed
    times after the first onset: the report times are the assistant's wall clock, which a busy
    machine stretches, and a stall early on would shift every later window."""
    t = np.array([r["t"] for r in frame_reports])
    level = np.array([r["rms_dbfs"] for r in frame_reports])
    sound = level > -50  # every plateau is louder: what is not is silence or a dropout, left out
    heard, t = level[sound], t[sound]
    per_second = heard.size / max(1e-3, float(t[-1] - t[0]))
    smooth = np.median(np.lib.stride_tricks.sliding_window_view(np.pad(heard, 7, mode="edge"), 15), axis=1)
    steps: list[int] = []
    # The biggest steps at least a second apart and from either end (where the sound fades in and out).
    for i in np.argsort(-np.abs(np.diff(smooth))).tolist():
        if per_second < i < heard.size - per_second and all(abs(i + 1 - j) > per_second for j in steps):
            steps.append(i + 1)
        if len(steps) == len(PLATEAUS) - 1:
            break
    edge = round(0.3 * per_second)
    bounds = [0, *sorted(steps), heard.size]
    return [float(np.median(heard[a + edge : b - edge])) for a, b in itertools.pairwise(bounds)]


async def run_call(wespoke_stack: Any, rig: PulseRig, tmp_path: Path, mic_wav: Path, **settings: Any):  # type: ignore[no-untyped-def]
    backend = SoundDeviceBackend(wespoke_stack.settings(**settings))
    session = CallSession(wespoke_stack.settings(**settings), lambda: backend)
    errors: list[ErrorEvent] = []

    async def watch() -> None:
        async for event in session.events():
            if isinstance(event, ErrorEvent):
                errors.append(event)

    watcher = asyncio.create_task(watch())
    rig.start_recording_speaker(tmp_path / "speaker.wav")
    await session.start()
    assert session.state == CallState.CONNECTED
    assistant = wespoke_stack.assistant_for(session.call_id)
    await asyncio.to_thread(assistant.wait_for, "greeting_done", None, 20)
    await asyncio.to_thread(rig.play_into_mic, mic_wav, wait=True)
    played = time.time()
    # The assistant has heard all of it: a quiet second reported after the file's end.
    await asyncio.to_thread(assistant.wait_for, "energy", lambda e: e["wall"] >= played and e["rms_dbfs"] <= -50, 10)
    health = backend.health()
    await session.hang_up()
    await session.aclose()
    watcher.cancel()
    heard, _ = read_wav(rig.stop_recording())  # type: ignore[arg-type]
    return assistant, heard, health, errors


@pytest.mark.timeout(120)
@pytest.mark.assistant_options(report_frames=True, no_script=True, no_echo=True)
async def test_call_on_sound_devices_sends_the_mic_and_plays_the_greeting(
    wespoke_stack: Any, sound_rig: PulseRig, tmp_path: Path
) -> None:
    mic = write_wav(tmp_path / "mic.wav", np.concatenate([sine(hz, PLATEAU_S, level) for hz, level in PLATEAUS]))
    # Processing off: the levels that reach the assistant are exactly what was played in.
    assistant, heard, health, errors = await run_call(
        wespoke_stack, sound_rig, tmp_path, mic, aec=False, noise_suppression=False, auto_gain=False
    )
    assert not errors, errors

    greeting = loudest_window(heard, 1.2)
    print(f"\ngreeting from speaker.monitor: {power_dbfs(greeting):.1f} dBFS RMS at {dominant_hz(greeting, ignore_dc=True):.0f} Hz")
    assert dominant_hz(greeting, ignore_dc=True) == pytest.approx(GREETING_HZ, abs=3)
    assert power_dbfs(greeting) == pytest.approx(GREETING_RMS_DBFS, abs=2.0)

    received = plateau_levels(assistant.events("frame_rms"))
    for (_, sent), got in zip(PLATEAUS, received, strict=True):
        print(f"sent {sent - 3.0:.1f} dBFS RMS, the assistant received {got:.1f}")
        assert got == pytest.approx(sent - 3.0, abs=ENERGY_TOLERANCE_DB)
    seconds = [e for e in assistant.events("energy") if e["rms_dbfs"] > -50]
    assert len(seconds) >= 8, seconds
    frames = sum(e["frames"] for e in seconds[1:-1])
    assert frames >= 0.9 * 100 * len(seconds[1:-1]), seconds  # ~100 frames a second arrived
    assert health["capture_queue_depth_max"] <= 20 and health["playback_queue_ms_max"] <= 240


@pytest.mark.timeout(120)
@pytest.mark.assistant_options(report_frames=True, no_script=True, no_echo=True)
async def test_call_with_echo_cancellation_on_sends_speech_not_the_greeting(
    wespoke_stack: Any, sound_rig: PulseRig, tmp_path: Path
) -> None:
    """All processing on (the defaults) and the echo path on: the greeting played by the speaker
    leaks into the mic, the AEC keeps it from the assistant; speech played into the mic gets there."""
    speech = speech_wav(tmp_path / "speech.wav", "Hello, I would like to book a table for two people tonight.")
    sound_rig.add_echo_path(delay_ms=50)
    assistant, heard, health, errors = await run_call(wespoke_stack, sound_rig, tmp_path, speech)
    assert not errors, errors
    assert dominant_hz(loudest_window(heard, 1.2), ignore_dc=True) == pytest.approx(GREETING_HZ, abs=3)
    frames = assistant.events("frame_rms")
    start = assistant.events("greeting_start")[0]["wall"]
    done = assistant.events("greeting_done")[0]["wall"]
    during_greeting = np.array([f["rms_dbfs"] for f in frames if start + 0.3 <= f["wall"] <= done])
    after = np.array([f["rms_dbfs"] for f in frames if f["wall"] > done + 0.5])
    print(
        f"\nat the assistant: greeting echo median {np.median(during_greeting):.1f} dBFS "
        f"(played at {GREETING_RMS_DBFS:.1f}); speech frames above -40 dBFS: {(after > -40).sum()}"
    )
    assert during_greeting.size >= 50
    assert np.median(during_greeting) < GREETING_RMS_DBFS - 25, "the AEC kept the greeting's echo out"
    assert (after > -40).sum() >= 100, "the speech reached the assistant"
    assert health["capture_queue_depth_max"] <= 20
