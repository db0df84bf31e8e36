"""The devices screen's microphone test: the raw level of the chosen input for a few seconds."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from wespoke_tui.audio.capture import SoundDeviceCapture
from wespoke_tui.audio.meter import Level, LevelMeter, RateLimiter


class MicLevelProbe:
    """The devices screen's "test the microphone": opens the input for `seconds`, yields levels.

    Uses the same capture path as a call (device choice, rate, resampling), without the APM so
    the user sees the raw level of the microphone.
    """

    def __init__(self, device: str | int | None = None, seconds: float = 3.0, rate_hz: float = 20.0) -> None:
        self._device = device
        self._seconds = seconds
        self._rate_hz = rate_hz

    async def levels(self) -> AsyncIterator[Level]:
        capture = SoundDeviceCapture(self._device, processor=None)
        await capture.start()
        meter, limiter = LevelMeter(), RateLimiter(self._rate_hz)
        deadline = time.monotonic() + self._seconds
        try:
            async for frame in capture.frames():
                level = meter.update(frame)
                now = time.monotonic()
                if limiter.ready(now):
                    yield level
                if now >= deadline:
                    break
        finally:
            await capture.aclose()
