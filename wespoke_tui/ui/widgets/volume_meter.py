"""A horizontal RMS meter in dBFS with a peak mark, and the "talking while muted" detector."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from wespoke_tui.audio.meter import SILENCE_DBFS

FLOOR_DBFS = -60.0
"""The left end of the bar; quieter reads as an empty bar."""


def bar_fraction(dbfs: float) -> float:
    return min(1.0, max(0.0, (dbfs - FLOOR_DBFS) / -FLOOR_DBFS))


class VolumeMeter(Widget):
    DEFAULT_CSS = """
    VolumeMeter { height: 1; width: 1fr; }
    """

    rms_dbfs: reactive[float] = reactive(SILENCE_DBFS)
    peak_dbfs: reactive[float] = reactive(SILENCE_DBFS)

    def __init__(self, label: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label = label

    def render(self) -> Text:
        label = f"{self.label:<10.10} "
        reading = "   — dBFS" if self.rms_dbfs <= SILENCE_DBFS else f"{self.rms_dbfs:4.0f} dBFS"
        reading = f"{reading:>9}"
        width = max(4, self.size.width - len(label) - len(reading) - 1)
        filled = round(bar_fraction(self.rms_dbfs) * width)
        peak_at = min(width - 1, round(bar_fraction(self.peak_dbfs) * width))
        cells = ["█" if i < filled else "·" for i in range(width)]
        if self.peak_dbfs > FLOOR_DBFS and peak_at >= filled:
            cells[peak_at] = "▏"
        bar = Text()
        for i, cell in enumerate(cells):
            fraction = i / width
            style = "green" if fraction < 0.7 else "yellow" if fraction < 0.9 else "red"
            bar.append(cell, style=style if cell != "·" else "dim")
        return Text.assemble((label, "bold"), bar, " ", reading)


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
