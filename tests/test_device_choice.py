"""A device chosen by name when PortAudio lists each device under several host APIs (Windows).

Windows cannot run here, so the device lists are what PortAudio reports there, built as
`DeviceInfo`s: every device once under MME, DirectSound, WASAPI and WDM-KS, MME the default
host API. `resolve_device`, the devices screen and the config file take them as they would take
the real list.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from textual.widgets import Select

from tests.ui_support import RecordingController, make_app, until
from wespoke_tui.audio import devices as audio_devices
from wespoke_tui.audio.device_choice import choice_text, matching_devices, split_choice
from wespoke_tui.audio.devices import DeviceInfo, print_devices, resolve_device
from wespoke_tui.config import load_settings, save_config
from wespoke_tui.errors import MICROPHONE_ERROR, SPEAKER_ERROR, CallError
from wespoke_tui.i18n import Texts
from wespoke_tui.settings import Settings
from wespoke_tui.ui.screens.devices import DeviceChoice, DeviceEntry, DevicesScreen

MME, DS, WASAPI, WDMKS = "MME", "Windows DirectSound", "Windows WASAPI", "Windows WDM-KS"
HOST_APIS = (MME, DS, WASAPI, WDMKS)
REALTEK_MIC, USB_MIC, SPEAKERS = "Microphone (Realtek(R) Audio)", "Microphone (USB Audio Device)", "Speakers (Realtek(R) Audio)"
# (name, input channels, output channels)
HARDWARE = ((REALTEK_MIC, 2, 0), (USB_MIC, 1, 0), (SPEAKERS, 0, 2))


def windows_devices(default_api: str = MME) -> list[DeviceInfo]:
    """Every device under each of the four host APIs, in PortAudio's order (API by API)."""
    devices = []
    for api in HOST_APIS:
        for name, ins, outs in HARDWARE:
            default = api == default_api
            devices.append(DeviceInfo(len(devices), name, api, ins, outs, 44100.0,
                                      is_default_input=default and name == REALTEK_MIC,
                                      is_default_output=default and name == SPEAKERS,
                                      in_default_host_api=default))
    return devices


def index_of(devices: list[DeviceInfo], name: str, api: str) -> int:
    return next(d.index for d in devices if d.name == name and d.host_api == api)


def test_a_bare_name_means_the_device_under_the_default_host_api() -> None:
    devices = windows_devices()
    assert len(devices) == 12
    assert resolve_device(USB_MIC, "input", devices) == index_of(devices, USB_MIC, MME)
    assert resolve_device("usb audio", "input", devices) == index_of(devices, USB_MIC, MME), "part of it"
    assert resolve_device("speakers", "output", devices) == index_of(devices, SPEAKERS, MME)
    assert resolve_device(None, "input", devices) == index_of(devices, REALTEK_MIC, MME)
    # Whichever host API PortAudio says is the default.
    devices = windows_devices(default_api=WASAPI)
    assert resolve_device(USB_MIC, "input", devices) == index_of(devices, USB_MIC, WASAPI)


def test_a_name_mme_cut_short_goes_to_the_first_shared_mode_api() -> None:
    # MME cuts names to 31 characters: the long name has no MME twin, and WDM-KS (exclusive) is last.
    long_name = "Microphone (Realtek High Definition Audio)"
    devices = [DeviceInfo(0, long_name[:31], MME, 2, 0, 44100.0, True, False, True)]
    devices += [DeviceInfo(i, long_name, api, 2, 0, 48000.0, False, False, False)
                for i, api in enumerate((WDMKS, WASAPI, DS), start=1)]
    assert resolve_device(long_name, "input", devices) == 3  # DirectSound
    assert resolve_device(long_name[:31], "input", devices) == 0


