"""The sound-device engine: jitter buffer logic, then capture, playback, AEC and a 60 s run on the rig.

The rig tests use real PortAudio on a private PulseAudio server (tests/stack/pulse_rig.py), in
real time. Levels are checked on 10 ms frames; the tone segments are found by their onset.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from tests.stack.pulse_rig import (
    PulseRig,
    dominant_hz,
    first_onset,
    frame_levels,
    power_dbfs,
    read_wav,
    sine,
    speech_wav,
    write_wav,
)
from wespoke_tui.audio.base import FRAME_SAMPLES
from wespoke_tui.audio.capture import CAPTURE_FRAME_MS, CAPTURE_FRAME_SAMPLES, SoundDeviceCapture
from wespoke_tui.audio.engine import SoundDeviceBackend
from wespoke_tui.audio.playback import TRIM_DEADLINE_S, TRIM_SLACK_MS, UNDERRUN_WINDOW_S, BufferState, JitterBuffer
from wespoke_tui.settings import Settings

RATE = 48_000
BLOCK = 480


# ---- the jitter buffer, on a fake clock ----------------------------------------------------------


def tone_frames(seconds: float, dbfs: float = -20.0, freq: float = 440.0) -> np.ndarray:
    return sine(freq, seconds, dbfs).reshape(-1, FRAME_SAMPLES)


def pull(buffer: JitterBuffer, now: float) -> np.ndarray:
    out = np.empty(BLOCK, dtype=np.int16)
    buffer.read_into(out, now)
    return out


def test_prebuffers_to_target_then_plays_with_fade_in() -> None:
    buffer = JitterBuffer(RATE, target_ms=60)
    frames = tone_frames(0.2, dbfs=0.0)
    for i in range(5):  # 50 ms: below the target, silence while the writer is still writing
        buffer.write(frames[i], now=i * 0.01)
        assert not pull(buffer, now=i * 0.01).any()
    assert buffer.state is BufferState.BUFFERING
    buffer.write(frames[5], now=0.05)
    first = pull(buffer, now=0.05)
    assert buffer.state is BufferState.PLAYING
    assert abs(int(first[0])) <= 1, "starts from zero: no click"
    assert np.abs(first[240:]).max() > 30000, "full level after the 5 ms fade"
    assert buffer.size == 5 * BLOCK


def test_short_utterance_plays_without_reaching_target() -> None:
    buffer = JitterBuffer(RATE, target_ms=60)
    buffer.write(tone_frames(0.02)[0], now=0.0)
    assert not pull(buffer, now=0.01).any(), "the writer may still be talking"
    assert pull(buffer, now=0.07).any(), "the writer went quiet: play what there is"


def test_end_of_utterance_fades_out_and_is_not_an_underrun() -> None:
    buffer = JitterBuffer(RATE, target_ms=30)
    for i, frame in enumerate(tone_frames(0.03, dbfs=0.0)):
        buffer.write(frame, now=0.0 + i * 0.001)
    blocks = [pull(buffer, now=0.01 * k) for k in range(3)]
    assert buffer.state is BufferState.DRY
    assert abs(int(blocks[-1][-1])) <= 1, "the last sample fades to zero: no click"
    assert not pull(buffer, now=0.04).any(), "silence between utterances"
    buffer.write(tone_frames(0.01)[0], now=0.03 + UNDERRUN_WINDOW_S + 0.05)  # the next utterance
    assert buffer.underruns == 0


def test_starving_mid_utterance_counts_one_underrun() -> None:
    buffer = JitterBuffer(RATE, target_ms=30)
    frames = tone_frames(0.1)
    for i in range(3):
        buffer.write(frames[i], now=0.0)
    for k in range(3):
        pull(buffer, now=0.01 * k)
    assert buffer.state is BufferState.DRY
    pull(buffer, now=0.03)  # the callback finds nothing
    buffer.write(frames[3], now=0.05)  # the writer was late, not done
    assert buffer.underruns == 1
    assert buffer.state is BufferState.BUFFERING, "prebuffers again before resuming"


def test_each_underrun_raises_the_target_up_to_half_the_bound() -> None:
    buffer = JitterBuffer(RATE, target_ms=40)
    assert buffer.ms(buffer.target) == 40 and buffer.ms(buffer.capacity) == 200
    frames = tone_frames(2.0)
    now = 0.0
    for k in range(8):  # starve it 8 times: one block written, two pulled, then a late block
        buffer.write(frames[2 * k], now=now)
        pull(buffer, now=now + 0.2)  # the writer went quiet: what there is plays
        pull(buffer, now=now + 0.21)  # dry
        buffer.write(frames[2 * k + 1], now=now + 0.25)  # the writer was late, not done
        assert buffer.underruns == k + 1
        assert buffer.ms(buffer.target) == min(100, 40 + 10 * (k + 1))
        buffer.clear()
        now += 1.0


def test_overrun_drops_oldest_and_stays_bounded() -> None:
    buffer = JitterBuffer(RATE, target_ms=60)
    assert buffer.ms(buffer.capacity) == 240
    ramp = np.arange(100 * BLOCK, dtype=np.int64) % 30000
    for i in range(100):  # 1 s written, nothing played
        buffer.write(ramp[i * BLOCK : (i + 1) * BLOCK].astype(np.int16), now=0.0)
    assert buffer.size == buffer.capacity
    assert buffer.max_size == buffer.capacity
    assert buffer.overruns == 100 - 24
    out = pull(buffer, now=1.0)
    newest_kept = ramp[-buffer.capacity :]
    assert int(out[-1]) == int(newest_kept[BLOCK - 1]), "the newest audio is what remains"


def test_clear_keeps_one_faded_block_then_silence() -> None:
    buffer = JitterBuffer(RATE, target_ms=30)
    for frame in tone_frames(0.1, dbfs=0.0):
        buffer.write(frame, now=0.0)
    pull(buffer, now=0.0)
    buffer.clear()
    assert buffer.size == BLOCK
    last = pull(buffer, now=0.01)
    assert abs(int(last[-1])) <= 1
    assert not pull(buffer, now=0.02).any()
    assert buffer.state is BufferState.IDLE
    buffer.write(tone_frames(0.01)[0], now=0.03)
    assert buffer.underruns == 0, "a barge-in is not an underrun"


def stream_through(buffer: JitterBuffer, blocks: list[np.ndarray], *, burst: int, start: float = 0.0) -> list[np.ndarray]:
    """A continuous stream: `burst` blocks at once (a late batch), then one per 10 ms tick,
    the callback pulling one block per tick; what the callback played, in order."""
    played = []
    for i in range(burst):
        buffer.write(blocks[i], now=start)
    for tick, block in enumerate(blocks[burst:]):
        now = start + tick * 0.01
        buffer.write(block, now=now)
        played.append(pull(buffer, now=now))
    return played


def is_loud(block: np.ndarray) -> bool:
    return int(np.abs(block.astype(np.int32)).max()) > 1000


def test_a_standing_excess_is_trimmed_back_to_the_target_through_quiet_blocks() -> None:
    buffer = JitterBuffer(RATE, target_ms=60)
    tone = tone_frames(6.0)
    # Speech-like: every fourth 10 ms block is a pause. A 150 ms burst then a steady stream
    # leaves ~150 ms queued for good unless the buffer trims it.
    blocks = [np.zeros(BLOCK, np.int16) if k % 4 == 0 else tone[k] for k in range(len(tone))]
    played = stream_through(buffer, blocks, burst=15)
    assert buffer.ms(buffer.size) <= 60 + TRIM_SLACK_MS + 10
    assert buffer.trims >= 5
    while buffer.size:
        played.append(pull(buffer, now=10.0))
    # Only pauses were skipped: every loud block written was played.
    assert sum(map(is_loud, played)) == sum(map(is_loud, blocks))


def test_without_pauses_the_excess_is_trimmed_after_the_deadline_with_a_fade_in() -> None:
    buffer = JitterBuffer(RATE, target_ms=60)
    blocks = list(tone_frames(6.0, dbfs=0.0))
    for block in blocks[:15]:
        buffer.write(block, now=0.0)
    first_trim_at = None
    for tick, block in enumerate(blocks[15:]):
        buffer.write(block, now=tick * 0.01)
        out = pull(buffer, now=tick * 0.01)
        if buffer.trims and first_trim_at is None:
            first_trim_at = tick * 0.01
            assert abs(int(out[0])) <= 1, "the seam of a skipped loud block fades in: no click"
    assert first_trim_at is not None and first_trim_at >= TRIM_DEADLINE_S, "loud audio is skipped only past the deadline"
    assert buffer.trims >= 5
    assert buffer.ms(buffer.size) <= 60 + TRIM_SLACK_MS + 10


def test_jitter_alone_is_not_trimmed() -> None:
    buffer = JitterBuffer(RATE, target_ms=60)
    tone = tone_frames(5.0)
    now = 0.0
    for k in range(0, len(tone) - 3, 3):  # three blocks every 30 ms: bursty, no standing excess
        for block in tone[k : k + 3]:
            buffer.write(block, now=now)
        for _ in range(3):
            pull(buffer, now=now)
            now += 0.01
    assert buffer.trims == 0
    assert buffer.underruns == 0


# ---- on the rig ---------------------------------------------------------------------------------


async def collect(frames: AsyncIterator[np.ndarray], into: list[np.ndarray]) -> None:
    async for frame in frames:
        into.append(frame)


async def write_realtime(write, samples: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """Write 10 ms frames at the pace of the clock, as a remote track delivers them."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i, frame in enumerate(samples[: samples.size // BLOCK * BLOCK].reshape(-1, BLOCK)):
        write(frame)
        delay = start + (i + 1) * 0.01 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)


