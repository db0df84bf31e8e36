"""The call-quality panel: the connection's and the audio's figures, one a line, once a second."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from wespoke_tui.events import CallQuality, QualityLevel
from wespoke_tui.i18n import Texts

LEVEL_STYLES = {QualityLevel.GOOD: "bold green", QualityLevel.FAIR: "bold yellow", QualityLevel.POOR: "bold red"}


def level_text(level: QualityLevel | None, t: Texts) -> Text:
    if level is None:
        return Text(t("status.none"))
    return Text(t(f"quality.{level.value}"), style=LEVEL_STYLES[level])


class QualityPanel(Widget):
    """Shows one `CallQuality`; a new one repaints it only when a shown figure changed."""

    DEFAULT_CSS = """
    QualityPanel { height: auto; border: round $secondary; padding: 0 1; }
    """

    quality: reactive[CallQuality | None] = reactive(None)

    def __init__(self, texts: Texts, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._t = texts
        self.border_title = texts("quality.title")

    def render(self) -> Table:
        t, q = self._t, self.quality
        none = t("status.none")

        def ms(value: float | None) -> str:
            return none if value is None else f"{value:.0f} ms"

        def kbps(value: float | None) -> str:
            return none if value is None else f"{value:.0f} kbit/s"

        rows: list[tuple[str, str | Text]] = [
            (t("quality.level"), level_text(q.level if q else None, t)),
            (t("quality.rtt"), ms(q.rtt_ms if q else None)),
            (t("quality.jitter"), ms(q.jitter_ms if q else None)),
            (t("quality.loss"), none if q is None or q.packet_loss_pct is None else f"{q.packet_loss_pct:.1f} %"),
            (t("quality.bitrate"), f"{kbps(q.bitrate_in_kbps if q else None)} / {kbps(q.bitrate_out_kbps if q else None)}"),
            (t("quality.buffer"), ms(q.playback_buffer_ms if q else None)),
            (t("quality.underruns"), none if q is None else str(q.underruns)),
            (t("quality.aec"), ms(q.aec_delay_ms if q else None)),
            (t("quality.response"), ms(q.response_ms if q else None)),
        ]
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(style="bold", no_wrap=True)
        half = (len(rows) + 1) // 2
        for left, right in zip(rows[:half], [*rows[half:], ("", "")]):
            grid.add_row(left[0], left[1], right[0], right[1])
        return grid
