"""Calls on WebRTC's own audio device module (`rtc.PlatformAudio`) on the PulseAudio rig: the
microphone reaches the assistant and its voice reaches the speaker with no Python per audio
block, the meters and mute work, a module that cannot start sends the call down the Python path
(said once), and every hang-up leaves the room."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from textual.widgets import Select

from tests.support.events import EventRecorder
from tests.support.signals import read_wav, voice_like, write_wav
from tests.test_session import wait_until_gone
from tests.ui_support import RecordingController, make_app, settings_for, until
from wespoke_tui.audio.engine import SoundDeviceBackend, device_backend
from wespoke_tui.audio.native import NativeBackend, module_devices, pick_device
from wespoke_tui.errors import AUDIO_FALLBACK, MICROPHONE_SILENT, RECORDING_NEEDS_PYTHON, describe
from wespoke_tui.events import AssistantLevel, CallState, ErrorCleared, ErrorEvent, MicLevel
from wespoke_tui.session import CallSession
from wespoke_tui.session.native_levels import LOST_AFTER_S, DeviceWatch, ProcessedSilence
from wespoke_tui.settings import AudioEngine, Settings
from wespoke_tui.ui.parts import default_devices
from wespoke_tui.ui.screens.devices import DevicesScreen

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


def loud_sides(folder: Path) -> tuple[float, float]:
    """Loud seconds of the caller's and the assistant's side of the one recording in `folder`."""
    wavs = list(folder.glob("*.wav"))
    if len(wavs) != 1:
        return 0.0, 0.0
    with wave.open(str(wavs[0])) as f:
        stereo = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").reshape(-1, 2)
    return loud_seconds(stereo[:, 0].copy()), loud_seconds(stereo[:, 1].copy())


def test_a_native_device_is_gone_when_its_sample_count_stands_for_two_seconds_after_it_ran() -> None:
    watch = DeviceWatch()
    assert not watch.stopped(0.0, 10.0)  # not started yet: a speaker with nothing to play
    assert not watch.stopped(0.0, 15.0)
    assert not watch.stopped(0.1, 15.1)  # it runs
    assert not watch.stopped(0.1, 15.1 + LOST_AFTER_S - 0.1)  # a stall shorter than the limit
    assert not watch.stopped(0.3, 15.1 + LOST_AFTER_S)  # and it moved again
    assert not watch.stopped(0.3, 20.0, expected=False)  # a muted microphone may stand still
    assert not watch.stopped(0.3, 20.0 + LOST_AFTER_S - 0.1)
    assert watch.stopped(0.3, 20.0 + LOST_AFTER_S)  # unmuted and standing: gone


def test_the_native_microphone_is_digitally_silent_from_a_poll_without_energy_while_it_stays_at_one_lsb() -> None:
    one_lsb, floor = (1 / 32767) ** 2 * 0.1, (10 ** (-82 / 20)) ** 2 * 0.1  # energy of a 100 ms poll
    silence = ProcessedSilence()
    # A working microphone while the gain control starts: at one LSB, never without energy.
    assert [silence.poll(e, 0.1) for e in (one_lsb,) * 30 + (floor,) * 5] == [False] * 35
    # Exact zeros at the microphone: the processing gives 0 and one LSB in turn.
    assert [silence.poll(e, 0.1) for e in (0.0, one_lsb, 0.0, one_lsb, one_lsb)] == [True] * 5
    assert silence.poll(floor, 0.1) is False  # sound again
    assert silence.poll(one_lsb, 0.1) is False  # and a new run needs a poll without energy first
    assert silence.poll(0.0, 0.0) is False  # a poll in which the source did not run says nothing


def native(stack: Any, **overrides: Any) -> Any:
    return stack.settings(audio_engine=AudioEngine.NATIVE, **overrides)


def test_the_native_module_is_asked_for_and_never_for_the_demo_or_recordings(tmp_path) -> None:
    # Choosing the backend opens nothing: no stack needed. (Making one sets the interpreter's
    # switch interval for a call's audio threads: put back for the tests that follow.)
    switch_interval = sys.getswitchinterval()
    try:
        assert Settings().audio_engine is AudioEngine.NATIVE  # the default
        assert isinstance(device_backend(Settings(audio_engine=AudioEngine.NATIVE)), NativeBackend)
        assert isinstance(device_backend(Settings(audio_engine=AudioEngine.PYTHON)), SoundDeviceBackend)
        assert isinstance(device_backend(Settings(audio_engine=AudioEngine.NATIVE, demo=True)), SoundDeviceBackend)
        assert isinstance(device_backend(Settings(audio_engine=AudioEngine.NATIVE, record_calls=True,
                                                  record_dir=tmp_path)), SoundDeviceBackend)
    finally:
        sys.setswitchinterval(switch_interval)


async def test_a_native_call_carries_both_ways_with_meters_and_mute_and_leaves_the_room(
    wespoke_stack, sound_rig, tmp_path: Path
) -> None:
    backend = device_backend(native(wespoke_stack))
    session = CallSession(wespoke_stack.settings(), lambda: backend)
    events = EventRecorder(session)
    voice = write_wav(tmp_path / "voice.wav", voice_like(6.0))
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
        # The devices screen lists the module's devices with a module of its own, opened and closed
        # beside the call's: the call's capture goes on.
        mics, _ = await asyncio.to_thread(module_devices)
        assert [d.name for d in mics] == ["mic"]
        fed = time.time()
        sound_rig.play_into_mic(voice)
        await energy_after(assistant, fed, -25.0, 10)  # the assistant hears the microphone
        await events.wait_for(lambda e: isinstance(e, MicLevel) and e.rms_dbfs > -30, timeout=5)
        await session.set_muted(True)
        muted_at = time.time()
        # Muted at once: within a second of it the assistant gets silence while the voice goes on.
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
    events = EventRecorder(session)
    voice = write_wav(tmp_path / "voice.wav", voice_like(4.0))
    await session.start()
    try:
        assert session.state is CallState.CONNECTED
        assert isinstance(backend, NativeBackend) and isinstance(backend.fallback, SoundDeviceBackend)
        assistant = wespoke_stack.assistant_for(session.call_id)
        await asyncio.to_thread(assistant.wait_for, "greeting_done", None, 20)
        fed = time.time()
        sound_rig.play_into_mic(voice)
        await energy_after(assistant, fed, -25.0, 10)
    finally:
        await session.aclose()
        await events.aclose()
    notices = [e for e in events.of(ErrorEvent) if e.error.code == AUDIO_FALLBACK]
    assert len(notices) == 1 and not notices[0].fatal
    assert "Python audio path" in describe(notices[0].error, "en")


async def test_recording_a_native_call_moves_it_to_the_python_path_says_so_once_and_records_both_sides(
    wespoke_stack, sound_rig, tmp_path: Path
) -> None:
    folder = tmp_path / "recordings"
    backend = device_backend(native(wespoke_stack))
    session = CallSession(wespoke_stack.settings(record_dir=folder), lambda: backend)
    events = EventRecorder(session)
    voice = write_wav(tmp_path / "voice.wav", voice_like(3.0))
    await session.start()
    try:
        assert isinstance(backend, NativeBackend) and backend.native
        assistant = wespoke_stack.assistant_for(session.call_id)
        await asyncio.to_thread(assistant.wait_for, "greeting_done", None, 20)
        assert await session.set_recording(True) is True
        assert isinstance(backend.fallback, SoundDeviceBackend)
        fed = time.time()
        sound_rig.play_into_mic(voice)
        await energy_after(assistant, fed, -25.0, 10)  # the Python path's microphone reaches it
        # The recording is flushed as it goes: wait until it holds the voice and its echo as played.
        deadline = time.monotonic() + 15
        while min(loud_sides(folder)) < 1.0:
            assert time.monotonic() < deadline, loud_sides(folder)
            await asyncio.sleep(0.2)  # poll
        await session.set_recording(False)
        assert session.state is CallState.CONNECTED
    finally:
        await session.aclose()
        await events.aclose()
    assert [e.error.code for e in events.of(ErrorEvent)] == [RECORDING_NEEDS_PYTHON]
    caller_s, assistant_s = loud_sides(folder)
    assert caller_s >= 1.0 and assistant_s >= 1.0  # the caller's voice, and its echo as played


async def test_a_native_microphone_giving_exact_zeros_is_said_and_clears(wespoke_stack, sound_rig, tmp_path: Path) -> None:
    session = CallSession(wespoke_stack.settings(), lambda: device_backend(native(wespoke_stack)))
    events = EventRecorder(session)
    sound_rig.mic_floor_off()
    await session.start()
    try:
        await events.wait_for(lambda e: isinstance(e, ErrorEvent) and e.error.code == MICROPHONE_SILENT, timeout=10)
        sound_rig.play_into_mic(write_wav(tmp_path / "voice.wav", voice_like(2.0)))
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


async def test_a_native_call_whose_microphone_dies_moves_to_the_python_path_said_once_and_goes_on(
    wespoke_stack, sound_rig, tmp_path: Path
) -> None:
    """The rig's microphone is suspended mid-call: the module's capture stops counting samples, the
    call moves to the Python path (AUDIO_FALLBACK, once, not fatal) and stays up; with the
    microphone back, the assistant hears the caller and the caller hears it, on the Python path."""
    backend = device_backend(native(wespoke_stack))
    session = CallSession(wespoke_stack.settings(), lambda: backend)
    events = EventRecorder(session)
    voice = write_wav(tmp_path / "voice.wav", voice_like(4.0))
    await session.start()
    try:
        assert isinstance(backend, NativeBackend) and backend.native
        room = session.room
        assert room is not None
        room_name, identity = room.name, room.local_participant.identity
        assistant = wespoke_stack.assistant_for(session.call_id)
        await asyncio.to_thread(assistant.wait_for, "greeting_done", None, 20)
        sound_rig.suspend_mic()
        lost_at = time.monotonic()
        notice = await events.wait_for(
            lambda e: isinstance(e, ErrorEvent) and e.error.code == AUDIO_FALLBACK, timeout=10)
        print(f"the module's microphone was found gone {time.monotonic() - lost_at:.1f} s after it died")
        sound_rig.restore_mic()
        assert isinstance(backend.fallback, SoundDeviceBackend) and not backend.native
        assert not notice.fatal and "Python audio path" in describe(notice.error, "en")
        since = len(events.items)

        def later(kind: type, above_dbfs: float) -> Any:
            return lambda e: (isinstance(e, kind) and e.rms_dbfs > above_dbfs
                              and any(e is x for _, x in events.items[since:]))

        fed = time.time()
        sound_rig.play_into_mic(voice)
        await energy_after(assistant, fed, -25.0, 10)  # heard again, from the Python path's microphone
        await events.wait_for(later(MicLevel, -30), timeout=10)  # and metered
        await events.wait_for(later(AssistantLevel, -30), timeout=10)  # its echo played by the Python path
        assert session.state is CallState.CONNECTED
    finally:
        sound_rig.restore_mic()
        await session.aclose()
        await events.aclose()
    assert len([e for e in events.of(ErrorEvent) if e.error.code == AUDIO_FALLBACK]) == 1
    assert not [e for e in events.of(ErrorEvent) if e.fatal]
    await wait_until_gone(wespoke_stack.livekit, room_name, identity, 3.0)




async def speaker_drill(stack: Any, rig: Any, tmp_path: Path, break_speaker: Callable[[], None]) -> tuple[EventRecorder, Any, Path]:
    """A native call whose speaker `break_speaker` takes away after the greeting; then the caller's
    voice goes in, and what the new default output (`laptop`) played is recorded. Returns the
    events, the backend and that recording, the call hung up and gone. (A speaker that dies
    silently, its sink suspended with the module's stream on it, is not detected on the native
    path: see session/native_levels.py.)"""
    # Without noise suppression and gain control, what comes back is what went in, and the
    # drill is the speaker's alone.
    settings = native(stack, noise_suppression=False, auto_gain=False)
    backend = device_backend(settings)
    session = CallSession(settings, lambda: backend)
    events = EventRecorder(session)
    voice = write_wav(tmp_path / "voice.wav", voice_like(4.0))
    await session.start()
    try:
        assert isinstance(backend, NativeBackend) and backend.native
        room = session.room
        assert room is not None
        room_name, identity = room.name, room.local_participant.identity
        assistant = stack.assistant_for(session.call_id)
        await asyncio.to_thread(assistant.wait_for, "greeting_done", None, 20)
        break_speaker()
        rig.start_recording_speaker(tmp_path / "laptop.wav", sink="laptop")
        fed = time.time()
        rig.play_into_mic(voice)
        await energy_after(assistant, fed, -25.0, 10)  # the caller is heard
        # Until the assistant has heard 3 s of the voice: its echo of the first 2.5 s has been played.
        await asyncio.to_thread(assistant.wait_for, "energy", lambda e: e["wall"] > fed + 3.0, 10)
        assert session.state is CallState.CONNECTED
    finally:
        recording = rig.stop_recording()
        rig.restore_speaker()
        await session.aclose()
        await events.aclose()
    assert recording is not None
    assert not [e for e in events.of(ErrorEvent) if e.fatal]
    await wait_until_gone(stack.livekit, room_name, identity, 3.0)
    return events, backend, recording


async def test_a_native_call_whose_speaker_is_unplugged_plays_on_where_the_sound_server_moved_it(
    wespoke_stack, sound_rig, tmp_path: Path
) -> None:
    """Headphones pulled mid-call: the sound server moves the module's stream to the new default
    output, so the module plays on there and nothing needs saying."""
    events, backend, recording = await speaker_drill(wespoke_stack, sound_rig, tmp_path, sound_rig.unplug_speaker)
    assert backend.native and not events.of(ErrorEvent)
    # Nothing else plays on `laptop`: any sustained sound there is the module's stream, moved. How
    # much of the echo comes depends on the test assistant: on a loaded machine its echo arrives in
    # bursts (its 100 ms backlog drops what a starved loop could not send), 0.4-2 s of the 3 s seen
    # under two CPU hogs, each burst at the voice's level.
    assert loud_seconds(read_wav(recording)[0]) >= 0.3, "the echo was not heard on the new default output"



async def test_the_devices_screen_lists_the_native_modules_devices_and_a_choice_maps_back_to_them(sound_rig) -> None:
    """On the native engine the screen offers what a call will use, the module's list (the sound
    server's names, its "default:" entries as the screen's default); the Python engine's list is
    PortAudio's. The name kept is one the module's list resolves."""
    saved: list[dict[str, Any]] = []
    settings = settings_for(audio_engine=AudioEngine.NATIVE)
    python_names = {d.name for d in default_devices(settings_for(audio_engine=AudioEngine.PYTHON))}
    assert "rig_mic" in python_names and "mic" not in python_names
    app = make_app(RecordingController(), settings, devices_provider=None,
                   config_saver=lambda path, updates: saved.append(dict(updates)))
    async with app.run_test() as pilot:
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DevicesScreen), timeout=10)
        inputs = app.screen.query_one("#devices-input", Select)
        outputs = app.screen.query_one("#devices-output", Select)
        assert [value for _, value in inputs._options if value is not Select.NULL] == ["mic"]
        assert [value for _, value in outputs._options if value is not Select.NULL] == ["micfeed", "speaker"]
        inputs.value, outputs.value = "mic", "speaker"
        await pilot.click("#devices-apply")
        await until(pilot, lambda: not isinstance(app.screen, DevicesScreen))
    assert saved == [{"input_device": "mic", "output_device": "speaker"}]
    mics, speakers = module_devices()
    assert pick_device("mic", mics, "input").name == "mic"
    assert pick_device("speaker", speakers, "output").name == "speaker"
