"""`python -m tests.bench.ab`: two or more commits as subjects on one stack, call by call.

    .venv/bin/python -m tests.bench.ab [--rounds 3] [--seconds 30] [--subject headless|TUI] [--no-round-trip] C1 C2 ...

Each round measures every commit's mouth-to-ear (benchmark 2's clicks) and then a cost window
(benchmark 3), the order reversed every other round so that drifting load hits all alike. How a
change was weighed before it was kept (BENCHMARKS.md, "This stop's changes").
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable

from tests.bench import roundtrip, subjects
from tests.bench.stack import BenchStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.ab", description=__doc__.splitlines()[0])
    parser.add_argument("commits", nargs="+")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0, help="cost window per call (0: none)")
    parser.add_argument("--subject", default="headless", choices=("headless", "TUI"))
    parser.add_argument("--round-trip", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    with BenchStack() as stack:
        codes = {c: stack.checkout(c) for c in args.commits}
        mic = subjects.talk_wav(stack.dir / "talk.wav", args.seconds + 30)
        cpu: dict[str, list[float]] = {c: [] for c in args.commits}
        delays: dict[str, list[float]] = {c: [] for c in args.commits}
        bus = roundtrip.ClickBus(stack)
        try:
            for n in range(args.rounds):
                order = args.commits if n % 2 == 0 else args.commits[::-1]
                for commit in order if args.round_trip else ():
                    def start(commit: str = commit) -> Callable[[], None]:
                        return subjects.start(stack, args.subject, 120, code=codes[commit]).stop

                    measured = roundtrip.measure(stack, bus, start, f"{commit}-{n}")
                    delays[commit].extend(measured.delays_ms)
                    print(f"round trip {commit}: {[round(d) for d in measured.delays_ms]} ms", flush=True)
                for commit in order if args.seconds > 0 else ():
                    window = subjects.cost(stack, args.subject, args.seconds, mic, code=codes[commit]).window
                    cpu[commit].append(window.cpu_percent)
                    print(f"cost {commit}: {window.cpu_percent:.1f} %", flush=True)
        finally:
            bus.close()
    for commit in args.commits:
        c, d = cpu[commit], delays[commit]
        print(f"{commit} ({args.subject}): CPU {statistics.median(c):.1f} % ({min(c):.1f}–{max(c):.1f}) " if c else
              f"{commit} ({args.subject}): ", end="")
        print(f"mouth-to-ear {statistics.median(d):.0f} ms ({min(d):.0f}–{max(d):.0f}, n={len(d)})" if d else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
