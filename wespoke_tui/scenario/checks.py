"""The checks of a turn beyond its words: response time, what the assistant heard (WER), barge-in,
wait turns, and the audio findings the scenario's `[gates] audio` makes failures.

The rule: each function returns the failures of one turn of one run as `Failure`s, strings that
also name the scenario key they are about (so a CI annotation points at the key's line); nothing
here measures, it only compares what the runner measured with what the file expects. A value the
runner could not measure (None) fails an expectation that needs it, with a message that says so.
`runner.check` covers the words (contains, regex, tool, call_ends); `failure_key` maps its
messages to their keys too.

Only the standard library; the runner's result type is imported for type checking alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from wespoke_tui.scenario.model import Action, AudioCheck, Gates, Turn

if TYPE_CHECKING:
    from wespoke_tui.scenario.audio_checks import AudioFinding
    from wespoke_tui.scenario.runner import TurnResult


class Failure(str):
    """A failure message that knows its scenario key ("expect.max_wer", "gates.audio", …)."""

    key: str | None

    def __new__(cls, text: str, key: str | None = None) -> Self:
        failure = super().__new__(cls, text)
        failure.key = key
        return failure


def expectation_failures(turn: Turn, result: TurnResult, *, ended: bool) -> list[str]:
    """Why the turn misses its expectations max_response_ms, max_wer, stops_within_ms, keeps_talking
    and speaks (nothing when it meets them, or has none). `ended`: the call ended during the turn.
    For a wait turn `result.said` is what the assistant said during the wait."""
    expect = turn.expect
    failures: list[str] = []
    if expect.max_response_ms is not None:
        limit = expect.max_response_ms
        if result.response_ms is None:
            failures.append(Failure(f"expected an answer within {limit:.0f} ms; none was heard",
                                    "expect.max_response_ms"))
        elif result.response_ms > limit:
            failures.append(Failure(f"the answer was heard after {result.response_ms:.0f} ms; expected within "
                                    f"{limit:.0f} ms", "expect.max_response_ms"))
    if expect.max_wer is not None:
        if result.wer is None:
            failures.append(Failure(f"expected the assistant to hear the words said (word error rate at most "
                                    f"{expect.max_wer:.2f}); it sent no transcript of them", "expect.max_wer"))
        elif result.wer > expect.max_wer:
            heard = f'"{result.heard}"' if result.heard else "nothing"
            failures.append(Failure(f"the assistant heard {heard}: word error rate {result.wer:.2f}, expected at "
                                    f"most {expect.max_wer:.2f}", "expect.max_wer"))
    if expect.stops_within_ms is not None:
        limit = expect.stops_within_ms
        if result.stop_ms is None:
            failures.append(Failure(f"expected the assistant to stop within {limit:.0f} ms of the interruption; "
                                    "the assistant did not stop", "expect.stops_within_ms"))
        elif result.stop_ms > limit:
            failures.append(Failure(f"the assistant stopped after {result.stop_ms:.0f} ms; expected within "
                                    f"{limit:.0f} ms", "expect.stops_within_ms"))
    if expect.keeps_talking is True and result.stop_ms is not None:
        failures.append(Failure(f"expected the assistant to keep talking through the interruption; it stopped "
                                f"after {result.stop_ms:.0f} ms", "expect.keeps_talking"))
    if expect.keeps_talking is False and result.stop_ms is None:
        failures.append(Failure("expected the assistant to stop at the interruption; the assistant did not stop",
                                "expect.keeps_talking"))
    if expect.speaks is not None and turn.action is Action.WAIT:
        said = " ".join(result.said.split())
        sound = result.answered_at is not None  # its voice at the player counts, words or not
        wait = f"{turn.wait_s:g} s " if turn.wait_s is not None else ""
        if expect.speaks and not (said or sound):
            why = " (the call ended during it)" if ended else ""
            failures.append(Failure(f"expected the assistant to speak during the {wait}wait; it said nothing{why}",
                                    "expect.speaks"))
        elif not expect.speaks and (said or sound):
            what = f'it said "{said}"' if said else "its sound was heard"
            failures.append(Failure(f"expected the assistant to stay quiet during the {wait}wait; {what}",
                                    "expect.speaks"))
    return failures


AUDIO_WORDING: dict[AudioCheck, str] = {
    AudioCheck.TALK_OVER: "both sides loud at once outside a barge-in",
    AudioCheck.DEAD_AIR: "dead air inside the answer",
    AudioCheck.MISSED_REPLY: "no answer heard in the recording",
    AudioCheck.LEVEL: "the answer's level is off",
}
AUDIO_UNITS: dict[AudioCheck, str] = {AudioCheck.TALK_OVER: " ms", AudioCheck.DEAD_AIR: " ms"}


def describe_finding(finding: AudioFinding) -> str:
    """One finding in words: 'dead_air: dead air inside the answer (2300 ms at 12.4 s)'."""
    value = f"{finding.value:.0f}" if finding.check in AUDIO_UNITS else f"{finding.value:g}"
    where = f" at {finding.at_s:.1f} s" if finding.at_s is not None else ""
    return f"{finding.check}: {AUDIO_WORDING[finding.check]} ({value}{AUDIO_UNITS.get(finding.check, '')}{where})"


def audio_failures(gates: Gates, result: TurnResult) -> list[str]:
    """The turn's audio findings of the kinds `gates.audio` lists, as failures (others only report)."""
    return [Failure(f"audio check {describe_finding(f)}", "gates.audio") for f in result.audio
            if f.check in gates.audio]


# runner.check's messages (plain strings) by their opening words → the key they are about.
_CHECK_KEYS = (
    ('expected no "', "expect.not_contains"),
    ('expected "', "expect.contains"),
    ("expected a match of /", "expect.regex"),
    ('expected the tool "', "expect.tool"),
    ("expected the call to", "expect.call_ends"),
    ("no answer within", "timeout"),
)


def failure_key(message: str) -> str | None:
    """The scenario key a failure is about: a `Failure`'s own, else read from runner.check's wording;
    None when unknown (the turn's line stands for it)."""
    if isinstance(message, Failure):
        return message.key
    return next((key for opening, key in _CHECK_KEYS if message.startswith(opening)), None)
