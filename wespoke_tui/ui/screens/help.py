"""The keys and what they do."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from wespoke_tui.i18n import Texts
from wespoke_tui.ui.keys import localize_bindings
from wespoke_tui.ui.widgets.footer import Footer

KEYS: list[tuple[str, str]] = [
    ("c, Enter", "help.call"),
    ("m", "help.mute"),
    ("h", "help.hang_up"),
    ("d", "help.devices"),
    ("x", "help.delete_record"),
    ("r", "help.record"),
    ("s", "help.quality"),
    ("t", "help.switch_mode"),
    ("?", "help.help"),
    ("q", "help.quit"),
    ("Ctrl+C", "help.interrupt"),
    ("Tab", "help.input"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="close")]

    def __init__(self, texts: Texts) -> None:
        super().__init__()
        self._t = texts
        localize_bindings(self, texts.lang)

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, help_key in KEYS:
            table.add_row(key, self._t(help_key))
        with Vertical(id="help-dialog", classes="dialog"):
            yield Label(self._t("help.title"), classes="dialog-title")
            yield Static(self._t("help.intro"))
            yield Label(self._t("help.keys"), classes="dialog-subtitle")
            yield Static(table, id="help-keys")
            yield Label(self._t("help.close_hint"), classes="dim")
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)
