"""What the phases of one benchmark run share: the stack, the report, the options, the log."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

from tests.bench.profile import Profile
from tests.bench.report import Report
from tests.bench.stack import BenchStack, Code

# The code before this stop's work (its base commit): the before/after figures.
BEFORE_COMMIT = "5a34ef7"


@dataclass
class Bench:
    stack: BenchStack
    report: Report
    args: argparse.Namespace
    # (subject, "before" | "after") → its profile, once the profile phase has run; the cost
    # phase's explanations quote them.
    profiles: dict[tuple[str, str], Profile] = field(default_factory=dict)

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    @property
    def before(self) -> Code:
        return self.stack.checkout(BEFORE_COMMIT)
