"""`wespoke-tui test --chat`: the same scenario file over the text chat, the quick check for every
commit. The rule: a `say` turn is typed (its text), a `wait` turn waits; a `say_wav` turn has no
text and is refused with its line (exit 2); what only a voice call can measure — the barge-in's
cue and stop, what the assistant heard (WER), the recording's audio checks — is not checked, and
the run says so once. Response times are to the answer's first text.

Only the standard library, like the model.
"""

from __future__ import annotations

import dataclasses

from wespoke_tui.scenario.model import Action, Scenario, ScenarioError, Turn


def typed(scenario: Scenario) -> tuple[Scenario, list[str]]:
    """The scenario as a text chat runs it, and the voice-only keys it had (not checked)."""
    dropped: list[str] = []
    turns = []
    for turn in scenario.turns:
        if turn.action is Action.SAY_WAV:
            raise ScenarioError(scenario.path, turn.line_of("say_wav"),
                                f"turn {turn.number}: --chat types each turn, and a WAV has no text to type "
                                "(use 'say' with the words, or run without --chat)")
        turns.append(_typed_turn(turn, dropped))
    gates = scenario.gates
    if gates.audio:
        dropped.append("gates.audio")
    if gates.max_wer is not None:
        dropped.append("gates.max_wer")
    chat_gates = dataclasses.replace(gates, audio=(), max_wer=None) if gates.audio or gates.max_wer is not None \
        else gates
    return dataclasses.replace(scenario, turns=tuple(turns), gates=chat_gates), list(dict.fromkeys(dropped))


def _typed_turn(turn: Turn, dropped: list[str]) -> Turn:
    expect = turn.expect
    voice = {"interrupt_after_ms": turn.interrupt_after_ms, "expect.stops_within_ms": expect.stops_within_ms,
             "expect.keeps_talking": expect.keeps_talking, "expect.max_wer": expect.max_wer}
    dropped += [key for key, value in voice.items() if value is not None]
    action = Action.TYPE if turn.action is Action.SAY else turn.action
    return dataclasses.replace(
        turn, action=action, interrupt_after_ms=None,
        expect=dataclasses.replace(expect, stops_within_ms=None, keeps_talking=None, max_wer=None),
    )


def not_checked_note(dropped: list[str]) -> str:
    """The one line a chat run says first: what it is, and what it does not check."""
    note = "--chat: the scenario runs over the text chat (spoken turns typed, times to the first text)"
    if dropped:
        note += f"; not checked (a voice call measures them): {', '.join(dropped)}"
    return note
