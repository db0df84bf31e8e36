"""Calls on WebRTC's own audio device module (`rtc.PlatformAudio`), the browser's design.

Capture, echo cancellation, noise suppression, gain control and playout all run in the module's
native threads (PulseAudio on Linux, Core Audio on macOS, Windows' audio stack); remote audio
plays out by itself and is the echo canceller's reference. No Python runs per audio block: the
session publishes the module's source as the microphone track and reads what it shows the
user from a tap of the assistant's track (100 ms frames) and the room's statistics.

Rules this module keeps:
- one module per call, made in `preflight` before the token (so the room connects with it on)
  and closed when the call's speaker side closes (after the microphone's source);
- a device chosen by name maps to the module's list with the same rules as the Python path (a
  host API suffix, as the devices screen saves it, is ignored: the module has none);
- anything the module cannot do (it does not start, it has no device, a name matches nothing)
  sends the call down the Python path (`fallback`), with the reason in `fallback_reason` for
  the session to say once (a name that matches nothing is said by the Python path instead). A call that must record uses the Python path from the start (the
  module hands out no captured frames).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from wespoke_tui.audio.base import AudioBackend, AudioInput, AudioOutput, preflight_of
from wespoke_tui.settings import Settings

log = logging.getLogger(__name__)

TAP_FRAME_MS = 100  # the assistant's track as the meters and turn timing see it
_HOST_API_SUFFIX = re.compile(r"\s*\[[^\[\]]*\]\s*$")


class NativeUnusable(RuntimeError):
    """The native module cannot carry this call; the message says why. `device_choice`: it is
    the chosen device's name, which the Python path then reports in its own words."""

    def __init__(self, message: str, *, device_choice: bool = False) -> None:
        super().__init__(message)
        self.device_choice = device_choice


def pick_device(spec: str | None, devices: list[Any], kind: str) -> Any | None:
    """The module's device for `spec` (None: the module's default), by index or (part of) its
    name; `NativeUnusable` when nothing or several match."""
    if spec is None or not str(spec).strip():
        return None
    text = _HOST_API_SUFFIX.sub("", str(spec).strip())
    if text.isdigit():
        match = [d for d in devices if d.index == int(text)]
    else:
        wanted = text.casefold()
        match = [d for d in devices if d.name.casefold() == wanted]
        if not match:
            match = [d for d in devices if wanted in d.name.casefold() and not d.name.startswith("default:")]
    if len(match) != 1:
        names = ", ".join(d.name for d in devices) or "none"
        raise NativeUnusable(f"{len(match)} {kind} devices of the native module match {text!r} (it has: {names})",
                             device_choice=True)
    return match[0]


def open_module() -> Any:
    """WebRTC's audio device module (`rtc.PlatformAudio`), or NativeUnusable saying why not."""
    from livekit import rtc

    try:
        return rtc.PlatformAudio()
    except Exception as exc:  # PlatformAudioError, or the FFI's own failure
        raise NativeUnusable(f"the native audio module did not start: {exc}") from None


def module_devices() -> tuple[list[Any], list[Any]]:
    """(microphones, speakers) as the module lists them, its "default: …" entries left out (a
    choice of none is the default); `NativeUnusable` when the module does not start. The module
    is process-wide: one opened here beside a call's shares its device module, and closing it
    leaves the call's alone (tests/test_native_audio.py)."""
    module = open_module()
    try:
        mics, speakers = module.recording_devices(), module.playout_devices()
    except Exception as exc:
        raise NativeUnusable(f"the native audio module did not list its devices: {exc}") from None
    finally:
        module.close()

    def named(devices: list[Any]) -> list[Any]:
        return [d for d in devices if not d.name.startswith("default:")]

    return named(mics), named(speakers)