async def test_a_standing_capture_backlog_is_shed_but_a_passing_one_is_not() -> None:
    capture = SoundDeviceCapture(None, processor=None)
    capture._loop = asyncio.get_running_loop()
    frame = np.zeros(CAPTURE_FRAME_SAMPLES, dtype=np.int16)
    capture._deliver(frame)
    capture._deliver(frame)
    capture._deliver(frame)  # a stall: three queued, the reader one behind from here on
    deadline = time.monotonic() + 1.3
    while time.monotonic() < deadline:
        assert await capture._next_frame() is not None
        capture._deliver(frame)  # one in, one out: the backlog of two stands
        await asyncio.sleep(0.02)
    assert capture.trimmed_frames == 2 * CAPTURE_FRAME_MS // 10, "the two standing frames went"
    assert capture.queue_depth == 1
    trimmed = capture.trimmed_frames
    deadline = time.monotonic() + 1.3
    while time.monotonic() < deadline:  # in real time now: each read empties the queue
        await capture._next_frame()
        capture._deliver(frame)
        await asyncio.sleep(0.02)
    assert capture.trimmed_frames == trimmed


async def test_capture_hears_what_is_played_into_the_mic(sound_rig: PulseRig, tmp_path: Path) -> None:
    """1 s at -20 dBFS, 1 s of silence, 1 s at -10 dBFS (peaks): -23, silence, -13 dBFS RMS."""
    wav = write_wav(
        tmp_path / "mic.wav",
        np.concatenate([sine(1000, 1.0, -20.0), np.zeros(RATE, dtype=np.int16), sine(500, 1.0, -10.0)]),
    )
    capture = SoundDeviceCapture(None, processor=None)
    await capture.start()
    frames: list[np.ndarray] = []
    task = asyncio.create_task(collect(capture.frames(), frames))
    await asyncio.sleep(0.3)
    await asyncio.to_thread(sound_rig.play_into_mic, wav, wait=True)
    await asyncio.sleep(0.3)
    task.cancel()
    await capture.aclose()
    assert all(f.shape == (CAPTURE_FRAME_SAMPLES,) and f.dtype == np.int16 for f in frames)
    audio = np.concatenate(frames)
    levels = frame_levels(audio)
    onset = first_onset(levels)
    seconds = [audio[(onset + 100 * k) * BLOCK : (onset + 100 * (k + 1)) * BLOCK] for k in range(3)]
    assert power_dbfs(seconds[0][2 * BLOCK : -2 * BLOCK]) == pytest.approx(-23.0, abs=1.5)
    assert power_dbfs(seconds[1][5 * BLOCK : -5 * BLOCK]) <= -60.0
    assert power_dbfs(seconds[2][2 * BLOCK : -2 * BLOCK]) == pytest.approx(-13.0, abs=1.5)
    assert dominant_hz(seconds[0]) == pytest.approx(1000, abs=5)
    assert dominant_hz(seconds[2]) == pytest.approx(500, abs=5)
    assert capture.rate == RATE
    assert capture.max_queue_depth <= 20


