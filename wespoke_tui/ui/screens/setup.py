"""First run without a key or an assistant: ask for them, offer to save them, explain --demo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Input, Label, Static

from wespoke_tui.i18n import Texts
from wespoke_tui.settings import KEY_PREFIXES
from wespoke_tui.ui.keys import localize_bindings
from wespoke_tui.ui.widgets.footer import Footer


@dataclass(frozen=True, slots=True)
class SetupResult:
    api_key: str | None = None
    assistant_id: str | None = None
    save: bool = False
    demo: bool = False


def key_problem(key: str, t: Texts) -> str | None:
    """What is wrong with the key, in words, or None."""
    return None if key.startswith(KEY_PREFIXES) and len(key) > 8 else t("setup.bad_key")


class SetupScreen(Screen[SetupResult | None]):
    """Dismissed with what the user entered, with `demo=True`, or None to quit."""

    BINDINGS = [Binding("escape", "quit_setup", "Quit", id="quit")]

    def __init__(self, texts: Texts, config_path: Path, api_key: str | None = None,
                 assistant_id: str | None = None, cursor_blink: bool = True) -> None:
        super().__init__()
        self._t = texts
        self._config_path = config_path
        self._api_key = api_key or ""
        self._assistant_id = assistant_id or ""
        self._cursor_blink = cursor_blink
        localize_bindings(self, texts.lang)

    def compose(self) -> ComposeResult:
        t = self._t
        with VerticalScroll(id="setup-form"):
            yield Label(t("setup.title"), classes="dialog-title")
            yield Static(t("setup.intro"))
            yield Label(t("setup.key_label"), classes="field-label")
            yield self._input(self._api_key, "pk_live_…", "setup-key", password=True)
            yield Label(t("setup.assistant_label"), classes="field-label")
            yield self._input(self._assistant_id, "asst_…", "setup-assistant")
            yield Checkbox(t("setup.save", path=str(self._config_path)), True, id="setup-save")
            yield Label("", id="setup-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(t("setup.continue"), id="setup-continue", variant="success")
                yield Button(t("setup.demo"), id="setup-demo", variant="primary")
                yield Button(t("setup.quit"), id="setup-quit")
            yield Static(t("setup.demo_hint"), id="setup-demo-hint")
        yield Footer()

    def _input(self, value: str, placeholder: str, id: str, password: bool = False) -> Input:
        field = Input(value, placeholder=placeholder, password=password, id=id)
        field.cursor_blink = self._cursor_blink
        return field

    def on_mount(self) -> None:
        self.query_one("#setup-assistant" if self._api_key else "#setup-key", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "setup-key":
            self.query_one("#setup-assistant", Input).focus()
        else:
            self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "setup-continue":
            self._submit()
        elif event.button.id == "setup-demo":
            self.dismiss(SetupResult(demo=True))
        else:
            self.dismiss(None)

    def action_quit_setup(self) -> None:
        self.dismiss(None)

    def _submit(self) -> None:
        key = self.query_one("#setup-key", Input).value.strip()
        assistant = self.query_one("#setup-assistant", Input).value.strip()
        problem = key_problem(key, self._t) or (None if assistant else self._t("setup.no_assistant"))
        error = self.query_one("#setup-error", Label)
        error.update(problem or "")
        if problem:
            # The key itself is never echoed back, not even in the error.
            return
        self.dismiss(SetupResult(key, assistant, self.query_one("#setup-save", Checkbox).value))
