"""A horizontal RMS meter in dBFS with a peak mark, and the "talking while muted" detector."""

from __future__ import annotations

import math

from rich.segment import Segment
from rich.style import Style
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from wespoke_tui.events import SILENCE_DBFS

FLOOR_DBFS = -60.0
"""The left end of the bar; quieter reads as an empty bar."""


def bar_fraction(dbfs: float) -> float:
    return min(1.0, max(0.0, (dbfs - FLOOR_DBFS) / -FLOOR_DBFS))


ZONES = ((0.7, "green"), (0.9, "yellow"), (1.0, "red"))
"""Where each colour of the bar ends, as a fraction of its width."""
ZONE_STYLES = {colour: Style(color=colour) for _, colour in ZONES}
BOLD = Style(bold=True)
DIM = Style(dim=True)


class VolumeMeter(Widget):
    DEFAULT_CSS = """
    VolumeMeter { height: 1; width: 1fr; }
    """

    # Levels arrive up to METER_HZ times a second; most readings do not move a single cell, so the
    # meter repaints only when what it shows changes (see `_shown`).
    rms_dbfs: reactive[float] = reactive(SILENCE_DBFS, repaint=False)
    peak_dbfs: reactive[float] = reactive(SILENCE_DBFS, repaint=False)

    def __init__(self, label: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label = label
        self._painted: tuple[int, int, str] | None = None
        self._strip = Strip([])
        self._strip_key: tuple[tuple[int, int, str], int, Style] | None = None

    def watch_rms_dbfs(self) -> None:
        self._repaint_if_changed()

    def watch_peak_dbfs(self) -> None:
        self._repaint_if_changed()

    def on_resize(self) -> None:
        self._painted = None
        self.refresh()

    def _repaint_if_changed(self) -> None:
        if self._shown() != self._painted:
            self.refresh()

    def _layout(self) -> tuple[str, str, int]:
        label = f"{self.label:<10.10} "
        reading = "   — dBFS" if self.rms_dbfs <= SILENCE_DBFS else f"{self.rms_dbfs:4.0f} dBFS"
        reading = f"{reading:>9}"
        return label, reading, max(4, self.size.width - len(label) - len(reading) - 1)

    def _shown(self) -> tuple[int, int, str]:
        """(filled cells, peak cell or -1, reading): everything that decides the picture."""
        _, reading, width = self._layout()
        filled = round(bar_fraction(self.rms_dbfs) * width)
        peak_at = min(width - 1, round(bar_fraction(self.peak_dbfs) * width))
        if self.peak_dbfs <= FLOOR_DBFS or peak_at < filled:
            peak_at = -1
        return filled, peak_at, reading

    def render_line(self, y: int) -> Strip:
        # The line API: segments straight to the compositor. A `render()` returning Rich Text
        # is converted to Textual content on every repaint, up to METER_HZ times a second.
        width, base = self.size.width, self.rich_style
        if y:
            return Strip.blank(width, base)
        shown = self._painted = self._shown()
        key = (shown, width, base)
        if key != self._strip_key:
            self._strip = self.paint(shown, base).adjust_cell_length(width, base)
            self._strip_key = key
        return self._strip

    def paint(self, shown: tuple[int, int, str], base: Style) -> Strip:
        """The meter's line: label, bar in its colour zones with the peak mark, reading."""
        label, reading, width = self._layout()
        filled, peak_at, _ = shown
        dim = base + DIM
        segments = [Segment(label, base + BOLD)]
        start = 0
        for limit, colour in ZONES:
            stop = min(width, math.ceil(limit * width))
            lit_end = max(start, min(stop, filled))
            lit = base + ZONE_STYLES[colour]
            segments.append(Segment("█" * (lit_end - start), lit))
            if lit_end <= peak_at < stop:
                segments += [Segment("·" * (peak_at - lit_end), dim), Segment("▏", lit),
                             Segment("·" * (stop - peak_at - 1), dim)]
            else:
                segments.append(Segment("·" * (stop - lit_end), dim))
            start = stop
        segments.append(Segment(" " + reading, base))
        return Strip([segment for segment in segments if segment.text])


class MutedSpeechDetector:
    """True once the mic reads louder than `threshold_dbfs` for `hold_s` while muted.

    The session measures the mic while muted exactly so that we can say this.
    """

    def __init__(self, threshold_dbfs: float = -40.0, hold_s: float = 0.3) -> None:
        self._threshold = threshold_dbfs
        self._hold_s = hold_s
        self._loud_since: float | None = None

    def update(self, rms_dbfs: float, muted: bool, now: float) -> bool:
        if not muted or rms_dbfs <= self._threshold:
            self._loud_since = None
            return False
        if self._loud_since is None:
            self._loud_since = now
        return now - self._loud_since >= self._hold_s
