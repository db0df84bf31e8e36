"""Before a call asks for a token: PortAudio loads and there is a microphone and a speaker.

A token creates (and bills) a call on the server, so a machine that cannot make sound (an SSH
box without a sound server, a Linux without PortAudio) must find out first, and be told what is
missing, the fix for its OS and that the text chat works there (`sound_help`). A device chosen
by a name that matches nothing is not this check's business: that call goes on listen-only or
fails at its device, as before.
"""

from __future__ import annotations

import sys

from wespoke_tui.audio.devices import AudioUnavailable, list_devices, missing_sound, no_sound
from wespoke_tui.sound_help import SoundMissing

__all__ = ["check_sound_devices", "missing_sound", "no_sound"]


def check_sound_devices(platform: str = sys.platform) -> None:
    """Raises `CallError(NO_SOUND_DEVICE)` when PortAudio or a device of either kind is missing."""
    try:
        devices = list_devices()
    except AudioUnavailable as exc:
        raise no_sound(SoundMissing.PORTAUDIO, str(exc), platform) from None
    missing = missing_sound(devices)
    if missing is not None:
        raise no_sound(missing, f"no sound device: {missing.value} missing ({len(devices)} devices listed)", platform)
