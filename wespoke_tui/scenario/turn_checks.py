"""The checks of what the runner measured beyond the words: response time, what the assistant
heard (word error rate), the barge-in's stop, a wait turn's speech. Each compares a measure with
the file's expectation; a measure the runner could not take (None) fails an expectation that needs
it, and says so.

(Stands in for scenario/checks.py's `expectation_failures`, written beside it; the wording is the
same, the two are to become one.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wespoke_tui.scenario.model import Action, Turn

if TYPE_CHECKING:
    from wespoke_tui.scenario.runner import TurnResult


def measured_failures(turn: Turn, result: TurnResult, *, ended: bool) -> list[str]:
    """Why the turn misses its expectations max_response_ms, max_wer, stops_within_ms, keeps_talking
    and speaks (nothing when it meets them, or has none). `ended`: the call ended during the turn."""
    expect = turn.expect
    failures: list[str] = []
    if expect.max_response_ms is not None:
        limit = expect.max_response_ms
        if result.response_ms is None:
            failures.append(f"expected an answer within {limit:.0f} ms; none was heard")
        elif result.response_ms > limit:
            failures.append(f"the answer was heard after {result.response_ms:.0f} ms; expected within {limit:.0f} ms")
    if expect.max_wer is not None:
        if result.wer is None:
            failures.append(f"expected the assistant to hear the words said (word error rate at most "
                            f"{expect.max_wer:.2f}); it sent no transcript of them")
        elif result.wer > expect.max_wer:
            heard = f'"{result.heard}"' if result.heard else "nothing"
            failures.append(f"the assistant heard {heard}: word error rate {result.wer:.2f}, expected at most "
                            f"{expect.max_wer:.2f}")
    if expect.stops_within_ms is not None:
        limit = expect.stops_within_ms
        if result.stop_ms is None:
            failures.append(f"expected the assistant to stop within {limit:.0f} ms of the interruption; "
                            "the assistant did not stop")
        elif result.stop_ms > limit:
            failures.append(f"the assistant stopped after {result.stop_ms:.0f} ms; expected within {limit:.0f} ms")
    if expect.keeps_talking is True and result.stop_ms is not None:
        failures.append(f"expected the assistant to keep talking through the interruption; it stopped after "
                        f"{result.stop_ms:.0f} ms")
    if expect.keeps_talking is False and result.stop_ms is None:
        failures.append("expected the assistant to stop at the interruption; the assistant did not stop")
    if expect.speaks is not None and turn.action is Action.WAIT:
        said = " ".join(result.said.split())
        sound = result.answered_at is not None
        wait = f"{turn.wait_s:g} s " if turn.wait_s is not None else ""
        if expect.speaks and not (said or sound):
            why = " (the call ended during it)" if ended else ""
            failures.append(f"expected the assistant to speak during the {wait}wait; it said nothing{why}")
        elif not expect.speaks and (said or sound):
            what = f'it said "{said}"' if said else "its sound was heard"
            failures.append(f"expected the assistant to stay quiet during the {wait}wait; {what}")
    return failures
