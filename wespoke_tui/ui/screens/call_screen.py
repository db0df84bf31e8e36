"""The call screen: the layout of one call (or text chat), what each event shows beside the
status, the call's keys (bindings, `check_action`, the actions) and the widgets' messages.

The app (ui/app.py) holds the `CallStatus` reactive and the controller; it hands every new
status to `show_status` and every event to `show_event`. The screen reaches the app only
through `CallHost` (ui/host.py), given when it is made; the actions call the controller in
workers. Nothing here touches LiveKit, sounddevice or httpx, or imports the app.
"""

from __future__ import annotations

import dataclasses

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import var
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Label

from wespoke_tui.errors import CallError, describe
from wespoke_tui.events import (
    AssistantLevel,
    CallEnding,
    CallEvent,
    CallQuality,
    CallRecordDeleted,
    CallState,
    ErrorEvent,
    KnowledgeUsed,
    MicLevel,
    ReconnectAttempt,
    RecordingChanged,
    Role,
    StateChanged,
    ToolEvent,
    TranscriptItem,
)
from wespoke_tui.presenter import CallStatus, is_new_error, role_words, tool_words, with_error
from wespoke_tui.ui.host import CallHost
from wespoke_tui.ui.keys import localize_bindings
from wespoke_tui.ui.screens.confirm_delete_record import ConfirmDeleteRecord
from wespoke_tui.ui.screens.confirm_hang_up import ConfirmHangUp
from wespoke_tui.ui.screens.mic_consent import MicConsent
from wespoke_tui.ui.widgets.call_button import CallButton
from wespoke_tui.ui.widgets.footer import Footer
from wespoke_tui.ui.widgets.message_input import MessageInput
from wespoke_tui.ui.widgets.mic_toggle import MicToggle
from wespoke_tui.ui.widgets.quality_panel import QualityPanel
from wespoke_tui.ui.widgets.status_bar import StatusBar
from wespoke_tui.ui.widgets.transcript import Transcript
from wespoke_tui.ui.widgets.volume_meter import MutedSpeechDetector, VolumeMeter


