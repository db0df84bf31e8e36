"""What to tell a user whose sound is missing or silent, for their OS, in tr and en.

`CallError` carries the code and the facts (`missing`, `platform`); this module turns them into
the sentence with the fix: PortAudio is packaged per Linux distribution (the macOS and Windows
wheels of sounddevice bring their own), a box without a sound server has no devices at all, and
a microphone without permission gives exact digital silence on macOS and Windows.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class SoundMissing(str, enum.Enum):
    """What a call needs and did not find before it asked for a token."""

    PORTAUDIO = "portaudio"
    INPUT = "input"
    OUTPUT = "output"
    DEVICES = "devices"  # neither an input nor an output


def os_family(platform: str) -> str:
    if platform == "darwin":
        return "macos"
    if platform in ("win32", "cygwin"):
        return "windows"
    return "linux"


_PORTAUDIO = {
    "linux": {
        "en": "PortAudio, the sound library, is missing. Install it: Debian/Ubuntu "
              "`sudo apt install libportaudio2`, Fedora `sudo dnf install portaudio`, Arch `sudo pacman -S portaudio`.",
        "tr": "Ses kitaplığı PortAudio eksik. Kurun: Debian/Ubuntu `sudo apt install libportaudio2`, "
              "Fedora `sudo dnf install portaudio`, Arch `sudo pacman -S portaudio`.",
    },
    "other": {
        "en": "PortAudio, the sound library, could not be loaded. On macOS and Windows it comes with "
              "wespoke-tui's sounddevice package: reinstall wespoke-tui (`pipx reinstall wespoke-tui`).",
        "tr": "Ses kitaplığı PortAudio yüklenemedi. macOS ve Windows'ta wespoke-tui'nin sounddevice paketiyle "
              "gelir: wespoke-tui'yi yeniden kurun (`pipx reinstall wespoke-tui`).",
    },
}

_WHAT = {
    SoundMissing.INPUT: {"en": "No microphone was found.", "tr": "Mikrofon bulunamadı."},
    SoundMissing.OUTPUT: {"en": "No speaker or headphones were found.", "tr": "Hoparlör ya da kulaklık bulunamadı."},
    SoundMissing.DEVICES: {"en": "No sound device was found.", "tr": "Hiç ses aygıtı bulunamadı."},
}

_WHERE = {
    "linux": {
        "en": "Is a sound server (PipeWire or PulseAudio) running? `wespoke-tui devices` lists what PortAudio sees.",
        "tr": "Bir ses sunucusu (PipeWire ya da PulseAudio) çalışıyor mu? `wespoke-tui devices` PortAudio'nun "
              "gördüğü aygıtları listeler.",
    },
    "macos": {
        "en": "Connect one and check System Settings → Sound; `wespoke-tui devices` lists what PortAudio sees.",
        "tr": "Bir aygıt bağlayın ve Sistem Ayarları → Ses'e bakın; `wespoke-tui devices` aygıtları listeler.",
    },
    "windows": {
        "en": "Connect one and check Settings → System → Sound; `wespoke-tui devices` lists what PortAudio sees.",
        "tr": "Bir aygıt bağlayın ve Ayarlar → Sistem → Ses'e bakın; `wespoke-tui devices` aygıtları listeler.",
    },
}

_NO_CALL = {
    "en": "No call was started. You can chat in writing instead: press t, or run with --chat.",
    "tr": "Arama başlatılmadı. Bunun yerine yazışabilirsiniz: t tuşuna basın ya da --chat ile çalıştırın.",
}

_SILENT = {
    "macos": {
        "en": "The microphone gives only silence: the terminal may not have permission to use it. Grant it in "
              "System Settings → Privacy & Security → Microphone → your terminal app, then restart the terminal.",
        "tr": "Mikrofondan yalnızca sessizlik geliyor: terminalin mikrofon izni olmayabilir. Sistem Ayarları → "
              "Gizlilik ve Güvenlik → Mikrofon → terminal uygulamanız altından izin verin, sonra terminali yeniden başlatın.",
    },
    "windows": {
        "en": "The microphone gives only silence: desktop apps may not be allowed to use it. Allow it in "
              "Settings → Privacy & security → Microphone → Let desktop apps access your microphone.",
        "tr": "Mikrofondan yalnızca sessizlik geliyor: masaüstü uygulamalarının mikrofon izni olmayabilir. Ayarlar → "
              "Gizlilik ve güvenlik → Mikrofon → Masaüstü uygulamalarının mikrofonunuza erişmesine izin verin.",
    },
    "linux": {
        "en": "The microphone gives only silence: its source may be muted or suspended in the sound server. "
              "Check it with `pactl list sources` or `wpctl status` (or pavucontrol).",
        "tr": "Mikrofondan yalnızca sessizlik geliyor: kaynağı ses sunucusunda kapalı ya da askıda olabilir. "
              "`pactl list sources` ya da `wpctl status` (veya pavucontrol) ile bakın.",
    },
}


def sound_message(code: str, lang: str, details: Mapping[str, Any]) -> str:
    """The user's sentence for NO_SOUND_DEVICE or MICROPHONE_SILENT (`details`: missing, platform)."""
    lang = lang if lang in ("tr", "en") else "en"
    family = os_family(str(details.get("platform") or "linux"))
    if code == "MICROPHONE_SILENT":
        return _SILENT[family][lang]
    try:
        missing = SoundMissing(details.get("missing", SoundMissing.DEVICES.value))
    except ValueError:
        missing = SoundMissing.DEVICES
    if missing is SoundMissing.PORTAUDIO:
        first = _PORTAUDIO["linux" if family == "linux" else "other"][lang]
    else:
        first = f"{_WHAT[missing][lang]} {_WHERE[family][lang]}"
    return f"{first} {_NO_CALL[lang]}"
