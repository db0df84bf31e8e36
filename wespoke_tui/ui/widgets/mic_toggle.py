"""The microphone toggle: on / muted."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button

from wespoke_tui.i18n import Texts


class MicToggle(Button, can_focus=False):
    @dataclass
    class Toggled(Message):
        muted: bool
        """The state the user asks for."""

    muted: reactive[bool] = reactive(False)

    def __init__(self, texts: Texts, *, id: str | None = None) -> None:
        super().__init__(texts("button.mic_on"), id=id)
        self._t = texts

    def watch_muted(self, muted: bool) -> None:
        self.label = self._t("button.mic_muted" if muted else "button.mic_on")
        self.variant = "error" if muted else "primary"
        self.set_class(muted, "-muted")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.Toggled(muted=not self.muted))
