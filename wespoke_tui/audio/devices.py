"""Sound devices through PortAudio (sounddevice): listing, choice by index or name, rates.

A device is chosen by index, or by text as `device_choice.py` rules: "name [host API]" (what the
devices screen saves) names one device, a bare name prefers PortAudio's default host API, and
an ambiguous text is refused naming each candidate with its host API and index.

sounddevice is imported lazily: without the PortAudio library the rest of the app (demo, WAV
backend, `--help`) still works, and the user gets one clear sentence instead of a traceback.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Literal, TextIO

from wespoke_tui.audio.base import SAMPLE_RATE
from wespoke_tui.audio.device_choice import choice_text, matching_devices
from wespoke_tui.errors import MICROPHONE_ERROR, NO_SOUND_DEVICE, SPEAKER_ERROR, CallError, Lang, describe
from wespoke_tui.sound_help import SoundMissing

if TYPE_CHECKING:
    from wespoke_tui.settings import Settings

Kind = Literal["input", "output"]

log = logging.getLogger(__name__)

PORTAUDIO_MISSING = (
    "PortAudio is not available ({reason}). Install it (Debian/Ubuntu: apt install libportaudio2; "
    "macOS: brew install portaudio) or use --demo."
)


class AudioUnavailable(RuntimeError):
    """PortAudio (the native library under sounddevice) cannot be loaded."""


def sounddevice() -> ModuleType:
    """The sounddevice module, or `AudioUnavailable` with a readable reason."""
    try:
        import sounddevice as sd  # it has no type information: Any to mypy (pyproject.toml)
    except (OSError, ImportError) as exc:
        raise AudioUnavailable(PORTAUDIO_MISSING.format(reason=exc)) from None
    _route_alsa_errors_to_log()
    module: ModuleType = sd
    return module


# ALSA prints its errors ("ALSA lib pcm.c: underrun occurred") straight to stderr, which would
# scribble over the TUI; its handler is process-wide, so we point it at our log once.
_ALSA_ERROR_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
_alsa_handler: object | None = None


def _log_alsa_error(filename: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None) -> None:
    log.debug("ALSA %s:%d %s: %s (%d)", (filename or b"").decode(errors="replace"), line,
              (function or b"").decode(errors="replace"), (fmt or b"").decode(errors="replace"), err)


@contextlib.contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """While opening a stream, PortAudio prints its failures ("Expression ... failed") to fd 2,
    under the TUI's screen: send them to the log instead."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace").strip()
            if text:
                log.debug("PortAudio: %s", " | ".join(text.splitlines()))


def _route_alsa_errors_to_log() -> None:
    global _alsa_handler
    if _alsa_handler is not None or not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("asound")
    if name is None:
        return
    try:
        handler = _ALSA_ERROR_HANDLER(_log_alsa_error)
        ctypes.CDLL(name).snd_lib_error_set_handler(handler)
        _alsa_handler = handler  # keep the callback alive as long as ALSA may call it
    except (OSError, AttributeError):
        log.debug("could not route ALSA errors to the log", exc_info=True)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    index: int
    name: str
    host_api: str
    input_channels: int
    output_channels: int
    default_rate: float
    is_default_input: bool
    is_default_output: bool
    in_default_host_api: bool = False  # PortAudio's default host API (MME, Core Audio, ALSA)

    @property
    def choice(self) -> str:
        """How a choice of this device is saved: "name [host API]"."""
        return choice_text(self.name, self.host_api)

    def channels(self, kind: Kind) -> int:
        return self.input_channels if kind == "input" else self.output_channels


def list_devices() -> list[DeviceInfo]:
    sd = sounddevice()
    host_apis = [api["name"] for api in sd.query_hostapis()]
    default_in, default_out = _default_indices(sd)
    default_api = _default_host_api(sd)
    return [
        DeviceInfo(
            index=index,
            name=str(dev["name"]),
            host_api=host_apis[dev["hostapi"]] if dev["hostapi"] < len(host_apis) else "?",
            input_channels=int(dev["max_input_channels"]),
            output_channels=int(dev["max_output_channels"]),
            default_rate=float(dev["default_samplerate"]),
            is_default_input=index == default_in,
            is_default_output=index == default_out,
            in_default_host_api=dev["hostapi"] == default_api,
        )
        for index, dev in enumerate(sd.query_devices())
    ]


def _default_indices(sd: ModuleType) -> tuple[int, int]:
    default = sd.default.device
    pair = list(default) if isinstance(default, (list, tuple)) else [default, default]
    out: list[int] = []
    for value, kind in zip(pair, ("input", "output"), strict=True):
        if isinstance(value, int) and value >= 0:
            out.append(value)
            continue
        try:  # sd.default may hold -1 or a name; ask PortAudio for its own default
            out.append(int(sd.query_devices(kind=kind)["index"]))
        except Exception:
            out.append(-1)
    return out[0], out[1]


