"""How the LiveKit Agents test assistant hears (runs in the agents venv): two non-streaming STTs
for `stt.StreamAdapter`, which hands them one VAD segment (the caller's utterance with the VAD's
padding of silence) at a time.

- `DescribingSTT`: the "transcript" says how long the speech in the segment lasted
  (`describe_speech`): deterministic, language-free; what the assistant's tests assert on.
- `PocketsphinxSTT`: real offline recognition with pocketsphinx and the US English model its
  wheel ships (no download). The segment is resampled to 16 kHz (the model's rate) with the rtc
  SDK's sox resampler, and a faint noise floor is added (σ = NOISE_FLOOR of 32768, −50 dBFS, from
  a fixed seed): digital silence (exact zeros around espeak-ng's speech, in the VAD's padding, a
  third of a segment through the call) throws pocketsphinx's features off. Its cepstral mean is
  the utterance's own (`cmn="batch"`), so what it hears of one utterance does not depend on the
  ones before (the default, "live", carries over from call to call). Measured word error rates
  on espeak-ng "en-us" at 160 wpm (the scenario runner's voice): 0.82 without the noise floor,
  0.14 with it and batch CMN on 20 sentences synthesized straight to its input; 0.02 on 8
  segments recorded from real calls (two sentences, four calls each). One decoder per process
  (the model loads once), used under a lock; the decoding runs on a thread, off the session's
  loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import NOT_GIVEN, APIConnectOptions, NotGivenOr, stt, utils

from tests.stack.agents_control import describe_speech

SPEECH_DBFS = -40.0  # a 10 ms block louder than this is speech, for the duration's measure
RECOGNIZER_RATE = 16_000
NOISE_FLOOR = 100.0  # σ of the added noise, in 16-bit steps (−50 dBFS)


def _report(event: str, **fields: Any) -> None:
    """A report in the worker's log (as agents_assistant.report: the same logger)."""
    logging.getLogger("agents-assistant").info(event, extra={"event": event, "mono": time.monotonic(), **fields})


def speech_seconds(frame: rtc.AudioFrame) -> float:
    """From the first to the last 10 ms block above SPEECH_DBFS: the speech in a VAD segment
    (which also holds the VAD's padding of silence before and after)."""
    samples = np.frombuffer(frame.data, dtype=np.int16).astype(np.float64) / 32768.0
    if frame.num_channels > 1:
        samples = samples.reshape(-1, frame.num_channels).mean(axis=1)
    block = max(1, frame.sample_rate // 100)
    blocks = samples[: samples.size // block * block].reshape(-1, block)
    if blocks.size == 0:
        return 0.0
    loud = np.flatnonzero(10 * np.log10(np.mean(blocks**2, axis=1) + 1e-12) > SPEECH_DBFS)
    return 0.0 if loud.size == 0 else (loud[-1] - loud[0] + 1) * block / frame.sample_rate


class _SegmentSTT(stt.STT):
    """A non-streaming STT of one segment at a time; `transcribe` says what it heard."""

    model_name = ""

    def __init__(self, **fields: Any) -> None:
        """`fields`: added to each report (the job's id and room)."""
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self.fields = fields

    @property
    def model(self) -> str:
        return self.model_name

    @property
    def provider(self) -> str:
        return "wespoke-tests"

    async def transcribe(self, frame: rtc.AudioFrame) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        frame = rtc.combine_audio_frames(buffer) if isinstance(buffer, list) else buffer
        text, fields = await self.transcribe(frame)
        _report("stt_recognized", text=text, recognizer=self.model_name, segment_s=round(frame.duration, 3),
                **fields, **self.fields)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[stt.SpeechData(language="en", text=text, confidence=1.0)],
        )


class DescribingSTT(_SegmentSTT):
    """The "transcript" of an utterance says how long its speech lasted."""

    model_name = "speech-duration"

    async def transcribe(self, frame: rtc.AudioFrame) -> tuple[str, dict[str, Any]]:
        seconds = speech_seconds(frame)
        return (describe_speech(seconds) if seconds > 0 else ""), {"speech_s": round(seconds, 3)}


class _Pocketsphinx:
    """The process's one decoder (loaded on first use), behind a lock."""

    _lock = threading.Lock()
    _decoder: Any = None

    @classmethod
    def decode(cls, pcm16k: bytes) -> str:
        with cls._lock:
            if cls._decoder is None:
                from pocketsphinx import Decoder  # the model in the wheel: pocketsphinx/model/en-us

                cls._decoder = Decoder(samprate=RECOGNIZER_RATE, cmn="batch", loglevel="ERROR")
            decoder = cls._decoder
            decoder.start_utt()
            decoder.process_raw(pcm16k, full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
            return hyp.hypstr if hyp is not None else ""


def to_recognizer_pcm(frame: rtc.AudioFrame) -> bytes:
    """The segment as 16 kHz mono int16 with the noise floor: what the decoder is given."""
    if frame.num_channels > 1:
        samples = np.frombuffer(frame.data, dtype=np.int16).reshape(-1, frame.num_channels).mean(axis=1)
        frame = rtc.AudioFrame(np.round(samples).astype(np.int16).tobytes(), frame.sample_rate, 1, samples.size)
    if frame.sample_rate != RECOGNIZER_RATE:
        resampler = rtc.AudioResampler(frame.sample_rate, RECOGNIZER_RATE, num_channels=1,
                                       quality=rtc.AudioResamplerQuality.HIGH)
        parts = [*resampler.push(frame), *resampler.flush()]
        data = b"".join(bytes(part.data) for part in parts)
    else:
        data = bytes(frame.data)
    samples = np.frombuffer(data, dtype=np.int16).astype(np.float64)
    samples += np.random.default_rng(0).normal(0.0, NOISE_FLOOR, samples.size)
    return np.clip(np.round(samples), -32768, 32767).astype(np.int16).tobytes()


class PocketsphinxSTT(_SegmentSTT):
    """Offline recognition of the caller's words (US English)."""

    model_name = "pocketsphinx-en-us"

    async def transcribe(self, frame: rtc.AudioFrame) -> tuple[str, dict[str, Any]]:
        pcm = to_recognizer_pcm(frame)
        started = time.monotonic()
        text = await asyncio.to_thread(_Pocketsphinx.decode, pcm)
        return text, {"decode_s": round(time.monotonic() - started, 3)}


def make_stt(recognizer: str, **fields: Any) -> _SegmentSTT:
    return PocketsphinxSTT(**fields) if recognizer == "pocketsphinx" else DescribingSTT(**fields)


def warm_up() -> None:
    """Load the pocketsphinx model now (in the worker's prewarm), not in a call's first turn."""
    _Pocketsphinx.decode(bytes(2 * RECOGNIZER_RATE // 10))
