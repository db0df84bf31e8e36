"""A box without sound (no sound server, or no PortAudio): the call says what is missing and
how to fix it on the user's OS, offers the text chat, and never asks for a token (a token
creates, and bills, a call on the server). `devices` and the demo say the same."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wespoke_tui.audio.devices import DeviceInfo
from wespoke_tui.audio.preflight import missing_sound
from wespoke_tui.errors import NO_SOUND_DEVICE, CallError, describe, user_message
from wespoke_tui.sound_help import SoundMissing, sound_message

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "wespoke-tui"
NO_PORTAUDIO = "import sys; sys.modules['sounddevice'] = None; from wespoke_tui.cli import main; sys.exit(main())"


def no_sound_env(tmp_path: Path) -> dict[str, str]:
    """No sound server: PulseAudio's socket points nowhere, no autospawn, a home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WESPOKE_", "PULSE_"))}
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return {**env, "PULSE_SERVER": f"unix:{tmp_path / 'no-such-socket'}", "XDG_RUNTIME_DIR": str(runtime),
            "HOME": str(tmp_path), "PULSE_CLIENTCONFIG": str(tmp_path / "client.conf")}


def expected(missing: SoundMissing, lang: str = "en") -> str:
    return user_message(NO_SOUND_DEVICE, lang, details={"missing": missing.value, "platform": sys.platform})


def device(index: int, inputs: int, outputs: int) -> DeviceInfo:
    return DeviceInfo(index, f"dev{index}", "ALSA", inputs, outputs, 48000.0, False, False)


def test_what_a_call_lacks_is_named() -> None:
    assert missing_sound([]) is SoundMissing.DEVICES
    assert missing_sound([device(0, 0, 2)]) is SoundMissing.INPUT
    assert missing_sound([device(0, 1, 0)]) is SoundMissing.OUTPUT
    assert missing_sound([device(0, 1, 0), device(1, 0, 2)]) is None


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
@pytest.mark.parametrize("lang", ["en", "tr"])
def test_each_os_gets_its_own_fix_and_the_text_chat_is_offered(platform: str, lang: str) -> None:
    portaudio = sound_message(NO_SOUND_DEVICE, lang, {"missing": "portaudio", "platform": platform})
    none = sound_message(NO_SOUND_DEVICE, lang, {"missing": "devices", "platform": platform})
    for text in (portaudio, none):
        assert "--chat" in text and ("press t," in text or "t tuşuna" in text)
    if platform == "linux":
        assert "libportaudio2" in portaudio and "dnf install portaudio" in portaudio and "pacman -S portaudio" in portaudio
        assert "PulseAudio" in none
    else:
        assert "libportaudio2" not in portaudio and "pipx reinstall wespoke-tui" in portaudio
        assert ("System Settings" if platform == "darwin" else "Settings → System → Sound") in none or lang == "tr"
    error = CallError.of(NO_SOUND_DEVICE, "x", details={"missing": "input", "platform": platform})
    assert describe(error, lang) == sound_message(NO_SOUND_DEVICE, lang, {"missing": "input", "platform": platform})  # type: ignore[arg-type]


def test_a_voice_call_on_a_box_without_a_sound_server_asks_for_no_token(wespoke_stack, tmp_path: Path) -> None:
    api = wespoke_stack.api
    done = subprocess.run([str(SCRIPT), "call", "--no-tui", "--api-key", api.api_key, "--assistant-id", api.assistant_id,
                           "--api-url", api.url, "--lang", "en"], capture_output=True, text=True,
                          env=no_sound_env(tmp_path), timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [expected(SoundMissing.DEVICES)]
    assert "Traceback" not in done.stdout + done.stderr and api.api_key not in done.stdout + done.stderr
    assert api.calls == {} and not [r for r in api.requests if "/token" in str(r)], api.requests


def test_without_portaudio_a_voice_call_says_how_to_install_it_and_asks_for_no_token(wespoke_stack, tmp_path: Path) -> None:
    api = wespoke_stack.api
    done = subprocess.run([sys.executable, "-c", NO_PORTAUDIO, "call", "--no-tui", "--api-key", api.api_key,
                           "--assistant-id", api.assistant_id, "--api-url", api.url, "--lang", "en"],
                          capture_output=True, text=True, cwd=REPO, env=no_sound_env(tmp_path), timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [expected(SoundMissing.PORTAUDIO)]
    assert api.calls == {} and api.requests == []


@pytest.mark.parametrize("lang", ["en", "tr"])
def test_the_demo_call_without_sound_says_the_same(tmp_path: Path, lang: str) -> None:
    done = subprocess.run([str(SCRIPT), "call", "--no-tui", "--demo", "--lang", lang], capture_output=True, text=True,
                          env=no_sound_env(tmp_path), timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [expected(SoundMissing.DEVICES, lang)]


def test_devices_without_sound_says_the_same(tmp_path: Path) -> None:
    done = subprocess.run([str(SCRIPT), "devices"], capture_output=True, text=True, env=no_sound_env(tmp_path), timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert expected(SoundMissing.DEVICES) in done.stdout + done.stderr
    nothing = subprocess.run([sys.executable, "-c", NO_PORTAUDIO, "devices"], capture_output=True, text=True,
                             cwd=REPO, env=no_sound_env(tmp_path), timeout=60)
    assert nothing.returncode == 1 and expected(SoundMissing.PORTAUDIO) in nothing.stderr
