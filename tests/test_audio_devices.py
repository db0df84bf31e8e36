"""Device listing and choice, the mic probe, and the device failures, on the rig's real PortAudio.

The rig defines ALSA PCMs `rig_mic`, `rig_speaker` (PulseAudio `mic` / `speaker`) and
`rig_missing` (a PulseAudio source that does not exist: listed, but cannot be opened).
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests.stack.pulse_rig import PulseRig, alsa_base_config, segments, write_realtime
from tests.support.signals import dominant_hz, frame_levels, power_dbfs, read_wav, sine, write_wav
from tests.support.waiting import eventually
from wespoke_tui.audio.devices import (
    format_devices,
    list_devices,
    print_devices,
    resolve_device,
)
from wespoke_tui.audio.engine import SoundDeviceBackend
from wespoke_tui.audio.mic_probe import MicLevelProbe
from wespoke_tui.errors import MICROPHONE_ERROR, SPEAKER_ERROR, CallError, describe
from wespoke_tui.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def index_of(name: str) -> int:
    return next(d.index for d in list_devices() if d.name == name)


def test_lists_the_rig_devices(sound_rig: PulseRig) -> None:
    devices = list_devices()
    names = [d.name for d in devices]
    assert {"rig_mic", "rig_speaker", "rig_missing", "default"} <= set(names)
    default = next(d for d in devices if d.name == "default")
    assert default.is_default_input and default.is_default_output
    assert sum(d.is_default_input for d in devices) == 1
    mic = next(d for d in devices if d.name == "rig_mic")
    assert mic.host_api == "ALSA" and mic.input_channels > 0 and mic.default_rate > 0


def test_print_devices_shows_a_table_and_the_choice(sound_rig: PulseRig) -> None:
    out = io.StringIO()
    assert print_devices(Settings(input_device="rig_mic", output_device="nothing like this"), out) == 0
    text = out.getvalue()
    header, *rows = text.splitlines()
    assert header.split()[:3] == ["#", "name", "host"]
    assert any(row.split()[1] == "rig_speaker" for row in rows)
    assert f"input: [{index_of('rig_mic')}] rig_mic" in text
    assert "output: no output device matches 'nothing like this'" in text
    assert "default" in format_devices(list_devices())


def test_resolve_by_default_index_and_name(sound_rig: PulseRig) -> None:
    mic = index_of("rig_mic")
    assert resolve_device(None, "input") == index_of("default")
    assert resolve_device(str(mic), "input") == mic
    assert resolve_device(mic, "input") == mic
    assert resolve_device("rig_mic", "input") == mic
    assert resolve_device("RIG_MIC", "input") == mic, "case-insensitive"
    assert resolve_device("speak", "output") == index_of("rig_speaker"), "substring"
    assert resolve_device("default", "output") == index_of("default"), "an exact name beats substrings"


def test_resolve_errors_name_the_candidates(sound_rig: PulseRig) -> None:
    with pytest.raises(CallError) as nothing:
        resolve_device("usb headset", "input")
    assert nothing.value.code == MICROPHONE_ERROR
    assert "no input device matches 'usb headset'" in nothing.value.message
    assert "rig_mic" in nothing.value.message
    with pytest.raises(CallError) as several:
        resolve_device("rig_", "output")
    assert several.value.code == SPEAKER_ERROR
    assert "3 output devices match 'rig_'" in several.value.message
    with pytest.raises(CallError) as bad_index:
        resolve_device("99", "input")
    assert "no input device with index 99" in bad_index.value.message


def test_the_saved_form_names_the_rig_device_under_its_host_api(sound_rig: PulseRig) -> None:
    devices = list_devices()
    # ALSA is PortAudio's default host API on Linux: a bare name prefers its devices.
    assert all(d.in_default_host_api for d in devices if d.host_api == "ALSA")
    mic = next(d for d in devices if d.name == "rig_mic")
    assert mic.choice == "rig_mic [ALSA]"
    assert resolve_device(mic.choice, "input") == mic.index
    assert resolve_device("RIG_MIC [alsa]", "input") == mic.index
    with pytest.raises(CallError, match=r"no input device matches 'rig_mic \[JACK\]'"):
        resolve_device("rig_mic [JACK]", "input")


def sound_ended(samples: np.ndarray, quiet_frames: int = 10) -> bool:
    """Whether `samples` hold a sound (a 10 ms frame above -40 dBFS) followed by `quiet_frames` quiet ones."""
    levels = frame_levels(samples)
    return levels.size > quiet_frames and bool((levels > -40).any()) and bool((levels[-quiet_frames:] <= -40).all())


async def test_capture_and_playback_on_devices_chosen_by_name(sound_rig: PulseRig, tmp_path: Path) -> None:
    backend = SoundDeviceBackend(
        Settings(input_device="rig_mic", output_device=str(index_of("rig_speaker")), aec=False, noise_suppression=False, auto_gain=False)
    )
    output = backend.open_output()
    await output.start()
    capture = backend.open_input()
    await capture.start()
    assert backend.capture is not None and backend.capture.device_name == "rig_mic"
    assert backend.playback is not None and backend.playback.device_name == "rig_speaker"
    frames: list[np.ndarray] = []

    async def consume() -> None:
        async for frame in capture.frames():
            frames.append(frame)

    task = asyncio.create_task(consume())
    sound_rig.start_recording_speaker(tmp_path / "out.wav")
    recording = tmp_path / "out.raw"  # what the rig's recorder writes as it goes
    await eventually(lambda: recording.exists() and recording.stat().st_size > 0, timeout=5, what="the speaker recorded")
    player = sound_rig.play_into_mic(write_wav(tmp_path / "in.wav", sine(1000, 1.0, -20.0)))
    await write_realtime(output.write, sine(660, 1.0, -20.0))
    await asyncio.to_thread(player.wait, 10)

    def recorded_so_far() -> np.ndarray:
        raw = recording.read_bytes()
        return np.frombuffer(raw[: len(raw) // 2 * 2], dtype=np.int16)

    await eventually(lambda: sound_ended(np.concatenate(frames) if frames else np.zeros(0, np.int16)), timeout=5,
                     interval=0.05, what="the tone captured to its end")
    await eventually(lambda: sound_ended(recorded_so_far()), timeout=5, interval=0.05,
                     what="the speaker recorded to the tone's end")
    task.cancel()
    recorded, _ = read_wav(sound_rig.stop_recording())  # type: ignore[arg-type]
    await capture.aclose()
    await output.aclose()
    heard = np.concatenate(frames)
    (tone_in,) = segments(frame_levels(heard))
    assert dominant_hz(tone_in.steady(heard), ignore_dc=True) == pytest.approx(1000, abs=5)
    (tone_out,) = segments(frame_levels(recorded))
    assert dominant_hz(tone_out.steady(recorded, margin=5), ignore_dc=True) == pytest.approx(660, abs=3)
    assert power_dbfs(tone_out.steady(recorded, margin=5)) == pytest.approx(-23.0, abs=1.5)


async def test_mic_probe_yields_levels_at_a_bounded_rate(sound_rig: PulseRig, tmp_path: Path) -> None:
    player = sound_rig.play_into_mic(write_wav(tmp_path / "tone.wav", sine(1000, 3.0, -20.0)))
    await asyncio.sleep(0.3)  # a window: the tone is on before the probe opens
    started = time.monotonic()
    levels = [level async for level in MicLevelProbe("rig_mic", seconds=1.5, rate_hz=20).levels()]
    elapsed = time.monotonic() - started
    player.kill()
    assert 1.4 <= elapsed <= 3.0
    assert 20 <= len(levels) <= 20 * elapsed + 1
    assert levels[-1].rms_dbfs == pytest.approx(-23.0, abs=1.5)


async def test_a_device_that_cannot_be_opened_is_a_microphone_error(sound_rig: PulseRig) -> None:
    capture = SoundDeviceBackend(Settings(input_device="rig_missing")).open_input()
    with pytest.raises(CallError) as error:
        await capture.start()
    assert error.value.code == MICROPHONE_ERROR
    assert "cannot open input device" in error.value.message and "rig_missing" in error.value.message
    assert "listen-only" in describe(error.value, "en")


async def test_unknown_input_device_is_a_microphone_error(sound_rig: PulseRig) -> None:
    capture = SoundDeviceBackend(Settings(input_device="no such mic")).open_input()
    with pytest.raises(CallError) as error:
        await capture.start()
    assert error.value.code == MICROPHONE_ERROR


async def test_a_device_that_dies_mid_call_stops_frames_with_a_microphone_error(sound_rig: PulseRig) -> None:
    capture = SoundDeviceBackend(Settings(input_device="rig_mic")).open_input()
    await capture.start()
    received = 0
    died_at = 0.0
    with pytest.raises(CallError) as error:
        async for _frame in capture.frames():
            received += 1
            if received == 50:  # half a second of a healthy microphone, then it dies silently
                sound_rig.suspend_mic()
                died_at = time.monotonic()
    noticed_after = time.monotonic() - died_at
    await capture.aclose()
    assert error.value.code == MICROPHONE_ERROR
    assert "stopped calling back" in error.value.message
    assert noticed_after < 1.5


NO_DEVICE_SCRIPT = textwrap.dedent(
    """
    import asyncio, contextlib, io
    from wespoke_tui.audio.devices import list_devices, print_devices
    from wespoke_tui.audio.engine import SoundDeviceBackend
    from wespoke_tui.errors import CallError, describe
    from wespoke_tui.settings import Settings

    async def main():
        print("devices", len(list_devices()))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err):
            code = print_devices(Settings(), out)
        print("print_devices", code, repr(out.getvalue()))
        print("says", err.getvalue().strip())
        backend = SoundDeviceBackend(Settings())
        try:
            backend.preflight()
        except CallError as exc:
            print("preflight", exc.code, exc.details["missing"], describe(exc, "en"))
        for name, part in (("output", backend.open_output()), ("input", backend.open_input())):
            try:
                await part.start()
                print(name, "opened")
            except CallError as exc:
                print(name, exc.code, exc.message)

    asyncio.run(main())
    """
)


def test_a_machine_without_sound_devices(tmp_path: Path) -> None:
    """No device at all: `devices` and the check before a call's token say the same (NO_SOUND_DEVICE);
    the devices themselves, if opened anyway, fail with SPEAKER_ERROR and MICROPHONE_ERROR."""
    from wespoke_tui.errors import NO_SOUND_DEVICE, user_message
    (tmp_path / "home").mkdir()
    config = tmp_path / "asound.conf"
    config.write_text(alsa_base_config())  # ALSA with no cards and no plugins: no devices at all
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "ALSA_CONFIG_PATH": str(config),
        "PULSE_SERVER": f"unix:{tmp_path}/none",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", NO_DEVICE_SCRIPT], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "devices 0"
    said = user_message(NO_SOUND_DEVICE, "en", details={"missing": "devices", "platform": sys.platform})
    assert lines[1] == "print_devices 1 ''"
    assert lines[2] == f"says {said}"
    assert lines[3] == f"preflight NO_SOUND_DEVICE devices {said}"
    assert lines[4] == "output SPEAKER_ERROR no output device found"
    assert lines[5] == "input MICROPHONE_ERROR no input device found"


def test_wespoke_tui_devices_command(pulse_rig: PulseRig) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wespoke_tui", "devices", "--input-device", "RIG_MIC"],
        env={**os.environ, **pulse_rig.env, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["#", "name", "host", "API", "in", "out", "rate", "default"]
    assert any(line.split()[1:2] == ["rig_speaker"] for line in lines[1:])
    # The choice is shown as it is kept: with its host API.
    assert lines[-2].startswith("input: [") and lines[-2].endswith("] rig_mic [ALSA]")
    assert lines[-1].endswith("] default [ALSA]")
    assert "Traceback" not in result.stderr