def _default_host_api(sd: ModuleType) -> int:
    try:
        return int(sd.default.hostapi)
    except Exception:  # noqa: BLE001 - no default host API: no preference
        return -1


def _error(kind: Kind, message: str, **details: object) -> CallError:
    code = MICROPHONE_ERROR if kind == "input" else SPEAKER_ERROR
    return CallError.of(code, message, details=dict(details))


def _describe(devices: list[DeviceInfo]) -> str:
    return "; ".join(f"[{d.index}] {d.choice}" for d in devices) or "none"


def resolve_device(spec: str | int | None, kind: Kind, devices: list[DeviceInfo] | None = None) -> int:
    """The index of the `kind` device chosen by `spec`: None (the default), an index, or a name.

    A name matches case-insensitively, exactly first, then as a substring; "name [host API]"
    names the device under that API, and a bare name under several host APIs the default API's
    one (`device_choice.matching_devices`). Nothing or several matching raises `CallError`
    (MICROPHONE_ERROR / SPEAKER_ERROR) naming the candidates with their host API and index.
    """
    try:
        devices = list_devices() if devices is None else devices
    except AudioUnavailable as exc:
        raise _error(kind, str(exc)) from None
    usable = [d for d in devices if d.channels(kind) > 0]
    if not usable:
        raise _error(kind, f"no {kind} device found")
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        default = next((d for d in usable if (d.is_default_input if kind == "input" else d.is_default_output)), None)
        if default is None:
            raise _error(kind, f"no default {kind} device; choose one of: {_describe(usable)}")
        return default.index
    text = str(spec).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        match = next((d for d in usable if d.index == index), None)
        if match is None:
            raise _error(kind, f"no {kind} device with index {index}; {kind} devices: {_describe(usable)}")
        return match.index
    matches = matching_devices(text, usable)
    if len(matches) == 1:
        return matches[0].index
    if not matches:
        raise _error(kind, f"no {kind} device matches {text!r}; {kind} devices: {_describe(usable)}")
    example = matches[0]
    raise _error(kind, f"{len(matches)} {kind} devices match {text!r}: {_describe(matches)}; choose one "
                       f"by its index ({example.index}) or by its name with the host API "
                       f"({example.choice!r})")


def pick_rate(sd: ModuleType, device: int, kind: Kind) -> int:
    """48 kHz if the device takes it (no resampling), else its own default rate.

    ALSA hardware refuses rates it does not support (PortAudio error -9997), so never force one.
    """
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=device, samplerate=SAMPLE_RATE, channels=1, dtype="int16")
        return SAMPLE_RATE
    except Exception:
        return int(sd.query_devices(device)["default_samplerate"])


def format_devices(devices: list[DeviceInfo]) -> str:
    header = ("#", "name", "host API", "in", "out", "rate", "default")
    rows = [
        (
            str(d.index),
            d.name,
            d.host_api,
            str(d.input_channels),
            str(d.output_channels),
            f"{d.default_rate:.0f}",
            ",".join(k for k, on in (("input", d.is_default_input), ("output", d.is_default_output)) if on),
        )
        for d in devices
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def missing_sound(devices: list[DeviceInfo]) -> SoundMissing | None:
    """What a call would lack on these devices, or None."""
    has_input = any(d.input_channels > 0 for d in devices)
    has_output = any(d.output_channels > 0 for d in devices)
    if not has_input and not has_output:
        return SoundMissing.DEVICES
    if not has_input:
        return SoundMissing.INPUT
    if not has_output:
        return SoundMissing.OUTPUT
    return None


def no_sound(missing: SoundMissing, message: str, platform: str = sys.platform) -> CallError:
    """NO_SOUND_DEVICE: what a call lacks before its token (`wespoke_tui.sound_help` words it)."""
    return CallError.of(NO_SOUND_DEVICE, message, details={"missing": missing.value, "platform": platform})


def print_devices(settings: Settings | None = None, out: TextIO | None = None) -> int:
    """`wespoke-tui devices`: the table, and which devices the current settings choose."""
    out = out or sys.stdout
    lang: Lang = "en" if settings is None else settings.lang
    try:
        devices = list_devices()
    except AudioUnavailable as exc:  # what a call would say before its token, word for word
        print(describe(no_sound(SoundMissing.PORTAUDIO, str(exc)), lang), file=sys.stderr)
        return 1
    missing = missing_sound(devices)
    if devices:
        print(format_devices(devices), file=out)
    if missing is not None:
        print(describe(no_sound(missing, "devices"), lang), file=sys.stderr)
        return 1
    specs: tuple[tuple[Kind, str | None], ...] = (
        ("input", None if settings is None else settings.input_device),
        ("output", None if settings is None else settings.output_device),
    )
    for kind, spec in specs:
        try:
            index = resolve_device(spec, kind, devices)
            chosen = next(d for d in devices if d.index == index)
            print(f"{kind}: [{chosen.index}] {chosen.choice}", file=out)
        except CallError as exc:
            print(f"{kind}: {exc.message}", file=out)
    return 0
