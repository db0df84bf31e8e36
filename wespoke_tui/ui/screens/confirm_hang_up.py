""""Are you sure you want to end the call?": y/Enter ends it, n/Esc keeps talking."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from wespoke_tui.i18n import Texts
from wespoke_tui.ui.keys import localize_bindings
from wespoke_tui.ui.widgets.footer import Footer


class ConfirmHangUp(ModalScreen[bool]):
    """Dismissed with True to end the call. Focus starts on "No", the safe choice."""

    BINDINGS = [
        Binding("y", "confirm", "Yes", id="yes"),
        # Enter confirms even with focus on "No": the issue asks for y/Enter to confirm.
        Binding("enter", "confirm", "Yes", id="yes", show=False, priority=True),
        Binding("n,escape", "cancel", "No", id="no"),
    ]

    def __init__(self, texts: Texts, question_key: str = "confirm.hang_up", yes_key: str = "confirm.yes",
                 no_key: str = "confirm.no") -> None:
        super().__init__()
        self._t = texts
        self._question = texts(question_key)
        self._yes, self._no = texts(yes_key), texts(no_key)
        localize_bindings(self, texts.lang)

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog", classes="dialog"):
            yield Label(self._question, id="confirm-question")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self._no, id="confirm-no", variant="primary")
                yield Button(self._yes, id="confirm-yes", variant="error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
