"""The Textual app: one call (or text chat) at a time, driven by a `CallController`.

The app owns the data (the settings, the texts, the controller and the call's `CallStatus`, a
reactive the presenter's `reduce` moves on with each event), the program's start and end, the
app-wide keys (help, quit, Ctrl+C) and the dialogs of its own (setup, devices, quitting).
What is on screen, the call's keys and their intents are the call screen's
(ui/screens/call_screen.py), which reaches the app as a `CallHost` (ui/host.py).
Signals and the way out follow the process's `ExitPolicy` (wespoke_tui.shutdown).
Nothing here touches LiveKit, sounddevice or httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.reactive import var

from wespoke_tui.errors import CallError
from wespoke_tui.events import CallController, CallEvent
from wespoke_tui.i18n import Texts
from wespoke_tui.presenter import CallStatus, reduce, tick
from wespoke_tui.presenter import record_deletable as status_record_deletable
from wespoke_tui.settings import Settings
from wespoke_tui.shutdown import EXIT_INTERRUPTED, ExitPolicy, exit_if_livekit_loaded, leave_after_call
from wespoke_tui.ui.keys import localize_bindings
from wespoke_tui.ui.parts import (
    ConfigSaver,
    default_config_saver,
    default_controller_factory,
    default_devices,
    default_mic_probe,
)
from wespoke_tui.ui.screens.call_screen import CallScreen
from wespoke_tui.ui.screens.confirm_hang_up import ConfirmHangUp
from wespoke_tui.ui.screens.devices import DeviceChoice, DeviceEntry, DevicesScreen, MicProbe
from wespoke_tui.ui.screens.help import HelpScreen
from wespoke_tui.ui.screens.setup import SetupResult, SetupScreen

ControllerFactory = Callable[[Settings], CallController]
DevicesProvider = Callable[[], Sequence[DeviceEntry]]

SHUTDOWN_TIMEOUT_S = 5.0
"""How long quitting waits for the hang-up before it gives up and exits anyway."""
EXIT_GRACE_S = 3.0
"""After a signal, how long restoring the terminal may take past the hang-up timeout."""


class WespokeApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "wespoke-tui"
    ENABLE_COMMAND_PALETTE = False
    AUTO_FOCUS = None  # keys go to the bindings; the message input is focused on purpose (Tab, click)

    # The call's keys are the call screen's (listed first in the footer); d opens the devices
    # dialog here, from the screen's bindings ("app.devices").
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="help", key_display="?"),
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+c", "interrupt", "Hang up and quit", id="interrupt", priority=True, show=False),
    ]

    # No repaint of their own: an App reactive that repaints redraws the whole screen (a full
    # compositor update, every second for the call clock); the watchers hand the new values to
    # the call screen's widgets, which repaint what changed.
    status: var[CallStatus] = var(CallStatus, init=False)
    chat_mode: var[bool] = var(False, init=False)  # a text chat: no meters, no mic, the input focused

    def __init__(
        self,
        settings: Settings,
        controller_factory: ControllerFactory,
        *,
        clock: Callable[[], float] = time.monotonic,
        devices_provider: DevicesProvider | None = None,
        mic_probe: MicProbe | None = None,
        config_saver: ConfigSaver | None = None,
        cursor_blink: bool = True,
        exit_policy: ExitPolicy | None = None,
    ) -> None:
        """`exit_policy`: the process's (`run_app`); without one the app makes its own, which
        handles signals but never ends the process itself."""
        super().__init__()
        self.settings = settings
        self.texts = Texts(settings.lang)
        self.controller: CallController | None = None
        self.clock = clock
        self._controller_factory = controller_factory
        self._devices_provider = devices_provider
        self._mic_probe = mic_probe
        self._config_saver = config_saver
        self._cursor_blink = cursor_blink
        self.exit_policy = exit_policy or ExitPolicy()
        self._set_up = False  # the settings can make a call (else the first-run form comes first)
        # Where the call screen starts (it reads these when it mounts); no watcher runs before then.
        self.set_reactive(WespokeApp.chat_mode, settings.chat)
        self.set_reactive(WespokeApp.status, CallStatus(chat=settings.chat))
        localize_bindings(self, settings.lang)

    def get_default_screen(self) -> CallScreen:
        return CallScreen(self, cursor_blink=self._cursor_blink)

    @property
    def call_screen(self) -> CallScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, CallScreen)
        return screen

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick_duration)
        self.exit_policy.attach(self._leave_interrupted, self._force_exit,
                                watchdog_s=SHUTDOWN_TIMEOUT_S + EXIT_GRACE_S)
        self.exit_policy.install()
        self._set_up = bool(self.settings.demo or (self.settings.api_key and self.settings.assistant_id))
        if not self._set_up:  # at once, over the call screen: the first thing a first run sees
            screen = SetupScreen(self.texts, self._config_path(), self.settings.api_key,
                                 self.settings.assistant_id, cursor_blink=self._cursor_blink)
            self.push_screen(screen, self._setup_done)

    def call_screen_ready(self) -> None:
        """The call screen is up and shows the state (it mounts after the app): open the call."""
        if self._set_up:
            self.open_controller()

    async def on_unmount(self) -> None:
        self.exit_policy.uninstall()
        # Whatever way the app ends, the call ends with it: an open call keeps costing credits.
        await self.close_controller()

    # ----------------------------------------------------------------- the controller and its events

    def open_controller(self) -> None:
        self.controller = self._controller_factory(self.settings)
        self.chat_mode = not self.controller.capabilities.audio
        self.update_status(muted=self.controller.muted)
        self.consume_events(self.controller)
        if self.settings.call_on_start:
            self.call_screen.action_call()

    async def close_controller(self) -> None:
        """Hang up and release the controller, once, never waiting past SHUTDOWN_TIMEOUT_S."""
        controller, self.controller = self.controller, None
        if controller is not None:
            try:
                await asyncio.wait_for(controller.aclose(), SHUTDOWN_TIMEOUT_S)
            except (CallError, TimeoutError):
                pass  # leaving matters more than a clean goodbye to the server

    @work(exclusive=True, group="call-events")
    async def consume_events(self, controller: CallController) -> None:
        async for event in controller.events():
            self.apply_event(event)

    def apply_event(self, event: CallEvent) -> None:
        old = self.status
        self.status = reduce(old, event, now=self.clock(), lang=self.settings.lang)
        self.call_screen.show_event(event, old, self.status)

    def update_status(self, **changes: Any) -> None:
        self.status = dataclasses.replace(self.status, **changes)

    def _tick_duration(self) -> None:
        self.status = tick(self.status, self.clock())

    def record_deletable(self) -> bool:
        """An ended call of the Wespoke API (the demo keeps no history) whose record is still there."""
        return self.controller is not None and not self.settings.demo and status_record_deletable(self.status)

    # ----------------------------------------------------------------- state → screen

    def watch_status(self, old: CallStatus, status: CallStatus) -> None:
        self.call_screen.show_status(status)
        if old.state is not status.state:
            self.refresh_bindings()  # what c and h do depends on the state (CallScreen.check_action)

    def watch_chat_mode(self, chat: bool) -> None:
        self.call_screen.show_chat_mode(chat)  # also names c and h for a chat in the footer
        self.update_status(chat=chat)

    # ----------------------------------------------------------------- app-wide keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action != "interrupt" and len(self.screen_stack) > 1:
            return False  # a dialog or the setup form is up: only its own keys (and Ctrl+C)
        if action == "devices":
            return not self.chat_mode  # a chat has no microphone or speaker
        return True

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.texts))

    def action_devices(self) -> None:
        devices = self._devices_provider() if self._devices_provider else default_devices(self.settings)
        current = DeviceChoice(self.settings.input_device, self.settings.output_device)
        probe = self._mic_probe or (None if self._devices_provider else default_mic_probe())
        self.push_screen(DevicesScreen(self.texts, devices, current, probe), self._devices_done)

    def _devices_done(self, choice: DeviceChoice | None) -> None:
        if choice is None:
            return
        self.settings.input_device = choice.input_device
        self.settings.output_device = choice.output_device
        # Kept as "name [host API]" (indices move when devices come and go; a bare name can match
        # the same device under several host APIs); None goes back to the default.
        if self._save_config({"input_device": choice.input_device, "output_device": choice.output_device},
                             announce=False):
            self.notify(self.texts("toast.devices_saved"))

    # ----------------------------------------------------------------- quitting

    async def action_quit(self) -> None:
        if self.status.state.in_call:
            question = "confirm.quit_chat" if self.chat_mode else "confirm.quit"
            self.push_screen(ConfirmHangUp(self.texts, question), self._quit_confirmed)
        else:
            self.leave(0)

    def _quit_confirmed(self, confirmed: bool | None) -> None:
        if confirmed:
            self.leave(0)

    def action_interrupt(self) -> None:
        """Ctrl+C: hang up and quit at once; a second one while hanging up exits right away."""
        self.exit_policy.interrupt(EXIT_INTERRUPTED)

    def _leave_interrupted(self, _signum: int) -> None:
        self.shut_down(EXIT_INTERRUPTED)

    def _force_exit(self, _signum: int) -> None:
        self.notify(self.texts("toast.forced_exit"), severity="warning")
        self.exit(EXIT_INTERRUPTED, return_code=EXIT_INTERRUPTED)

    def leave(self, return_code: int) -> None:
        """Quit in order (q): from now on Ctrl+C or a signal forces the exit."""
        self.exit_policy.leaving = True
        self.shut_down(return_code)

    @work(exclusive=True, group="shutdown")
    async def shut_down(self, return_code: int) -> None:
        # A delete the user asked for (x or --delete-after) is finished, not cut off by the exit.
        for worker in [w for w in self.workers if w.group == "delete-record" and w.is_running]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.wait(), SHUTDOWN_TIMEOUT_S)
        await self.close_controller()
        self.exit_policy.hung_up.set()
        self.exit_policy.leave_if_terminal_lost(return_code)
        self.exit(return_code, return_code=return_code)

    # ----------------------------------------------------------------- first run and the config file

    def _setup_done(self, result: SetupResult | None) -> None:
        if result is None:
            self.exit(0)
            return
        if result.demo:
            self.settings.demo = True
            self.call_screen.show_demo_banner()
        else:
            self.settings.api_key, self.settings.assistant_id = result.api_key, result.assistant_id
            if result.save:
                self._save_config({"api_key": result.api_key, "assistant_id": result.assistant_id})
        self.open_controller()

    def mic_consent_given(self) -> None:
        self.settings.mic_consent_given = True
        self._save_config({"mic_consent_given": True}, announce=False)

    def _config_path(self) -> Path:
        if self.settings.config_path is not None:
            return self.settings.config_path
        from wespoke_tui.config import default_config_path

        return default_config_path(os.environ)

    def _save_config(self, updates: Mapping[str, Any], *, announce: bool = True) -> bool:
        saver = self._config_saver or default_config_saver()
        path = self._config_path()
        try:
            saver(path, updates)
        except Exception as exc:  # noqa: BLE001 - a config file problem must never end the app
            self.notify(self.texts("toast.save_failed", reason=type(exc).__name__), severity="error")
            return False
        if announce:
            self.notify(self.texts("toast.saved_config", path=str(path)))
        return True


def build_app(settings: Settings, controller_factory: ControllerFactory | None = None,
              **options: Any) -> WespokeApp:
    return WespokeApp(settings, controller_factory or default_controller_factory, **options)


def run_app(settings: Settings, exit_policy: ExitPolicy | None = None) -> int:
    """Run the TUI until the user quits; the exit status (130 after Ctrl+C or a signal).

    `exit_policy` is the process's, from the CLI; the app attaches its way out and installs it."""
    policy = exit_policy or ExitPolicy(process_exit=leave_after_call)
    result = build_app(settings, exit_policy=policy).run()
    code = result if isinstance(result, int) else 0
    exit_if_livekit_loaded(code)  # after Textual has restored the terminal
    return code
