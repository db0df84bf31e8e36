"""Before a call asks for a token: PortAudio loads and there is a microphone and a speaker.

A token creates (and bills) a call on the server, so a machine that cannot make sound (an SSH
box without a sound server, a Linux without PortAudio) must find out first, and be told what is
missing, the fix for its OS and that the text chat works there (`sound_help`). A device chosen
by a name that matches nothing is not this check's business: that call goes on listen-only or
fails at its device, as before.
"""

from __future__ import annotations

import sys

from wespoke_tui.audio.devices import AudioUnavailable, DeviceInfo, list_devices
from wespoke_tui.errors import NO_SOUND_DEVICE, CallError
from wespoke_tui.sound_help import SoundMissing


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
    return CallError.of(NO_SOUND_DEVICE, message, details={"missing": missing.value, "platform": platform})


def check_sound_devices(platform: str = sys.platform) -> None:
    """Raises `CallError(NO_SOUND_DEVICE)` when PortAudio or a device of either kind is missing."""
    try:
        devices = list_devices()
    except AudioUnavailable as exc:
        raise no_sound(SoundMissing.PORTAUDIO, str(exc), platform) from None
    missing = missing_sound(devices)
    if missing is not None:
        raise no_sound(missing, f"no sound device: {missing.value} missing ({len(devices)} devices listed)", platform)