def test_the_saved_form_round_trips_to_exactly_one_device(tmp_path: Path) -> None:
    devices = windows_devices()
    config = tmp_path / "config.toml"
    for device in devices:
        assert device.choice == f"{device.name} [{device.host_api}]"
        assert matching_devices(device.choice, devices) == [device]
        for kind in ("input", "output"):
            if device.channels(kind):
                assert resolve_device(device.choice, kind, devices) == device.index
        # Through the config file, as the devices screen saves it and the next run reads it.
        key = "input_device" if device.input_channels else "output_device"
        save_config(config, {key: device.choice})
        _, settings, _ = load_settings(["--config", str(config)], {})
        spec = getattr(settings, key)
        assert spec == device.choice
        assert resolve_device(spec, "input" if device.input_channels else "output", devices) == device.index


def test_the_host_api_may_be_given_by_part_of_its_name() -> None:
    devices = windows_devices()
    assert split_choice("USB [wasapi]", HOST_APIS) == ("USB", WASAPI)
    assert resolve_device(f"{USB_MIC} [WASAPI]", "input", devices) == index_of(devices, USB_MIC, WASAPI)
    assert resolve_device("usb [wdm-ks]", "input", devices) == index_of(devices, USB_MIC, WDMKS)
    assert resolve_device("Realtek [DirectSound]", "output", devices) == index_of(devices, SPEAKERS, DS)
    # "[Windows]" is part of three APIs: not a host API, so part of the name, which matches nothing.
    assert split_choice("USB [Windows]", HOST_APIS) == ("USB [Windows]", None)
    with pytest.raises(CallError, match=r"no input device matches 'USB \[Windows\]'"):
        resolve_device("USB [Windows]", "input", devices)
    # A device gone from its host API is not replaced by its twin under another.
    with pytest.raises(CallError, match="no input device matches"):
        resolve_device(f"{USB_MIC} [Windows WASAPI]", "input", [d for d in devices if d.index != index_of(devices, USB_MIC, WASAPI)])


def test_a_name_with_brackets_of_its_own_still_matches() -> None:
    devices = [DeviceInfo(0, "USB Mic [front]", "ALSA", 1, 0, 48000.0, True, False, True),
               DeviceInfo(1, "USB Mic [back]", "ALSA", 1, 0, 48000.0, False, False, True)]
    assert resolve_device("usb mic [back]", "input", devices) == 1
    assert resolve_device("USB Mic [back] [ALSA]", "input", devices) == 1
    assert resolve_device("[front]", "input", devices) == 0


def test_an_ambiguous_name_lists_each_device_with_host_api_and_index() -> None:
    devices = windows_devices()
    with pytest.raises(CallError) as several:
        resolve_device("microphone", "input", devices)
    assert several.value.code == MICROPHONE_ERROR
    message = several.value.message
    assert "\n" not in message
    assert message == (
        f"2 input devices match 'microphone': [0] {REALTEK_MIC} [MME]; [1] {USB_MIC} [MME]; "
        f"choose one by its index (0) or by its name with the host API ('{REALTEK_MIC} [MME]')"
    )
    # Narrowed to one host API, still two different devices.
    with pytest.raises(CallError, match=r"2 input devices match 'mic \[WASAPI\]': \[6\] .*\[7\] "):
        resolve_device("mic [WASAPI]", "input", devices)
    with pytest.raises(CallError) as nothing:
        resolve_device("headset", "output", devices)
    assert nothing.value.code == SPEAKER_ERROR
    assert f"[2] {SPEAKERS} [MME]; [5] {SPEAKERS} [Windows DirectSound]" in nothing.value.message


def test_two_devices_with_the_same_name_and_host_api_need_the_index() -> None:
    # macOS lists two identical USB microphones under the same name.
    devices = [DeviceInfo(0, "MacBook Pro Microphone", "Core Audio", 1, 0, 48000.0, True, False, True),
               DeviceInfo(1, "USB Audio Device", "Core Audio", 1, 0, 48000.0, False, False, True),
               DeviceInfo(2, "USB Audio Device", "Core Audio", 1, 0, 48000.0, False, False, True)]
    with pytest.raises(CallError, match=r"2 input devices match 'USB Audio Device \[Core Audio\]': "
                                        r"\[1\] .*; \[2\] .*by its index \(1\)"):
        resolve_device("USB Audio Device [Core Audio]", "input", devices)
    assert resolve_device("2", "input", devices) == 2


