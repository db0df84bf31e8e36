"""The Textual app: one screen for one call (or text chat) at a time, driven by a `CallController`.

Events flow up from the controller (a worker turns them into the `status` reactive and
widget attributes); intents flow down (bindings and widget messages call the controller in
workers). Nothing here touches LiveKit, sounddevice or httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import var
from textual.widgets import Footer, Label

from wespoke_tui.errors import CallError
from wespoke_tui.events import (
    AgentState,
    AgentStateChanged,
    AssistantLevel,
    AssistantSpeaking,
    CallController,
    CallEnding,
    CallEvent,
    CallQuality,
    CallRecordDeleted,
    CallStarted,
    CallState,
    ErrorEvent,
    KnowledgeUsed,
    MetricsEvent,
    MicLevel,
    MuteChanged,
    RateLimitInfo,
    ReconnectAttempt,
    RecordingChanged,
    StateChanged,
    ToolEvent,
    TranscriptItem,
)
from wespoke_tui.i18n import Texts
from wespoke_tui.settings import Settings
from wespoke_tui.shutdown import exit_if_livekit_loaded, leave_after_call, start_exit_watchdog, terminal_attached
from wespoke_tui.ui.keys import localize_bindings
from wespoke_tui.ui.parts import (
    ConfigSaver,
    default_config_saver,
    default_controller_factory,
    default_devices,
    default_mic_probe,
)
from wespoke_tui.ui.screens.confirm_delete_record import ConfirmDeleteRecord
from wespoke_tui.ui.screens.confirm_hang_up import ConfirmHangUp
from wespoke_tui.ui.screens.devices import DeviceChoice, DeviceEntry, DevicesScreen, MicProbe
from wespoke_tui.ui.screens.help import HelpScreen
from wespoke_tui.ui.screens.mic_consent import MicConsent
from wespoke_tui.ui.screens.setup import SetupResult, SetupScreen
from wespoke_tui.ui.widgets.call_button import CallButton
from wespoke_tui.ui.widgets.message_input import MessageInput
from wespoke_tui.ui.widgets.mic_toggle import MicToggle
from wespoke_tui.ui.widgets.quality_panel import QualityPanel
from wespoke_tui.ui.widgets.status_bar import CallStatus, StatusBar
from wespoke_tui.ui.widgets.transcript import Transcript
from wespoke_tui.ui.widgets.volume_meter import MutedSpeechDetector, VolumeMeter

ControllerFactory = Callable[[Settings], CallController]
DevicesProvider = Callable[[], Sequence[DeviceEntry]]

EXIT_INTERRUPTED = 130
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that hang up and quit like Ctrl+C (in the terminal, Ctrl+C itself arrives as a key)."""
SHUTDOWN_TIMEOUT_S = 5.0
"""How long quitting waits for the hang-up before it gives up and exits anyway."""
EXIT_GRACE_S = 3.0
"""After a signal, how long restoring the terminal may take past the hang-up timeout."""


class WespokeApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "wespoke-tui"
    ENABLE_COMMAND_PALETTE = False
    AUTO_FOCUS = None  # keys go to the bindings; the message input is focused on purpose (Tab, click)

    BINDINGS = [
        Binding("c,enter", "call", "Call", id="call"),
        Binding("m", "toggle_mute", "Mute", id="mute"),
        Binding("h", "hang_up", "Hang up", id="hang_up"),
        Binding("d", "devices", "Devices", id="devices"),
        Binding("x", "delete_record", "Delete record", id="delete_record"),
        Binding("r", "toggle_recording", "Record", id="record"),
        Binding("s", "toggle_quality", "Quality", id="quality"),
        Binding("t", "switch_mode", "Chat/Voice", id="switch_mode"),
        Binding("question_mark", "help", "Help", id="help", key_display="?"),
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+c", "interrupt", "Hang up and quit", id="interrupt", priority=True, show=False),
    ]

    # No repaint of their own: an App reactive that repaints redraws the whole screen (a full
    # compositor update, every second for the call clock); the watchers hand the new values to
    # the widgets, which repaint what changed.
    status: var[CallStatus] = var(CallStatus, init=False)
    muted_talking: var[bool] = var(False, init=False)
    chat_mode: var[bool] = var(False, init=False)  # a text chat: no meters, no mic, the input focused
    show_quality: var[bool] = var(False, init=False)

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
        process_exit: Callable[[int], None] | None = None,
    ) -> None:
        """`process_exit` ends the whole process; given only when the app owns it (`run_app`)."""
        super().__init__()
        self.settings = settings
        self.texts = Texts(settings.lang)
        self.controller: CallController | None = None
        self._controller_factory = controller_factory
        self._clock = clock
        self._devices_provider = devices_provider
        self._mic_probe = mic_probe
        self._config_saver = config_saver
        self._cursor_blink = cursor_blink
        self._process_exit = process_exit
        self._connected_at: float | None = None
        self._muted_speech = MutedSpeechDetector()
        self._toasted_error: CallError | None = None
        self._record_deleted = False  # the last call's record, by `x` or --delete-after
        self._shutting_down = False
        self._terminal_lost = False
        localize_bindings(self, settings.lang)

    # ----------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        t = self.texts
        if self.settings.demo:
            yield Label(t("demo.banner"), id="demo-banner")
        with Horizontal(id="controls"):
            with Vertical(id="buttons"):
                yield CallButton(t, id="call-button")
                yield MicToggle(t, id="mic-toggle")
            with Vertical(id="meters"):
                yield VolumeMeter(t("meter.mic"), id="mic-meter")
                yield VolumeMeter(t("meter.assistant"), id="assistant-meter")
                yield Label(t("meter.muted_hint"), id="muted-hint")
        yield Label("", id="call-banner")
        yield StatusBar(t, id="status-bar")
        yield QualityPanel(t, id="quality-panel")
        yield Transcript(t("transcript.empty"), id="transcript")
        message_input = MessageInput(t.lang, placeholder=t("input.placeholder"), id="message-input")
        message_input.cursor_blink = self._cursor_blink
        yield message_input
        yield Footer()

    def on_mount(self) -> None:
        self._show_status(self.status)
        self.watch_muted_talking(False)
        self.chat_mode = self.settings.chat
        self.watch_chat_mode(self.chat_mode)
        self.watch_show_quality(False)
        self.set_interval(1.0, self._tick_duration)
        self._install_signal_handlers()
        if self.settings.demo or (self.settings.api_key and self.settings.assistant_id):
            self._open_controller()
        else:
            screen = SetupScreen(self.texts, self._config_path(), self.settings.api_key,
                                 self.settings.assistant_id, cursor_blink=self._cursor_blink)
            self.push_screen(screen, self._setup_done)

    async def on_unmount(self) -> None:
        self._remove_signal_handlers()
        # Whatever way the app ends, the call ends with it: an open call keeps costing credits.
        await self._close_controller()

    async def _close_controller(self) -> None:
        """Hang up and release the controller, once, never waiting past SHUTDOWN_TIMEOUT_S."""
        controller, self.controller = self.controller, None
        if controller is not None:
            try:
                await asyncio.wait_for(controller.aclose(), SHUTDOWN_TIMEOUT_S)
            except (CallError, TimeoutError):
                pass  # leaving matters more than a clean goodbye to the server

    # ----------------------------------------------------------------- state → widgets

    def watch_status(self, old: CallStatus, status: CallStatus) -> None:
        self._show_status(status)
        if old.state is not status.state:
            self.refresh_bindings()  # what c and h do depends on the state (see check_action)

    def _show_status(self, status: CallStatus) -> None:
        self.query_one(StatusBar).status = status
        self.query_one(CallButton).call_state = status.state
        self.query_one(MicToggle).muted = status.muted
        banner = self.query_one("#call-banner", Label)
        banner.display = status.state is CallState.RECONNECTING
        if banner.display:
            banner.update(self.texts("toast.reconnecting", attempt=status.reconnect_attempt,
                                     max=status.reconnect_max))

    def watch_muted_talking(self, talking: bool) -> None:
        self.query_one("#muted-hint").display = talking and not self.chat_mode

    def watch_show_quality(self, shown: bool) -> None:
        self.query_one(QualityPanel).display = shown

    def watch_chat_mode(self, chat: bool) -> None:
        t = self.texts
        for voice_only in ("#meters", "#mic-toggle"):
            self.query_one(voice_only).display = not chat
        if chat:
            self.show_quality = False
        self.query_one(CallButton).chat = chat
        self.query_one(Transcript).set_placeholder(t("chat.empty" if chat else "transcript.empty"))
        message_input = self.query_one(MessageInput)
        message_input.placeholder = t("chat.placeholder" if chat else "input.placeholder")
        self._update(chat=chat)
        localize_bindings(self, self.settings.lang, "chat" if chat else None)
        self.refresh_bindings()

    def _update(self, **changes: Any) -> None:
        self.status = dataclasses.replace(self.status, **changes)

    def _tick_duration(self) -> None:
        if self._connected_at is not None:
            self._update(duration_s=self._clock() - self._connected_at)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action != "interrupt" and len(self.screen_stack) > 1:
            return False  # a dialog or the setup form is up: only its own keys (and Ctrl+C)
        state = self.status.state
        if action == "call":
            return None if self.controller is None or state.in_call or state is CallState.ENDING else True
        if action == "hang_up":
            return True if state.in_call else None
        if action == "delete_record":  # hidden, not dimmed: most of the time there is nothing to delete
            return self._record_deletable()
        if action in ("toggle_mute", "devices"):
            return not self.chat_mode  # a chat has no microphone or speaker
        if action == "toggle_quality":
            return not self.chat_mode
        if action == "toggle_recording":  # hidden outside a voice call: there is nothing to record
            return not self.chat_mode and (state is CallState.CONNECTED or self.status.recording)
        if action == "switch_mode":
            return None if self.controller is None or state.in_call or state is CallState.ENDING else True
        return True

    # ----------------------------------------------------------------- events (up)

    def _open_controller(self) -> None:
        self.controller = self._controller_factory(self.settings)
        self.chat_mode = not self.controller.capabilities.audio
        self._update(muted=self.controller.muted)
        self.consume_events(self.controller)
        if self.settings.call_on_start:
            self.action_call()

    @work(exclusive=True, group="call-events")
    async def consume_events(self, controller: CallController) -> None:
        async for event in controller.events():
            self.apply_event(event)

    def apply_event(self, event: CallEvent) -> None:
        t = self.texts
        match event:
            case StateChanged():
                self._apply_state(event)
            case CallStarted(call_id=call_id, assistant_name=name):
                self._update(call_id=call_id, assistant_name=name)
            case MicLevel(rms_dbfs=rms, peak_dbfs=peak, muted=muted):
                meter = self.query_one("#mic-meter", VolumeMeter)
                meter.rms_dbfs, meter.peak_dbfs = rms, peak
                self.muted_talking = self._muted_speech.update(rms, muted, self._clock())
            case AssistantLevel(rms_dbfs=rms, peak_dbfs=peak):
                meter = self.query_one("#assistant-meter", VolumeMeter)
                meter.rms_dbfs, meter.peak_dbfs = rms, peak
            case AssistantSpeaking(speaking=speaking):
                if speaking:
                    self._update(agent_state=AgentState.SPEAKING)
                elif self.status.agent_state is AgentState.SPEAKING:
                    self._update(agent_state=AgentState.LISTENING)
            case AgentStateChanged(state=agent_state):
                self._update(agent_state=agent_state)
            case MuteChanged(muted=muted):
                self._update(muted=muted)
            case TranscriptItem():
                self.query_one(Transcript).upsert(event.id, event.role, self._speaker(event.role),
                                                  event.text, event.final)
            case ToolEvent(phase=phase, tool_name=name):
                key = f"tool.{phase}" if phase in ("start", "complete", "failed", "delayed") else "tool.start"
                self.query_one(Transcript).add_notice(t(key, name=name), "tool")
            case KnowledgeUsed(sources=sources):
                self.query_one(Transcript).add_notice(t("knowledge.used", sources=", ".join(sources)), "tool")
            case MetricsEvent(latency_ms=latency) if latency is not None:
                self._update(latency_ms=latency)
            case CallEnding(message=message):
                self.query_one(Transcript).add_notice(message or t("call_ending.notice"), "notice")
            case ErrorEvent(error=error):
                self._show_error(error)
            case ReconnectAttempt(attempt=attempt, max_attempts=max_attempts):
                if self.status.state is CallState.RECONNECTING and attempt > self.status.reconnect_attempt > 0:
                    self.notify(t("toast.reconnecting", attempt=attempt, max=max_attempts), severity="warning")
                self._update(reconnect_attempt=attempt, reconnect_max=max_attempts)
            case RateLimitInfo(remaining=remaining, limit=limit):
                self._update(rate_remaining=remaining, rate_limit=limit)
            case CallQuality(level=level):
                self.query_one(QualityPanel).quality = event
                if level is not self.status.quality:
                    self._update(quality=level)
            case RecordingChanged(active=active, path=path):
                self._update(recording=active)
                if path is not None:
                    self.notify(t("toast.recording" if active else "toast.recording_saved", path=path))
                self.refresh_bindings()
            case CallRecordDeleted(call_id=call_id) if call_id == self.status.call_id:
                self._record_deleted = True
                self.notify(t("toast.record_deleted"))
                self.refresh_bindings()
            case _:
                pass  # barge-in, audio health: nothing to show

    def _apply_state(self, event: StateChanged) -> None:
        t, state = self.texts, event.state
        if state.in_call and not event.previous.in_call:
            # A new call: nothing of the previous one stays on screen.
            self.query_one(Transcript).clear()
            self._connected_at = None
            self._toasted_error = None
            self._record_deleted = False
            self._update(state=state, call_id=None, error=None, latency_ms=None, agent_state=None,
                         duration_s=None, reconnect_attempt=0, quality=None)
            self.query_one(QualityPanel).quality = None
            return
        if state is CallState.CONNECTED:
            if event.previous is CallState.RECONNECTING:
                self.notify(t("toast.reconnected"))
            else:
                self._connected_at = self._clock()
                name = self.status.assistant_name or t("assistant.unnamed")
                self.notify(t("toast.connected", name=name))
            self._update(state=state, reconnect_attempt=0, duration_s=self._duration())
            if self.chat_mode:
                self.query_one(MessageInput).focus()
            return
        if state is CallState.RECONNECTING:
            attempt = max(1, self.status.reconnect_attempt)
            self.notify(t("toast.reconnecting", attempt=attempt, max=self.status.reconnect_max),
                        severity="warning")
            self._update(state=state, reconnect_attempt=attempt)
            return
        if state is CallState.ENDING:
            self.notify(t("toast.ending_chat" if self.chat_mode else "toast.ending"))
        elif state is CallState.ENDED:
            self.notify(t("toast.chat_ended" if self.chat_mode else "toast.ended"))
        elif state is CallState.FAILED and event.error is not None:
            self._show_error(event.error)
        duration = self._duration()
        if state in (CallState.ENDED, CallState.FAILED):
            self._connected_at = None
        self._update(state=state, duration_s=duration)
        self.muted_talking = False
        if self.settings.delete_after and self._record_deletable():
            self.delete_record()

    def _duration(self) -> float | None:
        return None if self._connected_at is None else self._clock() - self._connected_at

    def _show_error(self, error: CallError) -> None:
        message = self._user_message(error)
        if self._toasted_error is None or self._toasted_error.code != error.code:
            self.notify(message, severity="error", timeout=8)
        self._toasted_error = error
        self._update(error=message)

    def _user_message(self, error: CallError) -> str:
        return error.user_message if error.lang == self.settings.lang else error.in_language(self.settings.lang).user_message

    def _speaker(self, role: str) -> str:
        if role == "assistant" and self.status.assistant_name:
            return self.status.assistant_name
        return self.texts(f"role.{role}") if role in ("user", "assistant", "system", "tool") else role

    # ----------------------------------------------------------------- intents (down)

    def action_call(self) -> None:
        if self.check_action("call", ()) is not True:
            return
        if not self.settings.mic_consent_given and not self.chat_mode:
            self.push_screen(MicConsent(self.texts), self._consent_done)
            return
        self.start_call()

    def _consent_done(self, allowed: bool | None) -> None:
        if not allowed:
            return
        self.settings.mic_consent_given = True
        self._save_config({"mic_consent_given": True}, announce=False)
        self.start_call()

    @work(exclusive=True, group="call-start")
    async def start_call(self) -> None:
        if (controller := self.controller) is None:
            return
        try:
            await controller.start()
        except CallError as error:  # the controller reports errors as events; this is a backstop
            self._show_error(error)

    def action_toggle_mute(self) -> None:
        if self.controller is not None:
            self.set_muted(not self.controller.muted)

    def on_mic_toggle_toggled(self, message: MicToggle.Toggled) -> None:
        if self.controller is not None:
            self.set_muted(message.muted)

    @work(exclusive=True, group="mute")
    async def set_muted(self, muted: bool) -> None:
        if (controller := self.controller) is None:
            return
        await controller.set_muted(muted)
        self._update(muted=controller.muted)

    def on_call_button_call_requested(self, _: CallButton.CallRequested) -> None:
        self.action_call()

    def on_call_button_hang_up_requested(self, _: CallButton.HangUpRequested) -> None:
        self.action_hang_up()

    def action_hang_up(self) -> None:
        if self.status.state.in_call:
            question = "confirm.end_chat" if self.chat_mode else "confirm.hang_up"
            self.push_screen(ConfirmHangUp(self.texts, question), self._hang_up_confirmed)

    def _hang_up_confirmed(self, confirmed: bool | None) -> None:
        if confirmed and self.status.state.in_call:
            self.hang_up()

    @work(exclusive=True, group="hang-up")
    async def hang_up(self) -> None:
        if (controller := self.controller) is not None:
            await controller.hang_up()

    def _record_deletable(self) -> bool:
        """An ended call of the Wespoke API (the demo keeps no history) whose record is still there."""
        state = self.status.state
        return (self.controller is not None and not self.settings.demo and state in (CallState.ENDED, CallState.FAILED)
                and bool(self.status.call_id) and not self._record_deleted)

    def action_delete_record(self) -> None:
        if self._record_deletable():
            self.push_screen(ConfirmDeleteRecord(self.texts), self._delete_confirmed)

    def _delete_confirmed(self, confirmed: bool | None) -> None:
        if confirmed and self._record_deletable():
            self.delete_record()

    @work(exclusive=True, group="delete-record")
    async def delete_record(self) -> None:
        if (controller := self.controller) is not None:
            await controller.delete_record()

    def on_message_input_send(self, message: MessageInput.Send) -> None:
        if self.controller is None or self.status.state is not CallState.CONNECTED:
            self.notify(self.texts("toast.not_in_chat" if self.chat_mode else "toast.not_in_call"), severity="warning")
            return
        self.send_text(message.text)

    @work(group="send-text")
    async def send_text(self, text: str) -> None:
        if (controller := self.controller) is None:
            return
        try:
            await controller.send_text(text)
        except CallError as error:
            self._show_error(error)

    def action_toggle_quality(self) -> None:
        if self.check_action("toggle_quality", ()) is True:
            self.show_quality = not self.show_quality

    def action_toggle_recording(self) -> None:
        if self.check_action("toggle_recording", ()) is True:
            self.set_recording(not self.status.recording)

    @work(exclusive=True, group="recording")
    async def set_recording(self, on: bool) -> None:
        if (controller := self.controller) is not None and not await controller.set_recording(on):
            self.notify(self.texts("toast.recording_unavailable"), severity="warning")

    def action_switch_mode(self) -> None:
        if self.check_action("switch_mode", ()) is True:
            self.switch_mode()

    @work(exclusive=True, group="switch-mode")
    async def switch_mode(self) -> None:
        """Voice ↔ text chat while idle: the next conversation gets a controller of the other kind."""
        await self._close_controller()
        self.settings.chat = not self.chat_mode
        self.query_one(Transcript).reset()
        self._update(state=CallState.IDLE, call_id=None, error=None, latency_ms=None, agent_state=None,
                     duration_s=None, reconnect_attempt=0, muted=False)
        self._open_controller()
        self.notify(self.texts("toast.mode_chat" if self.chat_mode else "toast.mode_voice"))
        if self.chat_mode:
            self.query_one(MessageInput).focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.texts))

    def action_devices(self) -> None:
        devices = self._devices_provider() if self._devices_provider else default_devices()
        current = DeviceChoice(self.settings.input_device, self.settings.output_device)
        probe = self._mic_probe or (None if self._devices_provider else default_mic_probe())
        self.push_screen(DevicesScreen(self.texts, devices, current, probe), self._devices_done)

    def _devices_done(self, choice: DeviceChoice | None) -> None:
        if choice is None:
            return
        self.settings.input_device = choice.input_device
        self.settings.output_device = choice.output_device
        # Kept by name (indices move when devices come and go); None goes back to the default.
        if self._save_config({"input_device": choice.input_device, "output_device": choice.output_device},
                             announce=False):
            self.notify(self.texts("toast.devices_saved"))

    # ----------------------------------------------------------------- quitting

    async def action_quit(self) -> None:
        if self.status.state.in_call:
            question = "confirm.quit_chat" if self.chat_mode else "confirm.quit"
            self.push_screen(ConfirmHangUp(self.texts, question), self._quit_confirmed)
        else:
            self.shut_down(0)

    def _quit_confirmed(self, confirmed: bool | None) -> None:
        if confirmed:
            self.shut_down(0)

    def action_interrupt(self) -> None:
        """Ctrl+C: hang up and quit at once; a second one while hanging up exits right away."""
        if self._shutting_down:
            self.notify(self.texts("toast.forced_exit"), severity="warning")
            self.exit(EXIT_INTERRUPTED, return_code=EXIT_INTERRUPTED)
            return
        self.shut_down(EXIT_INTERRUPTED)

    @work(exclusive=True, group="shutdown")
    async def shut_down(self, return_code: int) -> None:
        self._shutting_down = True
        # A delete the user asked for (x or --delete-after) is finished, not cut off by the exit.
        for worker in [w for w in self.workers if w.group == "delete-record" and w.is_running]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.wait(), SHUTDOWN_TIMEOUT_S)
        await self._close_controller()
        if self._terminal_lost and self._process_exit is not None:
            # The window is closed: nothing to restore, and Textual's attempt would block.
            self._process_exit(return_code)
        self.exit(return_code, return_code=return_code)

    def _on_signal(self, signum: signal.Signals) -> None:
        if self._process_exit is not None and not self._shutting_down:
            start_exit_watchdog(SHUTDOWN_TIMEOUT_S + EXIT_GRACE_S, EXIT_INTERRUPTED, self._process_exit)
        if signum is signal.SIGHUP and not terminal_attached():
            self._terminal_lost = True
        self.action_interrupt()

    def _install_signal_handlers(self) -> None:
        """SIGTERM, SIGHUP (terminal closed) and SIGINT end the call and the app like Ctrl+C."""
        loop = asyncio.get_running_loop()
        for signum in HANDLED_SIGNALS:
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (e.g. some test runners): Ctrl+C still works

    def _remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in HANDLED_SIGNALS:
            try:
                loop.remove_signal_handler(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    # ----------------------------------------------------------------- first run

    def _setup_done(self, result: SetupResult | None) -> None:
        if result is None:
            self.exit(0)
            return
        if result.demo:
            self.settings.demo = True
            self.mount(Label(self.texts("demo.banner"), id="demo-banner"), before=0)
        else:
            self.settings.api_key, self.settings.assistant_id = result.api_key, result.assistant_id
            if result.save:
                self._save_config({"api_key": result.api_key, "assistant_id": result.assistant_id})
        self._open_controller()

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


def run_app(settings: Settings) -> int:
    """Run the TUI until the user quits; the exit status (130 after Ctrl+C or a signal)."""
    result = build_app(settings, process_exit=leave_after_call).run()
    code = result if isinstance(result, int) else 0
    exit_if_livekit_loaded(code)  # after Textual has restored the terminal
    return code
