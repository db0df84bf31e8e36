"""The profile phase: where the headless and TUI calls' CPU goes, now and before this change."""

from __future__ import annotations

from tests.bench import profile, subjects
from tests.bench.bench import BEFORE_COMMIT, Bench
from tests.bench.stack import CURRENT

TITLE = "Where the CPU goes"
# Interleaved, so the before and after of one subject are next to each other in time.
ORDER = (("headless", "after"), ("headless", "before"), ("TUI", "after"), ("TUI", "before"))


def run(bench: Bench) -> None:
    stack, seconds = bench.stack, bench.args.profile_seconds
    mic = subjects.talk_wav(stack.dir / "profile-talk.wav", seconds + 30)
    for name, when in ORDER:
        code = bench.before if when == "before" else CURRENT
        subject, player = subjects.in_call(stack, name, seconds + 60, mic, code=code)
        try:
            bench.profiles[name, when] = profile.profile(subject.pid, seconds)
        finally:
            player.terminate()
            subject.stop()
        found = bench.profiles[name, when]
        bench.log(f"profile {name} {when}: {found.total:.1f} % of one core, {found.samples} Python samples")
    lines = [
        f"Per-thread CPU (from /proc) and a py-spy sample of the Python threads ({profile.RATE_HZ} Hz, "
        f"waiting samples dropped), over {seconds:.0f} s of a call with speech-like audio into the "
        "microphone, like the cost phase: the headless and TUI calls of this tree (after) and of "
        f"{BEFORE_COMMIT}, the code before this change (before: a git worktree, run with the same venv "
        "as `python -m wespoke_tui`). The Python side's CPU (the threads that carry the process's own "
        "name) is divided among what its samples were doing (tests/bench/profile.py's categories). "
        "py-spy reads the subject's memory without stopping it (`--nonblocking`); its own CPU is not "
        "in these figures.",
        "",
    ]
    for name in ("headless", "TUI"):
        before, after = bench.profiles[name, "before"], bench.profiles[name, "after"]
        lines += [f"### {name}: {before.total:.1f} % of one core before, {after.total:.1f} % after", ""]
        lines += profile.table(f"{name}, before ({BEFORE_COMMIT})", before) + [""]
        lines += profile.table(f"{name}, after (this tree)", after) + [""]
    bench.report.section(TITLE, lines)
