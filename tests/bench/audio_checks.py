"""`python -m tests.bench.audio_checks`: how long a scenario run's audio checks take on a
10-minute call (tests/support/recordings.py's: 60 turns, each answer with 2.4 s of dead air).

    .venv/bin/python -m tests.bench.audio_checks [--runs 5]

Wall and CPU time of `check_recording`, file read included, after one warm-up run (the first
reads the file from the disk). The checks run after the call, in a worker thread; the budget is
well under a second for ten minutes. Needs no stack.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.bench.stats import Sample
from tests.support.recordings import ten_minute_call
from wespoke_tui.scenario.audio_checks import TurnSpan, check_recording


def measure(runs: int) -> tuple[Sample, Sample]:
    spans = [TurnSpan(n + 1, n * 10.0, n * 10.0 + 2.0) for n in range(60)]
    with tempfile.TemporaryDirectory() as directory:
        wav = ten_minute_call().write(Path(directory))
        check_recording(wav, spans)  # warm-up
        walls, cpus = [], []
        for _ in range(runs):
            wall, cpu = time.perf_counter(), time.process_time()
            audio = check_recording(wav, spans)
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
            if len(audio.turns) != 60:
                raise SystemExit(f"the checks found {len(audio.turns)} turns, not 60")
    return Sample.of(walls, "ms"), Sample.of(cpus, "ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.audio_checks", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    wall, cpu = measure(args.runs)
    print(f"audio checks of a 10-minute call: wall {wall.text()}, CPU {cpu.text()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
