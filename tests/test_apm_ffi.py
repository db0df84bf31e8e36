"""The APM's prepared FFI calls (wespoke_tui/audio/apm_ffi.py) against the SDK's public methods.

Two APMs with the same settings get the same far end and near end, one through
`process_reverse_stream` / `process_stream`, the other through the prepared requests: the
outputs must be the same samples, frame by frame. The installed SDK must take the prepared path
(if an SDK upgrade breaks it, this fails instead of the engine quietly costing more CPU), and
an error the native side reports must come back as the public method's exception.
"""

from __future__ import annotations

import numpy as np
import pytest
from livekit import rtc

from wespoke_tui.audio import apm_ffi
from wespoke_tui.audio.processing import VoiceProcessor

RATE = 48_000
SAMPLES = RATE // 100
ODD_RATE = 7_000


def make_apm() -> rtc.AudioProcessingModule:
    return rtc.AudioProcessingModule(
        echo_cancellation=True, noise_suppression=True, high_pass_filter=True, auto_gain_control=True
    )


def frame_of(samples: np.ndarray, rate: int = RATE) -> tuple[rtc.AudioFrame, np.ndarray]:
    buffer = bytearray(samples.size * 2)
    view = np.frombuffer(buffer, dtype=np.int16)
    view[:] = samples
    return rtc.AudioFrame(buffer, rate, 1, samples.size), view


def conversation(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """A far end (a warbling tone) and a near end that holds its echo 30 ms later, a second
    voice and noise, so every part of the APM has work."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * RATE)) / RATE
    far = 6000 * np.sin(2 * np.pi * (300 + 80 * np.sin(2 * np.pi * 3 * t)) * t)
    echo = 0.4 * np.concatenate((np.zeros(int(0.03 * RATE)), far))[: t.size]
    voice = 3000 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 0.7 * t) > 0.3)
    near = echo + voice + rng.normal(0, 300, t.size)
    return far.astype(np.int16), np.clip(near, -32768, 32767).astype(np.int16)


def test_prepared_calls_give_the_public_methods_samples() -> None:
    far, near = conversation(3.0)
    public_apm, prepared_apm = make_apm(), make_apm()
    public_apm.set_stream_delay_ms(40)
    prepared_apm.set_stream_delay_ms(40)
    far_frame, far_view = frame_of(np.zeros(SAMPLES, dtype=np.int16))
    near_frame, near_view = frame_of(np.zeros(SAMPLES, dtype=np.int16))
    reverse = apm_ffi.prepare(prepared_apm, apm_ffi.REVERSE, far_frame)
    forward = apm_ffi.prepare(prepared_apm, apm_ffi.FORWARD, near_frame)
    assert isinstance(reverse, apm_ffi.PreparedApmCall) and isinstance(forward, apm_ffi.PreparedApmCall)
    changed = 0
    for start in range(0, far.size - SAMPLES + 1, SAMPLES):
        far_block, near_block = far[start : start + SAMPLES], near[start : start + SAMPLES]
        public_far, _ = frame_of(far_block)
        public_near, public_view = frame_of(near_block)
        public_apm.process_reverse_stream(public_far)
        public_apm.process_stream(public_near)
        far_view[:] = far_block
        near_view[:] = near_block
        reverse()
        forward()
        np.testing.assert_array_equal(near_view, public_view, err_msg=f"frame at sample {start}")
        changed += int(not np.array_equal(near_view, near_block))
    assert changed > 250, "the APM processed the near end (it is not passed through)"


def test_a_native_error_comes_back_as_the_public_methods_exception() -> None:
    apm = make_apm()
    # 10 ms at 7 kHz: a rate the native APM reports it cannot process (a frame of the wrong
    # length is worse: the native side aborts the process, through either path).
    odd, _ = frame_of(np.zeros(ODD_RATE // 100, dtype=np.int16), ODD_RATE)
    with pytest.raises(RuntimeError) as public:
        apm.process_stream(odd)
    prepared = apm_ffi.prepare(apm, apm_ffi.FORWARD, odd)
    assert prepared is not None
    with pytest.raises(RuntimeError) as ours:
        prepared()
    assert "Failed to process stream" in str(ours.value)
    assert str(ours.value) == str(public.value) and str(ours.value)


def test_the_call_processor_uses_prepared_calls_and_counts_their_errors() -> None:
    processor = VoiceProcessor(echo_cancellation=True, noise_suppression=True, auto_gain=True)
    far, near = conversation(0.5)
    for start in range(0, far.size - SAMPLES + 1, SAMPLES):
        processor.queue_reverse(far[start : start + SAMPLES], RATE, 0.0)
        processor.process_capture(near[start : start + SAMPLES], RATE, 0.01)
    assert processor.errors == 0 and processor.reverse_frames == far.size // SAMPLES
    for stream in (apm_ffi.FORWARD, apm_ffi.REVERSE):
        _, call = processor._frame(stream, RATE)
        assert isinstance(call, apm_ffi.PreparedApmCall), stream
    # A rate the APM refuses: the frame comes back unprocessed and the error is counted.
    odd = np.full(ODD_RATE // 100, 1000, dtype=np.int16)
    out = processor.process_capture(odd, ODD_RATE, 0.01)
    assert np.array_equal(out, odd) and processor.errors == 1
