"""The status bar: everything about the call in words, from one `CallStatus` value."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from wespoke_tui.events import CallState
from wespoke_tui.i18n import Texts
from wespoke_tui.presenter import CallStatus, state_words
from wespoke_tui.ui.widgets.quality_panel import level_text


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class StatusBar(Widget):
    # Not layout=True: the call clock updates this every second, and a layout of the whole
    # screen each time cost a third of a core. Only the error line changes the bar's height.
    status: reactive[CallStatus] = reactive(CallStatus)

    def __init__(self, texts: Texts, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._t = texts

    def watch_status(self, old: CallStatus, status: CallStatus) -> None:
        if old.error != status.error:
            self.refresh(layout=True)
        if old.state is not status.state:
            self.set_class(status.state is CallState.RECONNECTING, "-reconnecting")
            self.set_class(status.state is CallState.FAILED, "-failed")
            self.set_class(status.state is CallState.CONNECTED, "-connected")

    def render(self) -> Table | Group:
        s, t = self.status, self._t
        none = t("status.none")
        agent = t(f"agent.{s.agent_state.value}") if s.agent_state else none
        latency = f"{s.latency_ms:.0f} ms" if s.latency_ms is not None else none
        if s.rate_remaining is None:
            rate = none
        else:
            rate = f"{s.rate_remaining}/{s.rate_limit}" if s.rate_limit is not None else str(s.rate_remaining)
        mic = [] if s.chat else [(t("status.mic"), t("mic.muted" if s.muted else "mic.on"))]
        fields = [
            [(t("status.state"), state_words(s, t)), (t("status.duration"), format_duration(s.duration_s)),
             (t("status.chat_id" if s.chat else "status.call_id"), s.call_id or none)],
            [(t("status.assistant"), s.assistant_name or none), (t("status.agent"), agent), *mic],
            [(t("status.latency"), latency), (t("status.rate_limit"), rate)],
        ]
        quality = level_text(s.quality, t) if s.quality is not None else None
        grid = Table.grid(padding=(0, 3))
        # A fourth column only while recording, beside the state: it must never go unnoticed, and
        # when there is none the three columns keep the whole width.
        columns = 4 if s.recording else 3
        for _ in range(columns):
            grid.add_column(no_wrap=True)
        for index, row in enumerate(fields):
            cells = [Text.assemble((f"{label}: ", "dim"), (value, "bold")) for label, value in row]
            if index == 2 and quality is not None:  # amber and red when the quality drops
                cells.append(Text.assemble((f"{t('status.quality')}: ", "dim"), quality))
            if s.recording:
                cells += [Text("")] * (3 - len(cells))
                cells.append(Text(t("status.recording"), style="bold red") if index == 0 else Text(""))
            grid.add_row(*cells)
        if not s.error:
            return grid
        return Group(grid, Text.assemble((f"{t('status.error')}: ", "bold red"), (s.error, "red")))
