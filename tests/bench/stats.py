"""Median and spread of repeated measurements: machines here are noisy, so every figure is a sample."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sample:
    """Several runs of one measurement, in one unit."""

    values: tuple[float, ...]
    unit: str

    @classmethod
    def of(cls, values: Sequence[float], unit: str) -> Sample:
        return cls(tuple(float(v) for v in values), unit)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def low(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def high(self) -> float:
        return max(self.values) if self.values else float("nan")

    def text(self, digits: int = 0) -> str:
        """`123 ms (110–140, n=5)`: median, then the range of the runs."""
        if not self.values:
            return "no data"
        if self.n == 1:
            return f"{self.median:.{digits}f} {self.unit} (n=1)"
        return f"{self.median:.{digits}f} {self.unit} ({self.low:.{digits}f}–{self.high:.{digits}f}, n={self.n})"


def ratio(app: Sample, baseline: Sample) -> float:
    """The headline: the app's median over the baseline's."""
    if not app.values or not baseline.values or baseline.median == 0:
        return float("nan")
    return app.median / baseline.median