class NativeMicrophone:
    """The microphone side: the module's audio source, published by the session as it is."""

    def __init__(self, backend: NativeBackend) -> None:
        self._backend = backend
        self.native_source: Any | None = None
        self._closed = asyncio.Event()

    async def start(self) -> None:
        self.native_source = self._backend.create_source()

    async def frames(self) -> AsyncIterator[np.ndarray]:
        """None: the module sends its frames to WebRTC itself."""
        await self._closed.wait()
        return
        yield  # an async generator that never yields

    async def aclose(self) -> None:
        self._closed.set()
        source, self.native_source = self.native_source, None
        if source is not None:
            source.close()


class NativePlayout:
    """The speaker side: the module plays the room's audio itself; frames handed here (the
    session's tap) are not played again."""

    def __init__(self, backend: NativeBackend) -> None:
        self._backend = backend

    async def start(self) -> None:
        return None

    def write(self, frame: np.ndarray) -> None:
        return None

    def clear(self) -> None:
        return None  # the module's buffer is NetEQ's: tens of milliseconds, nothing to flush

    async def aclose(self) -> None:
        self._backend.close()


class NativeBackend:
    """`AudioBackend` of one call on the native module, or on `fallback()` when it cannot be."""

    def __init__(self, settings: Settings, fallback: Callable[[], AudioBackend]) -> None:
        self._settings = settings
        self._make_fallback = fallback
        self._module: Any | None = None
        self.fallback: AudioBackend | None = None
        self.fallback_reason: str | None = None

    @property
    def tap_frame_ms(self) -> int | None:
        return None if self.fallback is not None else TAP_FRAME_MS

    @property
    def native(self) -> bool:
        return self.fallback is None

    def preflight(self) -> None:
        """Start the module and choose its devices, before the token; else the Python path (whose
        own check raises NO_SOUND_DEVICE when there is no sound at all)."""
        try:
            self._module = self._start_module()
        except NativeUnusable as exc:
            self._fall_back(str(exc), say=not exc.device_choice)

    def _start_module(self) -> Any:
        module = open_module()
        try:
            mics, speakers = module.recording_devices(), module.playout_devices()
            if not mics or not speakers:
                raise NativeUnusable(f"the native audio module has {len(mics)} microphones and {len(speakers)} speakers")
            mic = pick_device(self._settings.input_device, mics, "input")
            speaker = pick_device(self._settings.output_device, speakers, "output")
            if mic is not None:
                module.set_recording_device(mic.id)
            if speaker is not None:
                module.set_playout_device(speaker.id)
        except NativeUnusable:
            module.close()
            raise
        except Exception as exc:
            module.close()
            raise NativeUnusable(f"the native audio module refused its devices: {exc}") from None
        log.info("native audio: microphone %s, speaker %s", self._settings.input_device or "default",
                 self._settings.output_device or "default")
        return module

    def _fall_back(self, reason: str, *, say: bool) -> None:
        log.warning("audio: %s; this call uses the Python audio path", reason)
        self.fallback_reason = reason if say else None
        self.fallback = self._make_fallback()
        check = preflight_of(self.fallback)
        if check is not None:
            check()

    def fall_back_now(self, reason: str) -> None:
        """Mid-call (the module lost a device, its source already closed): close the module and
        carry on on the Python path, whose device check raises `CallError(NO_SOUND_DEVICE)` when
        there is no sound left at all. Blocking: run it in a thread."""
        self.close()
        self._fall_back(reason, say=True)

    def create_source(self) -> Any:
        from livekit import rtc

        assert self._module is not None, "preflight() first"
        s = self._settings
        options = rtc.PlatformAudioOptions(echo_cancellation=s.aec, noise_suppression=s.noise_suppression,
                                           auto_gain_control=s.auto_gain)
        return self._module.create_audio_source(options)

    def open_input(self) -> AudioInput:
        return self.fallback.open_input() if self.fallback is not None else NativeMicrophone(self)

    def open_output(self) -> AudioOutput:
        return self.fallback.open_output() if self.fallback is not None else NativePlayout(self)

    def health(self) -> dict[str, float]:
        return self.fallback.health() if self.fallback is not None else {}

    def close(self) -> None:
        module, self._module = self._module, None
        if module is not None:
            module.close()