def test_the_devices_command_says_an_ambiguous_choice_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_devices, "list_devices", windows_devices)
    out = io.StringIO()
    assert print_devices(Settings(input_device="Microphone", output_device=SPEAKERS), out) == 0
    lines = out.getvalue().splitlines()
    assert lines[-2].startswith("input: 2 input devices match 'Microphone': [0] ")
    assert "choose one by its index" in lines[-2]
    assert lines[-1] == f"output: [2] {SPEAKERS} [MME]"


# --------------------------------------------------------------------------- the devices screen

def entries(devices: list[DeviceInfo]) -> list[DeviceEntry]:
    """What the app hands the screen (ui.parts.default_devices)."""
    return [DeviceEntry(d.name, d.input_channels > 0, d.output_channels > 0, d.host_api, d.index,
                        d.in_default_host_api) for d in devices]


def screen_for(listed: list[DeviceEntry]) -> DevicesScreen:
    return DevicesScreen(Texts("en"), listed, DeviceChoice(None, None))


def test_the_screen_keeps_the_host_api_and_shows_it_only_beside_repeated_names() -> None:
    devices = windows_devices()
    screen = screen_for(entries(devices))
    options = screen._options(inputs=True)
    assert len(options) == 8
    assert options[0] == (f"{REALTEK_MIC} [MME]", f"{REALTEK_MIC} [MME]")
    assert options[6] == (f"{REALTEK_MIC} [Windows WDM-KS]", f"{REALTEK_MIC} [Windows WDM-KS]")
    # Each kept value names exactly that device.
    inputs = [d for d in devices if d.input_channels]
    assert [resolve_device(value, "input", devices) for _, value in options] == [d.index for d in inputs]
    # Where every name is listed once (Linux, macOS), the list shows names alone.
    linux = [DeviceEntry("pulse", True, True, "ALSA", 0, True), DeviceEntry("default", True, True, "ALSA", 1, True)]
    screen = screen_for(linux)
    assert screen._options(inputs=False) == [("pulse", "pulse [ALSA]"), ("default", "default [ALSA]")]
    # Same name, same host API: told apart by index.
    twins = [DeviceEntry("USB Audio Device", True, False, "Core Audio", i, True) for i in (3, 4)]
    screen = screen_for(twins)
    assert screen._options(inputs=True) == [("USB Audio Device [Core Audio] #3", "3"),
                                            ("USB Audio Device [Core Audio] #4", "4")]


def test_the_screen_picks_the_current_device_from_an_older_bare_name() -> None:
    devices = windows_devices()
    screen = screen_for(entries(devices))
    assert screen._current_value(USB_MIC, True) == f"{USB_MIC} [MME]"
    assert screen._current_value(f"{USB_MIC} [Windows WASAPI]", True) == f"{USB_MIC} [Windows WASAPI]"
    assert screen._current_value(str(index_of(devices, USB_MIC, WASAPI)), True) == f"{USB_MIC} [Windows WASAPI]"
    assert screen._current_value("microphone", True) is Select.NULL  # two devices: no guess
    assert screen._current_value(None, True) is Select.NULL


async def test_choosing_on_the_screen_saves_the_device_with_its_host_api() -> None:
    devices = windows_devices()
    saved: list[dict] = []
    app = make_app(RecordingController(), devices_provider=lambda: entries(devices),
                   config_saver=lambda path, updates: saved.append(dict(updates)))
    app.settings.input_device = USB_MIC  # as an older version saved it
    async with app.run_test() as pilot:
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DevicesScreen))
        inputs = app.screen.query_one("#devices-input", Select)
        assert inputs.value == f"{USB_MIC} [MME]"
        inputs.value = f"{USB_MIC} [Windows WASAPI]"
        await pilot.click("#devices-apply")
        await until(pilot, lambda: not isinstance(app.screen, DevicesScreen))
    choice = f"{USB_MIC} [Windows WASAPI]"
    assert saved == [{"input_device": choice, "output_device": None}]
    assert app.settings.input_device == choice
    assert resolve_device(choice, "input", devices) == index_of(devices, USB_MIC, WASAPI)
    assert choice_text(USB_MIC, WASAPI) == choice
