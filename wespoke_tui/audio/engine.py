"""The sound-device audio engine: `SoundDeviceBackend` (an `AudioBackend`) on PortAudio.

One backend per call. It owns the APM shared by capture and playback (echo cancellation
needs both streams in the same module) and reports the health counters of both.

From the SDK (`livekit.rtc`) we use `AudioProcessingModule` and `AudioResampler` as they are.
`rtc.MediaDevices` is not used, because a call needs what it does not do:
- 10 ms (speaker) and 20 ms (microphone) device blocks instead of 100 ms (100 ms blocks add
  ~100 ms each way and delay barge-in);
- device choice by name, and a rate the device supports (ALSA hardware refuses others, -9997);
- a bounded capture queue that drops the OLDEST audio and counts it (MediaDevices drops the
  newest, silently), and frames as an async iterator so the session meters them and mutes them;
- device-loss detection: a watchdog on the callback cadence (a dead device just stops calling
  back, livekit/agents #6075);
- a jitter buffer with a prebuffer per utterance, fades and counted underruns/overruns
  (MediaDevices' unbounded bytearray has none of these);
- the APM stream delay from measured latencies, clamped, errors caught (livekit/agents #2854).
"""

from __future__ import annotations

import sys

from wespoke_tui.audio.base import AudioBackend
from wespoke_tui.audio.capture import SoundDeviceCapture
from wespoke_tui.audio.playback import SoundDevicePlayback
from wespoke_tui.audio.preflight import check_sound_devices
from wespoke_tui.audio.processing import VoiceProcessor
from wespoke_tui.settings import AudioEngine, Settings

# The PortAudio callbacks are Python and need the GIL every 10 or 20 ms; by default a thread that holds
# it (the loop, Textual painting a frame) keeps it up to 5 ms before a waiting callback gets it.
GIL_SWITCH_INTERVAL_S = 0.001


def uses_native(settings: Settings) -> bool:
    """Whether a voice call on `settings` goes to WebRTC's own module: when the settings ask for
    it, unless the call records from its start (the module hands out no captured frames) or it
    is the demo."""
    return AudioEngine(settings.audio_engine) is AudioEngine.NATIVE and not settings.record_calls and not settings.demo


def device_backend(settings: Settings) -> AudioBackend:
    """A voice call's backend on the sound devices: WebRTC's own module (`audio/native.py`,
    falling back to this engine by itself) where `uses_native`; else this engine."""
    if uses_native(settings):
        from wespoke_tui.audio.native import NativeBackend

        return NativeBackend(settings, lambda: SoundDeviceBackend(settings))
    return SoundDeviceBackend(settings)


class SoundDeviceBackend:
    """`AudioBackend` on the sound devices chosen by `settings.input_device` / `output_device`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self._processor: VoiceProcessor | None = None
        self.capture: SoundDeviceCapture | None = None
        self.playback: SoundDevicePlayback | None = None

    @property
    def processor(self) -> VoiceProcessor:
        """The call's APM, made on first use (both streams must share it)."""
        if self._processor is None:
            s = self._settings
            self._processor = VoiceProcessor.from_flags(
                aec=s.aec, noise_suppression=s.noise_suppression, auto_gain=s.auto_gain
            )
        return self._processor

    def preflight(self) -> None:
        """Before the call asks for a token: PortAudio, a microphone and a speaker exist
        (`CallError(NO_SOUND_DEVICE)` if not)."""
        check_sound_devices()

    def open_input(self) -> SoundDeviceCapture:
        self.capture = SoundDeviceCapture(self._settings.input_device, self.processor)
        return self.capture

    def open_output(self) -> SoundDevicePlayback:
        self.playback = SoundDevicePlayback(
            self._settings.output_device, self.processor, jitter_buffer_ms=self._settings.jitter_buffer_ms
        )
        return self.playback

    def health(self) -> dict[str, float]:
        """`AudioHealth` fields, plus the maxima seen (`*_max`), the measured latencies, the APM
        delay, and PortAudio's own under/overflow flags (the device side, not our buffers)."""
        out: dict[str, float] = {
            "playback_underruns": 0,
            "playback_overruns": 0,
            "playback_trims": 0,
            "capture_dropped_frames": 0,
            "capture_queue_depth": 0,
            "capture_queue_depth_max": 0,
            "playback_queue_ms": 0.0,
            "playback_queue_ms_max": 0.0,
        }
        if self.playback is not None and self.playback.buffer is not None:
            buffer = self.playback.buffer
            out["playback_underruns"] = buffer.underruns
            out["playback_overruns"] = buffer.overruns
            out["playback_trims"] = buffer.trims
            out["playback_queue_ms"] = buffer.ms(buffer.size)
            out["playback_queue_ms_max"] = buffer.ms(buffer.max_size)
            out["playback_target_ms"] = buffer.ms(buffer.target)
            out["output_latency_ms"] = self.playback.output_latency_s * 1000
            out["playback_device_underflows"] = self.playback.device_underflows
        if self.capture is not None:
            out["capture_dropped_frames"] = self.capture.dropped_frames
            out["capture_trimmed_frames"] = self.capture.trimmed_frames
            out["capture_queue_depth"] = self.capture.queue_depth
            out["capture_queue_depth_max"] = self.capture.max_queue_depth
            out["input_latency_ms"] = self.capture.input_latency_s * 1000
            out["capture_device_overflows"] = self.capture.device_overflows
        if self._processor is not None:
            out["aec_delay_ms"] = self._processor.stream_delay_ms
        return out
