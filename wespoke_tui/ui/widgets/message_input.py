"""The box for typing to the assistant during a call."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input

from wespoke_tui.errors import Lang
from wespoke_tui.ui.keys import localize_bindings


class MessageInput(Input):
    BINDINGS = [Binding("escape", "leave", "Leave input", id="leave_input")]

    @dataclass
    class Send(Message):
        text: str

    def __init__(self, lang: Lang, *, placeholder: str = "", id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, id=id)
        localize_bindings(self, lang)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if text:
            self.post_message(self.Send(text))
            self.value = ""

    def action_leave(self) -> None:
        # Hand the keys back to the app's bindings (c, m, h, …).
        self.screen.set_focus(None)
