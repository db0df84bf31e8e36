"""The real parts behind the app, imported only when used: the sound-device engine under the
demo or a LiveKit `CallSession`, the device list and mic probe, the config file writer.

Tests pass their own parts to `build_app`; nothing here is needed to draw a screen.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wespoke_tui.errors import MICROPHONE_ERROR, CallError
from wespoke_tui.events import CallController
from wespoke_tui.settings import Settings
from wespoke_tui.ui.screens.devices import DeviceEntry, MicProbe

if TYPE_CHECKING:
    from wespoke_tui.audio.base import AudioBackend

ConfigSaver = Callable[[Path, Mapping[str, Any]], None]


def default_config_saver() -> ConfigSaver:
    from wespoke_tui.config import save_config

    return save_config


def default_devices(settings: Settings | None = None) -> list[DeviceEntry]:
    """The devices a call on `settings` would use: the native module's list when calls go to it
    (`uses_native`) and it starts, else PortAudio's; [] when there is none (the screen says so)."""
    if settings is not None:
        from wespoke_tui.audio.engine import uses_native

        if uses_native(settings):
            from wespoke_tui.audio.native import NativeUnusable, module_devices

            try:
                mics, speakers = module_devices()
            except NativeUnusable:
                pass  # the call falls back to the Python path: its list is the one that counts
            else:
                return ([DeviceEntry(d.name, True, False, "", d.index, True) for d in mics]
                        + [DeviceEntry(d.name, False, True, "", d.index, True) for d in speakers])
    try:
        from wespoke_tui.audio.devices import list_devices

        return [DeviceEntry(d.name, d.input_channels > 0, d.output_channels > 0, d.host_api, d.index,
                            d.in_default_host_api) for d in list_devices()]
    except Exception:  # noqa: BLE001 - no PortAudio, no devices: the screen says so
        return []


def default_mic_probe() -> MicProbe:
    async def levels(device: str | None) -> AsyncGenerator[float, None]:
        from wespoke_tui.audio.mic_probe import MicLevelProbe

        try:
            async for level in MicLevelProbe(device, seconds=5.0).levels():
                yield level.rms_dbfs
        except CallError:
            raise
        except Exception as exc:  # noqa: BLE001 - PortAudio missing or refusing: one message
            raise CallError.of(MICROPHONE_ERROR, f"{type(exc).__name__}: {exc}") from None

    return levels


def default_controller_factory(settings: Settings) -> CallController:
    """The real thing: `make_controller` with the sound-device engine for voice calls.

    The backend is made per call from the settings as they are then (the devices screen
    changes them)."""
    from wespoke_tui.controllers import make_controller

    def sound_devices() -> AudioBackend:
        from wespoke_tui.audio.engine import device_backend

        return device_backend(settings)

    return make_controller(settings, sound_devices)
