"""The audio interface between a call and its sound: 48 kHz mono int16 in whole 10 ms frames.

`CallSession` only sees these two protocols, so a call can run on WAV files (headless tests)
or on the sound-device engine (`wespoke_tui.audio.engine`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

import numpy as np

SAMPLE_RATE = 48_000
CHANNELS = 1
FRAME_MS = 10
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000


class AudioInput(Protocol):
    """The microphone side, already echo-cancelled when the engine does that."""

    async def start(self) -> None:
        """Open the device. Raises `CallError(MICROPHONE_ERROR)` when it cannot."""
        ...

    def frames(self) -> AsyncIterator[np.ndarray]:
        """int16 arrays of a whole number of 10 ms frames (FRAME_SAMPLES each; the sound-device
        engine gives 20 ms), in real time, until closed.

        Raises `CallError(MICROPHONE_ERROR)` if the device dies mid-call."""
        ...

    async def aclose(self) -> None: ...


class AudioOutput(Protocol):
    """The speaker side: the assistant's audio, mixed, 10 ms frames."""

    async def start(self) -> None:
        """Open the device. Raises `CallError(SPEAKER_ERROR)` when it cannot."""
        ...

    def write(self, frame: np.ndarray) -> None:
        """Queue int16 audio of a whole number of 10 ms frames for playback; never blocks."""
        ...

    def clear(self) -> None:
        """Drop everything queued but not yet played (barge-in)."""
        ...

    async def aclose(self) -> None: ...


class AudioBackend(Protocol):
    """Makes the input and output of one call; the engine shares state (AEC) between them.

    A backend on devices also has `preflight()`, which the call runs (in a thread) before it asks
    for a token, raising `CallError(NO_SOUND_DEVICE)` when the devices cannot be there; backends
    on files or scripts have nothing to check and leave it out (`preflight_of`)."""

    def open_input(self) -> AudioInput: ...

    def open_output(self) -> AudioOutput: ...

    def health(self) -> dict[str, float]:
        """Counters for `AudioHealth` (underruns, overruns, dropped frames, queue depths)."""
        ...


class PlayedBlocks(Protocol):
    """An output that can tell what its speaker played and when it is heard (`PlayedTap`)."""

    def set_on(self, on: bool) -> None: ...

    def drain(self) -> list[tuple[float, np.ndarray]]: ...


def played_tap_of(output: object) -> PlayedBlocks | None:
    """The output's tap of what its speaker played, if it has one (the sound device's does)."""
    tap = getattr(output, "tap", None)
    return tap if tap is not None and callable(getattr(tap, "drain", None)) else None


def preflight_of(backend: object) -> Callable[[], None] | None:
    """The backend's device check before a call, if it has one."""
    check = getattr(backend, "preflight", None)
    return check if callable(check) else None