async def test_playback_comes_out_of_the_speaker(sound_rig: PulseRig, tmp_path: Path) -> None:
    backend = SoundDeviceBackend(Settings(jitter_buffer_ms=60))
    output = backend.open_output()
    await output.start()
    sound_rig.start_recording_speaker(tmp_path / "speaker.wav")
    await asyncio.sleep(0.3)
    await write_realtime(output.write, sine(440, 2.0, -20.0))
    await asyncio.sleep(0.4)
    recorded, _ = read_wav(sound_rig.stop_recording())  # type: ignore[arg-type]
    await output.aclose()
    levels = frame_levels(recorded)
    onset = first_onset(levels)
    loud = np.nonzero(levels > -40)[0]
    assert (loud[-1] - onset + 1) == pytest.approx(200, abs=3), "2 s of tone, not stretched or cut"
    gaps = int((levels[onset + 1 : loud[-1]] <= -26).sum())
    health = backend.health()
    # A gap can only come from the device side (PulseAudio starved on a busy machine), which
    # PortAudio reports as an output underflow; with none reported there must be no gap at all.
    assert gaps <= 3 * health["playback_device_underflows"], (gaps, health)
    tone = recorded[(onset + 5) * BLOCK : (loud[-1] - 5) * BLOCK]
    assert power_dbfs(tone) == pytest.approx(-23.0, abs=1.0)
    assert dominant_hz(tone) == pytest.approx(440, abs=2)
    assert health["playback_underruns"] == 0 and health["playback_overruns"] == 0


