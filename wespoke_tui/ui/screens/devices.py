"""Pick the microphone and the speaker, and watch the microphone's level.

A choice is kept as "name [host API]" (`audio.device_choice`), so that it names one device when
PortAudio lists the same device under several host APIs (Windows); the list shows the host API
only beside a name listed more than once. Two devices with the same name and host API can only
be told apart by index, which is then what is kept.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Select

from wespoke_tui.audio.device_choice import choice_text, matching_devices
from wespoke_tui.errors import CallError, describe
from wespoke_tui.i18n import Texts
from wespoke_tui.ui.keys import localize_bindings
from wespoke_tui.ui.widgets.footer import Footer
from wespoke_tui.ui.widgets.volume_meter import VolumeMeter


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    name: str
    is_input: bool
    is_output: bool
    host_api: str = ""  # "" when unknown: the name alone is kept
    index: int | None = None
    in_default_host_api: bool = False


@dataclass(frozen=True, slots=True)
class DeviceChoice:
    """The devices picked, as kept in the config file; None is the system default."""

    input_device: str | None
    output_device: str | None


MicProbe = Callable[[str | None], AsyncGenerator[float, None]]
"""Opens an input by name and yields its RMS in dBFS until the generator is closed."""


class DevicesScreen(ModalScreen[DeviceChoice | None]):
    BINDINGS = [Binding("escape", "cancel", "Close", id="close")]

    def __init__(self, texts: Texts, devices: Sequence[DeviceEntry], current: DeviceChoice,
                 mic_probe: MicProbe | None = None) -> None:
        super().__init__()
        self._t = texts
        self._devices = list(devices)
        self._current = current
        self._mic_probe = mic_probe
        localize_bindings(self, texts.lang)

    def _entries(self, inputs: bool) -> list[DeviceEntry]:
        return [d for d in self._devices if (d.is_input if inputs else d.is_output)]

    def _options(self, inputs: bool) -> list[tuple[str, str]]:
        """(what the list shows, what is kept) of each device of the kind."""
        entries = self._entries(inputs)
        names = [d.name.casefold() for d in entries]
        choices = [choice_text(d.name, d.host_api) for d in entries]
        options = []
        for entry, choice in zip(entries, choices, strict=True):
            label = entry.name if names.count(entry.name.casefold()) == 1 else choice
            if choices.count(choice) > 1 and entry.index is not None:
                label, choice = f"{label} #{entry.index}", str(entry.index)
            options.append((label, choice))
        return options

    def compose(self) -> ComposeResult:
        t = self._t
        default = t("devices.default")
        with Vertical(id="devices-dialog", classes="dialog"):
            yield Label(t("devices.title"), classes="dialog-title")
            if not self._devices:
                yield Label(t("devices.none"), id="devices-none")
            yield Label(t("devices.input"), classes="field-label")
            yield Select(self._options(True), prompt=default, id="devices-input",
                         value=self._current_value(self._current.input_device, True))
            yield Label(t("devices.output"), classes="field-label")
            yield Select(self._options(False), prompt=default, id="devices-output",
                         value=self._current_value(self._current.output_device, False))
            yield VolumeMeter(t("devices.input"), id="devices-meter")
            yield Label(t("devices.test_idle"), id="devices-test-status")
            with Horizontal(classes="dialog-buttons"):
                yield Button(t("devices.test"), id="devices-test", disabled=self._mic_probe is None)
                yield Button(t("devices.apply"), id="devices-apply", variant="success")
                yield Button(t("devices.cancel"), id="devices-cancel")
        yield Footer()

    def _current_value(self, spec: str | None, inputs: bool) -> str | object:
        """The kept value the current setting names (an older config's bare name included)."""
        options = self._options(inputs)
        known = [value for _, value in options]
        if spec is None or spec in known:
            return Select.NULL if spec is None else spec
        entries = self._entries(inputs)
        if spec.strip().isdigit():
            matches = [d for d in entries if d.index == int(spec)]
        else:
            matches = matching_devices(spec, entries)
        return known[entries.index(matches[0])] if len(matches) == 1 else Select.NULL

    def _selected(self, select_id: str) -> str | None:
        value = self.query_one(select_id, Select).value
        return value if isinstance(value, str) else None

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "devices-apply":
            self.dismiss(DeviceChoice(self._selected("#devices-input"), self._selected("#devices-output")))
        elif event.button.id == "devices-cancel":
            self.dismiss(None)
        else:
            self.test_microphone()

    @work(exclusive=True, group="mic-test")
    async def test_microphone(self, seconds: float = 5.0) -> None:
        """Show the chosen input's level for a few seconds; closing the screen stops it."""
        assert self._mic_probe is not None
        meter = self.query_one("#devices-meter", VolumeMeter)
        status = self.query_one("#devices-test-status", Label)
        deadline = time.monotonic() + seconds
        levels = self._mic_probe(self._selected("#devices-input"))
        try:
            async for level in levels:
                meter.rms_dbfs = level
                meter.peak_dbfs = max(level, meter.peak_dbfs - 1.0)
                status.update(self._t("devices.testing", level=f"{level:.0f} dBFS"))
                if time.monotonic() >= deadline:
                    break
        except CallError as exc:  # a device error must not take the app down
            status.update(describe(exc, self._t.lang))
            return
        finally:
            await levels.aclose()
        status.update(self._t("devices.test_idle"))

    def action_cancel(self) -> None:
        self.dismiss(None)
