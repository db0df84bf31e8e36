"""Calls on WebRTC's own audio device module (`rtc.PlatformAudio`) on the PulseAudio rig: the
microphone reaches the assistant and its voice reaches the speaker with no Python per audio
block, the meters and mute work, a module that cannot start sends the call down the Python path
(said once), and every hang-up leaves the room."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from tests.stack.pulse_rig import read_wav, sine, write_wav
from tests.test_session import Recorder, wait_until_gone
from wespoke_tui.audio.engine import SoundDeviceBackend, device_backend
from wespoke_tui.audio.native import NativeBackend, pick_device
from wespoke_tui.errors import AUDIO_FALLBACK, MICROPHONE_SILENT, RECORDING_NEEDS_PYTHON
from wespoke_tui.events import AssistantLevel, CallState, ErrorCleared, ErrorEvent, MicLevel
from wespoke_tui.session import CallSession
from wespoke_tui.settings import AudioEngine

pytestmark = pytest.mark.timeout(120)


def loud_seconds(samples: np.ndarray, floor_dbfs: float = -30.0) -> float:
    blocks = samples[: samples.size // 4800 * 4800].reshape(-1, 4800).astype(np.float64) / 32768
    return float(np.sum(10 * np.log10(np.mean(blocks * blocks, axis=1) + 1e-12) > floor_dbfs)) * 0.1


async def energy_after(assistant: Any, wall: float, above_dbfs: float, timeout: float) -> dict[str, Any]:
    return await asyncio.to_thread(
        assistant.wait_for, "energy", lambda e: e["wall"] > wall and e["rms_dbfs"] > above_dbfs, timeout)


def test_a_device_name_maps_to_the_modules_list_as_on_the_python_path() -> None:
    devices = [rtc.AudioDeviceInfo(0, "default: mic", "index:0"), rtc.AudioDeviceInfo(1, "mic", "index:1"),
               rtc.AudioDeviceInfo(2, "USB Mic", "index:2")]
    assert pick_device(None, devices, "input") is None  # the module's default
    assert pick_device("mic", devices, "input").id == "index:1"  # exact before part
    assert pick_device("usb", devices, "input").id == "index:2"
    assert pick_device("USB Mic [ALSA]", devices, "input").id == "index:2"  # as the devices screen saves it
    assert pick_device("2", devices, "input").id == "index:2"
    with pytest.raises(Exception, match="0 input devices of the native module match 'nope'"):
        pick_device("nope", devices, "input")


def native(stack: Any, **overrides: Any) -> Any:
    return stack.settings(audio_engine=AudioEngine.NATIVE, **overrides)


def test_the_native_module_is_asked_for_and_never_for_the_demo_or_recordings(wespoke_stack, tmp_path) -> None:
    assert wespoke_stack.settings().audio_engine is AudioEngine.PYTHON  # the default, until its latency is known
    assert isinstance(device_backend(native(wespoke_stack)), NativeBackend)
    assert isinstance(device_backend(wespoke_stack.settings()), SoundDeviceBackend)
    assert isinstance(device_backend(native(wespoke_stack, demo=True)), SoundDeviceBackend)
    assert isinstance(device_backend(native(wespoke_stack, record_calls=True, record_dir=tmp_path)), SoundDeviceBackend)


async def test_a_native_call_carries_both_ways_with_meters_and_mute_and_leaves_the_room(
    wespoke_stack, sound_rig, tmp_path: Path
) -> None:
    backend = device_backend(native(wespoke_stack))
    session = CallSession(wespoke_stack.settings(), lambda: backend)
    events = Recorder(session)
    tone = write_wav(tmp_path / "tone.wav", sine(300.0, 6.0, -12.0))
    sound_rig.start_recording_speaker(tmp_path / "speaker.wav")
    await session.start()
    try:
        assert session.state is CallState.CONNECTED
        assert isinstance(backend, NativeBackend) and backend.native
        room = session.room
        assert room is not None
        room_name, identity = room.name, room.local_participant.identity
        assistant = wespoke_stack.assistant_for(session.call_id)
        await asyncio.to_thread(assistant.wait_for, "greeting_done", None, 20)
        await events.wait_for(lambda e: isinstance(e, AssistantLevel) and e.rms_dbfs > -30, timeout=5)
        fed = time.time()
        sound_rig.play_into_mic(tone)
        await energy_after(assistant, fed, -25.0, 10)  # the assistant hears the microphone
        await events.wait_for(lambda e: isinstance(e, MicLevel) and e.rms_dbfs > -30, timeout=5)
        await session.set_muted(True)
        muted_at = time.time()
        # Muted at once: within a second of it the assistant gets silence while the tone goes on.
        await asyncio.to_thread(assistant.wait_for, "energy",
                                lambda e: e["wall"] > muted_at + 1.0 and e["rms_dbfs"] < -60, 5)
        await session.set_muted(False)
    finally:
        await session.aclose()
        await events.aclose()
    speaker = sound_rig.stop_recording()
    assert speaker is not None
    heard, _ = read_wav(speaker)
    assert loud_seconds(heard) >= 1.2  # the greeting (1.5 s) played by the module, then the echo
    assert not [e for e in events.of(ErrorEvent)], events.of(ErrorEvent)
    await wait_until_gone(wespoke_stack.livekit, room_name, identity, 3.0)


async def test_a_module_that_cannot_start_sends_the_call_down_the_python_path_said_once(
    wespoke_stack, sound_rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> None:  # the narrowest edge: the module's constructor, as on a platform without it
        raise rtc.PlatformAudioError("Failed to initialize PlatformAudio: no audio device module")

    monkeypatch.setattr(rtc, "PlatformAudio", refuse)
    backend = device_backend(native(wespoke_stack))
    session = CallSession(wespoke_stack.settings(), lambda: backend)
    events = Recorder(session)
    tone = write_wav(tmp_path / "tone.wav", sine(300.0, 4.0, -12.0))
    await session.start()
    try:
        assert session.state is CallState.CONNECTED
        assert isinstance(backend, NativeBackend) and isinstance(backend.fallback, SoundDeviceBackend)
        assistant = wespoke_stack.assistant_for(session.call_id)
        await asyncio.to_thread(assistant.wait_for, "greeting_done", None, 20)
        fed = time.time()
        sound_rig.play_into_mic(tone)
        await energy_after(assistant, fed, -25.0, 10)
    finally:
        await session.aclose()
        await events.aclose()
    notices = [e for e in events.of(ErrorEvent) if e.error.code == AUDIO_FALLBACK]
    assert len(notices) == 1 and not notices[0].fatal
    assert "Python audio path" in notices[0].error.user_message


async def test_recording_on_a_native_call_says_it_needs_the_python_path(wespoke_stack, sound_rig, tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    session = CallSession(wespoke_stack.settings(record_dir=folder), lambda: device_backend(native(wespoke_stack)))
    events = Recorder(session)
    await session.start()
    try:
        assert await session.set_recording(True) is False
    finally:
        await session.aclose()
        await events.aclose()
    assert [e.error.code for e in events.of(ErrorEvent)] == [RECORDING_NEEDS_PYTHON]
    assert not folder.exists() or not list(folder.iterdir())


async def test_a_native_microphone_giving_exact_zeros_is_said_and_clears(wespoke_stack, sound_rig, tmp_path: Path) -> None:
    session = CallSession(wespoke_stack.settings(), lambda: device_backend(native(wespoke_stack)))
    events = Recorder(session)
    sound_rig.mic_floor_off()
    await session.start()
    try:
        await events.wait_for(lambda e: isinstance(e, ErrorEvent) and e.error.code == MICROPHONE_SILENT, timeout=10)
        sound_rig.play_into_mic(write_wav(tmp_path / "tone.wav", sine(300.0, 2.0, -12.0)))
        await events.wait_for(lambda e: isinstance(e, ErrorCleared), timeout=10)
    finally:
        await session.aclose()
        await events.aclose()


def test_a_headless_call_on_the_native_path_runs_and_ends(wespoke_stack, sound_rig) -> None:
    from tests.test_headless import SCRIPT

    api = wespoke_stack.api
    proc = subprocess.Popen([str(SCRIPT), "call", "--no-tui", "--api-key", api.api_key, "--assistant-id", api.assistant_id,
                             "--api-url", api.url, "--lang", "en", "--audio-engine", "native", "--duration", "4", "--log-file", "/dev/stderr",
                             "--log-level", "info"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "native audio: microphone default, speaker default" in err
    assert "Python audio path" not in err and "Traceback" not in err
    assert out.splitlines()[-1] == "Call ended"