async def measure_echo(settings: Settings, far: np.ndarray) -> tuple[float, dict[str, float]]:
    """Play `far` through the engine with the echo path on; the captured power after 3 s."""
    backend = SoundDeviceBackend(settings)
    output = backend.open_output()
    await output.start()
    capture = backend.open_input()
    await capture.start()
    frames: list[np.ndarray] = []
    task = asyncio.create_task(collect(capture.frames(), frames))
    await write_realtime(output.write, far)
    await asyncio.sleep(0.2)
    task.cancel()
    await capture.aclose()
    await output.aclose()
    captured = np.concatenate(frames)
    return power_dbfs(captured[3 * RATE :]), backend.health()


@pytest.mark.timeout(120)
async def test_echo_cancellation_removes_the_far_end(sound_rig: PulseRig, tmp_path: Path) -> None:
    far, _ = read_wav(
        speech_wav(
            tmp_path / "far.wav",
            "Hello, thank you for calling. I am the assistant, and I will keep talking for a while, "
            "so that the echo canceller can learn the path from the speaker back into the microphone.",
        )
    )
    sound_rig.add_echo_path(delay_ms=50)
    await asyncio.sleep(0.3)
    # Only the echo canceller differs between the two runs: noise suppression and AGC off.
    off, _ = await measure_echo(Settings(aec=False, noise_suppression=False, auto_gain=False), far)
    on, health = await measure_echo(Settings(aec=True, noise_suppression=False, auto_gain=False), far)
    print(f"\nAEC: echo {off:.1f} dBFS off, {on:.1f} dBFS on: {off - on:.1f} dB lower; delay {health['aec_delay_ms']:.0f} ms")
    assert off > -40.0, "the echo path really carries the far end into the microphone"
    assert off - on >= 15.0
    assert 0 < health["aec_delay_ms"] < 500