class CallScreen(Screen[None]):
    """The app's default screen; `host` is the app (`WespokeApp`, not imported: it imports us)."""

    # The footer lists a screen's bindings before the app's (help, quit): this order is the footer's.
    BINDINGS = [
        Binding("c,enter", "call", "Call", id="call"),
        Binding("m", "toggle_mute", "Mute", id="mute"),
        Binding("h", "hang_up", "Hang up", id="hang_up"),
        # The devices dialog is the app's (the program's settings and config file); its key is
        # listed here to keep its place in the footer.
        Binding("d", "app.devices", "Devices", id="devices"),
        Binding("x", "delete_record", "Delete record", id="delete_record"),
        Binding("r", "toggle_recording", "Record", id="record"),
        Binding("s", "toggle_quality", "Quality", id="quality"),
        Binding("t", "switch_mode", "Chat/Voice", id="switch_mode"),
    ]

    # No repaint of their own (see WespokeApp.status): the watchers hand values to widgets.
    muted_talking: var[bool] = var(False, init=False)
    show_quality: var[bool] = var(False, init=False)

    def __init__(self, host: CallHost, *, cursor_blink: bool) -> None:
        super().__init__(id="_default")
        self.host = host
        self.texts = host.texts
        self._cursor_blink = cursor_blink
        self._muted_speech = MutedSpeechDetector()
        localize_bindings(self, self.texts.lang)

    # ----------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        t = self.texts
        if self.host.settings.demo:
            yield Label(t("demo.banner"), id="demo-banner")
        with Horizontal(id="controls"):
            with Vertical(id="buttons"):
                yield CallButton(t, id="call-button")
                yield MicToggle(t, id="mic-toggle")
            with Vertical(id="meters"):
                yield VolumeMeter(t("meter.mic"), id="mic-meter")
                yield VolumeMeter(t("meter.assistant"), id="assistant-meter")
                yield hidden(Label(t("meter.muted_hint"), id="muted-hint"))
        yield Label("", id="call-banner")
        yield StatusBar(t, id="status-bar")
        yield hidden(QualityPanel(t, id="quality-panel"))
        yield Transcript(t("transcript.empty"), id="transcript")
        message_input = MessageInput(t.lang, placeholder=t("input.placeholder"), id="message-input")
        message_input.cursor_blink = self._cursor_blink
        yield message_input
        yield Footer()

    def on_mount(self) -> None:
        """Show what the host holds now (it may have moved on before the widgets were up), then
        let it open the call: from here on its watchers hand each change to the screen."""
        self.show_status(self.host.status)
        self.show_chat_mode(self.host.chat_mode)
        self.host.call_screen_ready()

    def show_demo_banner(self) -> None:
        """The first-run form chose the demo: the banner the demo always has."""
        self.mount(Label(self.texts("demo.banner"), id="demo-banner"), before=0)

    # ----------------------------------------------------------------- state → widgets

    def show_status(self, status: CallStatus) -> None:
        """Also from the app's one-second tick, which can come while the app exits and the
        screen's widgets are already gone (seen under load), or before they are up: then there
        is nothing to show on (`on_mount` shows the status as it is then)."""
        if not self.query(StatusBar):
            return
        self.query_one(StatusBar).status = status
        self.query_one(CallButton).call_state = status.state
        self.query_one(MicToggle).muted = status.muted
        banner = self.query_one("#call-banner", Label)
        banner.display = status.state is CallState.RECONNECTING
        if banner.display:
            banner.update(self.texts("toast.reconnecting", attempt=status.reconnect_attempt,
                                     max=status.reconnect_max))

    def watch_muted_talking(self, talking: bool) -> None:
        self.query_one("#muted-hint").display = talking and not self.host.chat_mode

    def watch_show_quality(self, shown: bool) -> None:
        self.query_one(QualityPanel).display = shown

    def show_chat_mode(self, chat: bool) -> None:
        """Voice or text chat: what is shown, and what c and h are called in the footer."""
        t = self.texts
        for voice_only in ("#meters", "#mic-toggle"):
            self.query_one(voice_only).display = not chat
        if chat:
            self.show_quality = False
        self.query_one(CallButton).chat = chat
        self.query_one(Transcript).set_placeholder(t("chat.empty" if chat else "transcript.empty"))
        self.query_one(MessageInput).placeholder = t("chat.placeholder" if chat else "input.placeholder")
        localize_bindings(self, t.lang, "chat" if chat else None)
        self.app.refresh_bindings()

    # ----------------------------------------------------------------- events (up)

    def show_event(self, event: CallEvent, old: CallStatus, status: CallStatus) -> None:
        """What `event` shows beside the status, which has gone from `old` to `status`."""
        t = self.texts
        match event:
            case StateChanged():
                self._show_state(event, old, status)
            case MicLevel(rms_dbfs=rms, peak_dbfs=peak, muted=muted):
                meter = self.query_one("#mic-meter", VolumeMeter)
                meter.rms_dbfs, meter.peak_dbfs = rms, peak
                self.muted_talking = self._muted_speech.update(rms, muted, self.host.clock())
            case AssistantLevel(rms_dbfs=rms, peak_dbfs=peak):
                meter = self.query_one("#assistant-meter", VolumeMeter)
                meter.rms_dbfs, meter.peak_dbfs = rms, peak
            case TranscriptItem():
                self.query_one(Transcript).upsert(event.id, event.role, self._speaker(event.role, status),
                                                  event.text, event.final)
            case ToolEvent(phase=phase, tool_name=name):
                self.query_one(Transcript).add_notice(tool_words(phase, name, t), "tool")
            case KnowledgeUsed(sources=sources):
                self.query_one(Transcript).add_notice(t("knowledge.used", sources=", ".join(sources)), "tool")
            case CallEnding(message=message):
                self.query_one(Transcript).add_notice(message or t("call_ending.notice"), "notice")
            case ErrorEvent(error=error):
                self.toast_error(old, error, status)
            case ReconnectAttempt(attempt=attempt, max_attempts=max_attempts):
                if old.state is CallState.RECONNECTING and attempt > old.reconnect_attempt > 0:
                    self.notify(t("toast.reconnecting", attempt=attempt, max=max_attempts), severity="warning")
            case CallQuality():
                self.query_one(QualityPanel).quality = event
            case RecordingChanged(active=active, path=path):
                if path is not None:
                    self.notify(t("toast.recording" if active else "toast.recording_saved", path=path))
                self.app.refresh_bindings()
            case CallRecordDeleted(call_id=call_id) if call_id == old.call_id:
                self.notify(t("toast.record_deleted"))
                self.app.refresh_bindings()
            case _:
                pass  # barge-in, audio health, rate, latency, mute: the status shows it all

    def _show_state(self, event: StateChanged, old: CallStatus, status: CallStatus) -> None:
        t, state, chat = self.texts, event.state, self.host.chat_mode
        if state.in_call and not event.previous.in_call:
            # A new call: nothing of the previous one stays on screen.
            self.query_one(Transcript).clear()
            self.query_one(QualityPanel).quality = None
            return
        if state is CallState.CONNECTED:
            if event.previous is CallState.RECONNECTING:
                self.notify(t("toast.reconnected"))
            else:
                self.notify(t("toast.connected", name=old.assistant_name or t("assistant.unnamed")))
            if chat:
                self.query_one(MessageInput).focus()
            return
        if state is CallState.RECONNECTING:
            self.notify(t("toast.reconnecting", attempt=status.reconnect_attempt, max=status.reconnect_max),
                        severity="warning")
            return
        if state is CallState.ENDING:
            self.notify(t("toast.ending_chat" if chat else "toast.ending"))
        elif state is CallState.ENDED:
            self.notify(t("toast.chat_ended" if chat else "toast.ended"))
        elif state is CallState.FAILED and event.error is not None:
            self.toast_error(old, event.error, status)
        self.muted_talking = False
        if self.host.settings.delete_after and self.host.record_deletable():
            self.delete_record()

    def toast_error(self, old: CallStatus, error: CallError, status: CallStatus) -> None:
        if is_new_error(old, error):
            self.notify(status.error or describe(error, self.texts.lang), severity="error", timeout=8)

    def _show_error(self, error: CallError) -> None:
        """An error that came as an exception, not as an event (a backstop)."""
        old = self.host.status
        self.host.status = with_error(old, error, self.texts.lang)
        self.toast_error(old, error, self.host.status)

    def _speaker(self, role: Role, status: CallStatus) -> str:
        if role == Role.ASSISTANT and status.assistant_name:
            return status.assistant_name
        return role_words(role, self.texts)

    # ----------------------------------------------------------------- keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """True: the key works; None: shown dimmed; False: hidden (and the key does nothing)."""
        if len(self.app.screen_stack) > 1:
            return False  # a dialog or the setup form is up: only its own keys (and Ctrl+C)
        host = self.host
        state = host.status.state
        if action in ("call", "switch_mode"):
            return None if host.controller is None or state.in_call or state is CallState.ENDING else True
        if action == "hang_up":
            return True if state.in_call else None
        if action == "delete_record":  # hidden, not dimmed: most of the time there is nothing to delete
            return host.record_deletable()
        if action in ("toggle_mute", "toggle_quality"):
            return not host.chat_mode  # a chat has no microphone or speaker
        if action == "toggle_recording":  # hidden outside a voice call: there is nothing to record
            return not host.chat_mode and (state is CallState.CONNECTED or host.status.recording)
        return True

    def _allowed(self, action: str) -> bool:
        """Whether the binding for `action` is enabled now (also for the buttons and the host)."""
        return self.check_action(action, ()) is True

    # ----------------------------------------------------------------- actions and intents (down)

    def action_call(self) -> None:
        if not self._allowed("call"):
            return
        if not self.host.settings.mic_consent_given and not self.host.chat_mode:
            self.app.push_screen(MicConsent(self.texts), self._consent_done)
            return
        self.start_call()

    def _consent_done(self, allowed: bool | None) -> None:
        if allowed:
            self.host.mic_consent_given()
            self.start_call()

    @work(exclusive=True, group="call-start")
    async def start_call(self) -> None:
        if (controller := self.host.controller) is None:
            return
        try:
            await controller.start()
        except CallError as error:  # the controller reports errors as events; this is a backstop
            self._show_error(error)

    def action_toggle_mute(self) -> None:
        if (controller := self.host.controller) is not None:
            self.set_muted(not controller.muted)

    def on_mic_toggle_toggled(self, message: MicToggle.Toggled) -> None:
        if self.host.controller is not None:
            self.set_muted(message.muted)

    @work(exclusive=True, group="mute")
    async def set_muted(self, muted: bool) -> None:
        if (controller := self.host.controller) is None:
            return
        await controller.set_muted(muted)
        self.host.status = dataclasses.replace(self.host.status, muted=controller.muted)

    def on_call_button_call_requested(self, _: CallButton.CallRequested) -> None:
        self.action_call()

    def on_call_button_hang_up_requested(self, _: CallButton.HangUpRequested) -> None:
        self.action_hang_up()

    def action_hang_up(self) -> None:
        """Asks first: a call hung up by a stray key is a call lost."""
        if self.host.status.state.in_call:
            question = "confirm.end_chat" if self.host.chat_mode else "confirm.hang_up"
            self.app.push_screen(ConfirmHangUp(self.texts, question), self._hang_up_confirmed)

    def _hang_up_confirmed(self, confirmed: bool | None) -> None:
        if confirmed and self.host.status.state.in_call:
            self.hang_up()

    @work(exclusive=True, group="hang-up")
    async def hang_up(self) -> None:
        if (controller := self.host.controller) is not None:
            await controller.hang_up()

    def action_delete_record(self) -> None:
        if self.host.record_deletable():
            self.app.push_screen(ConfirmDeleteRecord(self.texts), self._delete_confirmed)

    def _delete_confirmed(self, confirmed: bool | None) -> None:
        if confirmed and self.host.record_deletable():
            self.delete_record()

    @work(exclusive=True, group="delete-record")
    async def delete_record(self) -> None:
        if (controller := self.host.controller) is not None:
            await controller.delete_record()

    def on_message_input_send(self, message: MessageInput.Send) -> None:
        if self.host.controller is None or self.host.status.state is not CallState.CONNECTED:
            self.notify(self.texts("toast.not_in_chat" if self.host.chat_mode else "toast.not_in_call"),
                        severity="warning")
            return
        self.send_text(message.text)

    @work(group="send-text")
    async def send_text(self, text: str) -> None:
        if (controller := self.host.controller) is None:
            return
        try:
            await controller.send_text(text)
        except CallError as error:
            self._show_error(error)

    def action_toggle_quality(self) -> None:
        if self._allowed("toggle_quality"):
            self.show_quality = not self.show_quality

    def action_toggle_recording(self) -> None:
        if self._allowed("toggle_recording"):
            self.set_recording(not self.host.status.recording)

    @work(exclusive=True, group="recording")
    async def set_recording(self, on: bool) -> None:
        if (controller := self.host.controller) is not None and not await controller.set_recording(on):
            self.notify(self.texts("toast.recording_unavailable"), severity="warning")

    def action_switch_mode(self) -> None:
        if self._allowed("switch_mode"):
            self.switch_mode()

    @work(exclusive=True, group="switch-mode")
    async def switch_mode(self) -> None:
        """Voice ↔ text chat while idle: the next conversation gets a controller of the other kind."""
        host = self.host
        await host.close_controller()
        host.settings.chat = not host.chat_mode
        self.query_one(Transcript).reset()
        host.status = dataclasses.replace(host.status, state=CallState.IDLE, call_id=None, error=None,
                                          latency_ms=None, agent_state=None, duration_s=None,
                                          reconnect_attempt=0, muted=False)
        host.open_controller()
        self.notify(self.texts("toast.mode_chat" if host.chat_mode else "toast.mode_voice"))
        if host.chat_mode:
            self.query_one(MessageInput).focus()


def hidden(widget: Widget) -> Widget:
    """`widget`, not displayed until a watcher shows it."""
    widget.display = False
    return widget
