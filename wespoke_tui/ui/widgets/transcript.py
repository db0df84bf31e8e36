"""The conversation: one line per message id, updated in place as it streams."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from wespoke_tui.events import Role


class TranscriptLine(Static):
    """One message; `-user`, `-assistant`, `-tool`, `-notice` classes style it in app.tcss."""


class Transcript(VerticalScroll, can_focus=False):
    def __init__(self, placeholder: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._placeholder = placeholder
        self._lines: dict[str, TranscriptLine] = {}

    def compose(self) -> ComposeResult:
        yield Static(self._placeholder, classes="placeholder")

    def set_placeholder(self, text: str) -> None:
        """The hint shown while the transcript is empty (it differs for a call and a chat)."""
        self._placeholder = text
        for hint in self.query(".placeholder").results(Static):
            hint.update(text)

    def upsert(self, message_id: str, role: Role, speaker: str, text: str, final: bool) -> None:
        """Add the message, or rewrite its line if its id is already shown."""
        content = Text.assemble((f"{speaker}: ", "bold"), text, ("" if final else " …", "dim"))
        line = self._lines.get(message_id)
        if line is None:
            line = TranscriptLine(content, classes=f"-{role}")
            self._lines[message_id] = line
            self._append(line)
        else:
            line.update(content)
        line.set_class(not final, "-streaming")

    def add_notice(self, text: str, kind: str) -> None:
        """A line that is not a message (tool events, the assistant ending the call)."""
        self._append(TranscriptLine(Text(f"· {text}"), classes=f"-{kind}"))

    def clear(self) -> None:
        """A new call starts with an empty transcript (and no "press c to call" hint)."""
        self._lines.clear()
        self.remove_children()

    def reset(self) -> None:
        """Empty, with the hint back: nothing has been said in the mode just switched to."""
        self.clear()
        self.mount(Static(self._placeholder, classes="placeholder"))

    def _append(self, line: TranscriptLine) -> None:
        self.query(".placeholder").remove()
        self.mount(line)
        self.scroll_end(animate=False)
