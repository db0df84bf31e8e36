"""The call button: Call / Connecting… / End call (Start chat / End chat in a text chat),
following the call state."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button

from wespoke_tui.events import CallState
from wespoke_tui.i18n import Texts


class CallButton(Button, can_focus=False):
    """Keys drive the app's bindings; the button is for the mouse, so it never takes focus."""

    @dataclass
    class CallRequested(Message):
        pass

    @dataclass
    class HangUpRequested(Message):
        pass

    call_state: reactive[CallState] = reactive(CallState.IDLE)
    chat: reactive[bool] = reactive(False)

    def __init__(self, texts: Texts, *, id: str | None = None) -> None:
        super().__init__(texts("button.call"), variant="success", id=id)
        self._t = texts

    def watch_call_state(self) -> None:
        self._show()

    def watch_chat(self) -> None:
        self._show()

    def _show(self) -> None:
        state = self.call_state
        if state in (CallState.REQUESTING_TOKEN, CallState.CONNECTING):
            self.label, self.variant = self._t("button.connecting"), "warning"
        elif state in (CallState.CONNECTED, CallState.RECONNECTING):
            self.label, self.variant = self._t("button.end_chat" if self.chat else "button.end_call"), "error"
        elif state is CallState.ENDING:
            self.label, self.variant = self._t("button.ending"), "default"
        else:
            self.label, self.variant = self._t("button.chat" if self.chat else "button.call"), "success"
        self.disabled = state is CallState.ENDING

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        # While connecting the button offers to cancel, which is a hang-up as well.
        self.post_message(self.HangUpRequested() if self.call_state.in_call else self.CallRequested())