@pytest.mark.timeout(150)
async def test_sixty_seconds_without_underruns(sound_rig: PulseRig) -> None:
    """A call's worth of audio both ways; the engine's counters and bounds over 60 s."""
    backend = SoundDeviceBackend(Settings())
    output = backend.open_output()
    await output.start()
    capture = backend.open_input()
    await capture.start()
    frames: list[np.ndarray] = []
    consumer = asyncio.create_task(collect(capture.frames(), frames))
    seconds = 60
    t = np.arange(seconds * RATE) / RATE
    sweep = (0.3 * 32767 * np.sin(2 * np.pi * (300 * t + 20 * t**2))).astype(np.int16)  # 300 Hz → 2.7 kHz
    writer = asyncio.create_task(write_realtime(output.write, sweep))
    await asyncio.sleep(1.0)
    after_first_second = backend.health()
    samples = []
    started = time.monotonic()
    while not writer.done():
        samples.append(backend.health())
        await asyncio.sleep(0.5)
    elapsed = time.monotonic() - started
    final = backend.health()
    consumer.cancel()
    await capture.aclose()
    await output.aclose()
    assert elapsed >= seconds - 2
    print(f"\n60 s run: {final}")
    underruns = final["playback_underruns"] - after_first_second["playback_underruns"]
    device_stalls = final["playback_device_underflows"] - after_first_second["playback_device_underflows"]
    # Zero underruns. The one exception is a device stall (PortAudio reports an output underflow,
    # e.g. PulseAudio starved on an overloaded machine): the device then pulls its backlog in one
    # burst and can empty the buffer; each such stall may cost at most one underrun.
    assert underruns == 0 or underruns <= device_stalls, final
    # Overruns and capture drops are not asserted: on a loaded machine (2 shared cores) the
    # process can stall for 200 ms; then the engine drops the oldest audio and counts it,
    # which is the behaviour under test here, together with the bounds.
    assert final["playback_queue_ms_max"] <= 240
    assert final["capture_queue_depth_max"] <= 20
    assert max(s["playback_queue_ms"] for s in samples) <= 240
    assert len(frames) >= (seconds - 1) * 1000 // CAPTURE_FRAME_MS, "the microphone delivered in real time throughout"


async def test_a_device_at_44100_hz_is_resampled_both_ways(sound_rig: PulseRig, tmp_path: Path) -> None:
    """Devices that do not run at 48 kHz: capture resamples to 48 kHz frames, playback to the device."""
    from wespoke_tui.audio.playback import SoundDevicePlayback
    from wespoke_tui.audio.processing import VoiceProcessor

    processor = VoiceProcessor(echo_cancellation=True, noise_suppression=False, auto_gain=False)
    output = SoundDevicePlayback("rig_speaker", processor, rate=44_100)
    await output.start()
    capture = SoundDeviceCapture("rig_mic", processor=None, rate=44_100)
    await capture.start()
    assert output.rate == 44_100 and capture.rate == 44_100
    frames: list[np.ndarray] = []
    task = asyncio.create_task(collect(capture.frames(), frames))
    sound_rig.start_recording_speaker(tmp_path / "speaker.wav")
    await asyncio.sleep(0.2)
    player = sound_rig.play_into_mic(write_wav(tmp_path / "in.wav", sine(1000, 1.5, -20.0)))
    await write_realtime(output.write, sine(440, 1.5, -20.0))
    await asyncio.to_thread(player.wait, 10)
    await asyncio.sleep(0.3)
    task.cancel()
    recorded, _ = read_wav(sound_rig.stop_recording())  # type: ignore[arg-type]
    await capture.aclose()
    await output.aclose()
    assert all(f.shape == (CAPTURE_FRAME_SAMPLES,) for f in frames)
    heard = np.concatenate(frames)
    onset = first_onset(frame_levels(heard))
    tone_in = heard[(onset + 5) * BLOCK : (onset + 140) * BLOCK]
    assert dominant_hz(tone_in) == pytest.approx(1000, abs=5)
    assert power_dbfs(tone_in) == pytest.approx(-23.0, abs=1.0)
    played_onset = first_onset(frame_levels(recorded))
    tone_out = recorded[(played_onset + 5) * BLOCK : (played_onset + 140) * BLOCK]
    assert dominant_hz(tone_out) == pytest.approx(440, abs=3)
    assert power_dbfs(tone_out) == pytest.approx(-23.0, abs=1.0)
    assert processor.reverse_frames > 100 and processor.errors == 0, "the APM took 44.1 kHz far-end frames"
