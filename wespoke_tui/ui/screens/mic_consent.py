"""One line telling the user the app will use the microphone, before it opens the first time."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from wespoke_tui.i18n import Texts
from wespoke_tui.ui.keys import localize_bindings
from wespoke_tui.ui.widgets.footer import Footer


class MicConsent(ModalScreen[bool]):
    """Dismissed with True when the user allows the microphone."""

    BINDINGS = [
        Binding("y", "allow", "Yes", id="yes"),
        Binding("n,escape", "deny", "No", id="no"),
    ]

    def __init__(self, texts: Texts) -> None:
        super().__init__()
        self._t = texts
        localize_bindings(self, texts.lang)

    def compose(self) -> ComposeResult:
        with Vertical(id="consent-dialog", classes="dialog"):
            yield Label(self._t("consent.title"), classes="dialog-title")
            yield Static(self._t("consent.text"), id="consent-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self._t("consent.allow"), id="consent-allow", variant="success")
                yield Button(self._t("consent.deny"), id="consent-deny")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#consent-allow", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "consent-allow")

    def action_allow(self) -> None:
        self.dismiss(True)

    def action_deny(self) -> None:
        self.dismiss(False)
