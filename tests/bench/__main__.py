"""`python -m tests.bench`: every benchmark, all subjects on one stack in one run, into BENCHMARKS.md.

    .venv/bin/python -m tests.bench [--quick] [--out BENCHMARKS.md] [--only setup,roundtrip,...]

Runs on the local stack and the PulseAudio rig it starts itself; needs livekit-server, pulseaudio,
paplay/parec and tmux (scripts/setup-and-test.sh installs them), and Chromium, the browser page
and py-spy (scripts/setup-bench.sh). A full run takes about 30 minutes (`--health-seconds` sets
the longest part); `--quick` is a short run for development (about 6 minutes).

Phases, in the order they run: setup, roundtrip, profile (before cost: the cost phase's
explanations quote the profiles), cost, health, startup, echo.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from tests.bench import phases_cost, phases_echo, phases_health, phases_profile, phases_roundtrip, phases_setup
from tests.bench.bench import Bench
from tests.bench.report import Report
from tests.bench.stack import REPO, BenchStack

PHASES: dict[str, Callable[[Bench], None]] = {
    "setup": phases_setup.run,
    "roundtrip": phases_roundtrip.run,
    "profile": phases_profile.run,
    "cost": phases_cost.run,
    "health": phases_health.health,
    "startup": phases_health.start_up,
    "echo": phases_echo.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--only", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    parser.add_argument("--quick", action="store_true", help="few runs and short windows (development)")
    parser.add_argument("--runs", type=int, default=5, help="call-setup runs per subject")
    parser.add_argument("--rt-runs", type=int, default=3, help="round-trip calls per subject and AEC setting")
    parser.add_argument("--rt-aec-off", action=argparse.BooleanOptionalAction, default=True,
                        help="also the round trip with AEC off (headless and browser)")
    parser.add_argument("--cost-seconds", type=float, default=60.0)
    parser.add_argument("--cost-rounds", type=int, default=2, help="cost windows per subject, the order reversed each round")
    parser.add_argument("--profile-seconds", type=float, default=30.0)
    parser.add_argument("--health-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.rt_runs = 2, 1
        args.cost_seconds, args.profile_seconds, args.health_seconds = 10.0, 8.0, 30.0
        args.cost_rounds = 1
    phases = [p for p in args.only.split(",") if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    command = "python -m tests.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    report = Report(command=command.strip())
    with BenchStack() as stack:
        bench = Bench(stack, report, args)
        for name, phase in PHASES.items():
            if name in phases:
                bench.log(f"== {name}")
                phase(bench)
    report.write(args.out)
    print(report.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
