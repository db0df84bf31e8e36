"""A scenario file (TOML) and its validation, with the line of every mistake, before any call.

    name = "Order status"                  # optional; the file's name otherwise
    greeting_timeout = 20                  # wait this long for the greeting before turn 1 (0: do not)

    [assistant]                            # optional: as --first-message, --var, --metadata, --override
    first_message = "Hello!"
    variables = { name = "Ayşe" }
    metadata = { plan = "gold" }
    overrides = { recordingEnabled = false }

    [[turns]]
    say = "Where is my order?"             # spoken with espeak-ng; or say_wav = "hello.wav"; or type = "…"
    timeout = 15                           # how long to wait for the answer (default 20 s)
    expect.contains = ["order"]            # each in the assistant's words of this turn (case-insensitive)
    expect.not_contains = "sorry"
    expect.regex = "order number \\d+"
    expect.tool = "lookup_order"           # a tool event with this name during the turn
    expect.call_ends = true                # the assistant ends the call during the turn
    expect.max_response_ms = 1500          # the answer's first sound at most this long after the turn
    expect.max_wer = 0.2                   # the assistant heard the words said (word error rate at most)
    lang = "tr"                            # this turn spoken with the Turkish voice (or at the top level)

    [[turns]]                              # a barge-in: spoken into the answer to the turn before
    say = "Wait, stop"
    interrupt_after_ms = 800               # after the answer's first sound at the player
    expect.stops_within_ms = 600           # its answer falls silent within this of the caller's speech
    # or: say_wav = "cough.wav" and expect.keeps_talking = true (it must not stop)

    [[turns]]                              # a silence turn: the caller says nothing for 8 s
    wait = 8
    expect.speaks = true                   # the assistant speaks meanwhile (or false: it stays quiet)

    [gates]                                # over all runs (--repeat N): a miss fails the run
    p90_response_ms = 1500                 # also p50_response_ms, p95_response_ms
    min_pass_rate = 0.9                    # runs that passed, 0 to 1
    max_wer = 0.25                         # the mean word error rate of the spoken turns
    audio = ["talk_over", "dead_air", "missed_reply", "level"]  # audio checks that fail a turn

Only the standard library: the file is checked before anything heavier is imported.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from wespoke_tui.scenario.lines import KeyLines as _Lines

DEFAULT_TURN_TIMEOUT_S = 20.0
DEFAULT_GREETING_TIMEOUT_S = 20.0
TOP_KEYS = {"name", "greeting_timeout", "lang", "assistant", "turns", "gates"}
ASSISTANT_KEYS = {"first_message", "system_prompt", "variables", "metadata", "overrides"}
TURN_KEYS = {"say", "say_wav", "type", "wait", "timeout", "lang", "interrupt_after_ms", "expect"}
EXPECT_KEYS = {"contains", "not_contains", "regex", "tool", "call_ends", "max_response_ms", "max_wer",
               "stops_within_ms", "keeps_talking", "speaks"}
GATE_KEYS = {"p50_response_ms", "p90_response_ms", "p95_response_ms", "min_pass_rate", "max_wer", "audio"}
ACTIONS = ("say", "say_wav", "type", "wait")
LANGS = ("en", "tr")
MAX_MS = 600_000


class Action(StrEnum):
    """What the caller does in a turn."""

    SAY = "say"  # text spoken with espeak-ng
    SAY_WAV = "say_wav"  # a WAV file played into the microphone
    TYPE = "type"  # text sent over the call's chat
    WAIT = "wait"  # nothing, for `wait_s`


class AudioCheck(StrEnum):
    """What the stereo recording of a run is checked for, per turn (scenario/audio_checks.py)."""

    TALK_OVER = "talk_over"  # both sides loud at once outside a barge-in turn
    DEAD_AIR = "dead_air"  # a gap over 2 s inside an answer
    MISSED_REPLY = "missed_reply"  # a spoken turn with no answer heard
    LEVEL = "level"  # an answer too quiet or clipped


class ScenarioError(Exception):
    """A mistake in a scenario file: where (file and line) and what."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        super().__init__(f"{path}{f':{line}' if line else ''}: {message}")
        self.path, self.line, self.message = path, line, message


@dataclass(frozen=True, slots=True)
class Expectations:
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    tool: tuple[str, ...] = ()
    call_ends: bool | None = None
    max_response_ms: float | None = None
    max_wer: float | None = None  # 0..1
    stops_within_ms: float | None = None  # barge-in turns only
    keeps_talking: bool | None = None  # barge-in turns only
    speaks: bool | None = None  # wait turns only


@dataclass(frozen=True, slots=True)
class Turn:
    number: int
    line: int | None
    action: Action
    text: str | None = None  # what is said or typed
    wav: Path | None = None
    wait_s: float | None = None  # wait turns: how long the caller says nothing
    lang: str | None = None  # the voice of a `say` turn; None: the scenario's, else the user's language
    interrupt_after_ms: float | None = None  # a barge-in: spoken this long after the answer's first sound
    timeout_s: float = DEFAULT_TURN_TIMEOUT_S
    expect: Expectations = field(default_factory=Expectations)
    lines: dict[str, int] = field(default_factory=dict)  # key (e.g. "expect.max_wer") → its line

    @property
    def title(self) -> str:
        if self.action is Action.WAIT:
            return f"turn {self.number}: wait {self.wait_s:g} s"
        what = self.wav.name if self.wav is not None else (self.text or "")
        return f"turn {self.number}: {self.action} {what!r}"

    @property
    def spoken(self) -> bool:
        return self.action in (Action.SAY, Action.SAY_WAV)

    @property
    def barge_in(self) -> bool:
        return self.interrupt_after_ms is not None

    def line_of(self, key: str) -> int | None:
        """The line of `key` in this turn (the turn's own line when the key has none)."""
        return self.lines.get(key) or self.line


@dataclass(frozen=True, slots=True)
class Gates:
    """Limits over all runs of a scenario; a miss fails the run (exit 1)."""

    p50_response_ms: float | None = None
    p90_response_ms: float | None = None
    p95_response_ms: float | None = None
    min_pass_rate: float | None = None  # 0..1
    max_wer: float | None = None  # the mean over the spoken turns, 0..1
    audio: tuple[AudioCheck, ...] = ()  # audio checks whose findings fail a turn
    lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scenario:
    path: Path
    name: str
    turns: tuple[Turn, ...]
    greeting_timeout_s: float = DEFAULT_GREETING_TIMEOUT_S
    lang: str | None = None  # the voice of its `say` turns; None: the user's language (--lang)
    gates: Gates = field(default_factory=Gates)
    first_message: str | None = None
    system_prompt: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def speaks(self) -> bool:
        return any(turn.action is Action.SAY for turn in self.turns)

    def voice(self, turn: Turn, user_lang: str) -> str:
        """The language a `say` turn is spoken in: the turn's, the scenario's, else the user's."""
        return turn.lang or self.lang or user_lang


def load_scenario(path: Path) -> Scenario:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(path, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
        doc = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ScenarioError(path, None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+)", str(exc))
        raise ScenarioError(path, int(match.group(1)) if match else None, f"invalid TOML: {exc}") from None
    lines = _Lines(text)
    _only(doc, TOP_KEYS, path, lines.top, "")
    turns_doc = doc.get("turns")
    if not isinstance(turns_doc, list) or not turns_doc:
        raise ScenarioError(path, None, "no turns: add at least one [[turns]] table")
    lang = _lang(doc, None, path, lines.top("lang"), "")
    turns = tuple(_turn(path, lines, i, t, lang) for i, t in enumerate(turns_doc, 1))
    assistant = doc.get("assistant", {})
    if not isinstance(assistant, dict):
        raise ScenarioError(path, lines.top("assistant"), "'assistant' must be a table")
    _only(assistant, ASSISTANT_KEYS, path, lines.top, "", "assistant.")
    for key in ("variables", "metadata", "overrides"):
        if not isinstance(assistant.get(key, {}), dict):
            raise ScenarioError(path, lines.top(key), f"'assistant.{key}' must be a table")
    variables = assistant.get("variables", {})
    if any(not isinstance(v, str) for v in variables.values()):
        raise ScenarioError(path, lines.top("variables"), "'assistant.variables' values must be strings")
    for key in ("first_message", "system_prompt"):
        if key in assistant and not (isinstance(assistant[key], str) and assistant[key].strip()):
            raise ScenarioError(path, lines.top(key), f"'assistant.{key}' must be a non-empty string")
    greeting_timeout = _seconds(doc, "greeting_timeout", DEFAULT_GREETING_TIMEOUT_S, path, lines.top, allow_zero=True)
    if turns[0].barge_in and greeting_timeout == 0:
        raise ScenarioError(path, turns[0].line_of("interrupt_after_ms"),
                            "turn 1: 'interrupt_after_ms' speaks into the greeting, and 'greeting_timeout = 0' "
                            "waits for none")
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise ScenarioError(path, lines.top("name"), "'name' must be a non-empty string")
    return Scenario(
        path=path,
        name=name,
        turns=turns,
        greeting_timeout_s=greeting_timeout,
        lang=lang,
        gates=_gates(doc.get("gates", {}), path, lines),
        first_message=assistant.get("first_message"),
        system_prompt=assistant.get("system_prompt"),
        variables=dict(variables),
        metadata=dict(assistant.get("metadata", {})),
        overrides=dict(assistant.get("overrides", {})),
    )


def _turn(path: Path, lines: _Lines, number: int, doc: Any, scenario_lang: str | None) -> Turn:
    where = lines.turn(number)
    if not isinstance(doc, dict):
        raise ScenarioError(path, where, f"turn {number} must be a table")

    def line_of(key: str) -> int | None:
        return lines.turn_key(number, key) or where

    def fail(key: str, message: str) -> ScenarioError:
        return ScenarioError(path, line_of(key), f"turn {number}: {message}")

    _only(doc, TURN_KEYS, path, line_of, f"turn {number}: ")
    actions = [a for a in ACTIONS if a in doc]
    if len(actions) != 1:
        raise ScenarioError(path, where, f"turn {number} needs exactly one of say, say_wav, type, wait "
                                         f"(has {', '.join(actions) or 'none'})")
    action = Action(actions[0])
    value = doc[action]
    wav = None
    wait_s = None
    if action is Action.WAIT:
        wait_s = _seconds(doc, "wait", 0.0, path, line_of, label=f"turn {number}: ")
    elif not isinstance(value, str) or not value.strip():
        raise fail(action, f"'{action}' must be a non-empty string")
    if action is Action.SAY_WAV:
        wav = (path.parent / value).resolve() if not Path(value).is_absolute() else Path(value)
        if not wav.is_file():
            raise fail(action, f"no such WAV file: {wav}")
    lang = _lang(doc, scenario_lang, path, line_of("lang"), f"turn {number}: ")
    interrupt = _millis(doc, "interrupt_after_ms", fail, allow_zero=True)
    if interrupt is not None and action not in (Action.SAY, Action.SAY_WAV):
        raise fail("interrupt_after_ms", "'interrupt_after_ms' is for spoken turns (say, say_wav)")
    expect_doc = doc.get("expect", {})
    if not isinstance(expect_doc, dict):
        raise fail("expect", "'expect' must be a table")

    def expect_line(key: str) -> int | None:
        return lines.turn_key(number, f"expect.{key}") or line_of("expect")

    def expect_fail(key: str, message: str) -> ScenarioError:
        return ScenarioError(path, expect_line(key), f"turn {number}: {message}")

    _only(expect_doc, EXPECT_KEYS, path, expect_line, f"turn {number}: ", "expect.")
    texts: dict[str, tuple[str, ...]] = {}
    for key in ("contains", "not_contains", "regex", "tool"):
        raw = expect_doc.get(key, ())
        items = (raw,) if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) and i for i in items):
            raise expect_fail(key, f"'expect.{key}' must be a string or a list of strings")
        texts[key] = tuple(items)
    for pattern in texts["regex"]:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise expect_fail("regex", f"'expect.{'regex'}' {pattern!r} is not a regular expression: {exc}") from None
    flags: dict[str, bool | None] = {}
    for key in ("call_ends", "keeps_talking", "speaks"):
        flag = expect_doc.get(key)
        if flag is not None and not isinstance(flag, bool):
            raise expect_fail(key, f"'expect.{key}' must be true or false")
        flags[key] = flag
    max_wer = expect_doc.get("max_wer")
    if max_wer is not None and not _ratio(max_wer):
        raise expect_fail("max_wer", "'expect.max_wer' must be a number from 0 to 1 (0.2 = one word in five wrong)")
    expect = Expectations(
        texts["contains"], texts["not_contains"], texts["regex"], texts["tool"], flags["call_ends"],
        max_response_ms=_millis(expect_doc, "max_response_ms", expect_fail, prefix="expect."),
        max_wer=None if max_wer is None else float(max_wer),
        stops_within_ms=_millis(expect_doc, "stops_within_ms", expect_fail, prefix="expect."),
        keeps_talking=flags["keeps_talking"],
        speaks=flags["speaks"],
    )
    barge_keys = [k for k in ("stops_within_ms", "keeps_talking") if expect_doc.get(k) is not None]
    if barge_keys and interrupt is None:
        raise expect_fail(barge_keys[0], f"'expect.{barge_keys[0]}' is for barge-in turns: add 'interrupt_after_ms'")
    if len(barge_keys) == 2:
        raise expect_fail("keeps_talking", "'expect.stops_within_ms' and 'expect.keeps_talking' contradict each other")
    if expect.speaks is not None and action is not Action.WAIT:
        raise expect_fail("speaks", "'expect.speaks' is for wait turns")
    if expect.max_wer is not None and action is not Action.SAY:
        raise expect_fail("max_wer", "'expect.max_wer' compares what a 'say' turn said with what the assistant heard")
    keys = {key: line for key in TURN_KEYS if (line := lines.turn_key(number, key))}
    keys.update({f"expect.{key}": line for key in EXPECT_KEYS if (line := lines.turn_key(number, f"expect.{key}"))})
    return Turn(
        number=number,
        line=where,
        action=action,
        text=value if action in (Action.SAY, Action.TYPE) else None,
        wav=wav,
        wait_s=wait_s,
        lang=lang,
        interrupt_after_ms=interrupt,
        timeout_s=_seconds(doc, "timeout", DEFAULT_TURN_TIMEOUT_S, path, line_of, label=f"turn {number}: "),
        expect=expect,
        lines=keys,
    )


def _gates(doc: Any, path: Path, lines: _Lines) -> Gates:
    if not isinstance(doc, dict):
        raise ScenarioError(path, lines.top("gates"), "'gates' must be a table")

    def line_of(key: str) -> int | None:
        return lines.top(key) or lines.top("gates")

    def fail(key: str, message: str) -> ScenarioError:
        return ScenarioError(path, line_of(key), message)

    _only(doc, GATE_KEYS, path, line_of, "", "gates.")
    for key in ("min_pass_rate", "max_wer"):
        if key in doc and not _ratio(doc[key]):
            raise fail(key, f"'gates.{key}' must be a number from 0 to 1")
    audio = doc.get("audio", [])
    names = ", ".join(c.value for c in AudioCheck)
    if not isinstance(audio, list) or not all(isinstance(a, str) and a in AudioCheck._value2member_map_ for a in audio):
        raise fail("audio", f"'gates.audio' must be a list of audio checks ({names})")
    return Gates(
        p50_response_ms=_millis(doc, "p50_response_ms", fail, prefix="gates."),
        p90_response_ms=_millis(doc, "p90_response_ms", fail, prefix="gates."),
        p95_response_ms=_millis(doc, "p95_response_ms", fail, prefix="gates."),
        min_pass_rate=None if "min_pass_rate" not in doc else float(doc["min_pass_rate"]),
        max_wer=None if "max_wer" not in doc else float(doc["max_wer"]),
        audio=tuple(AudioCheck(a) for a in dict.fromkeys(audio)),
        lines={key: line for key in GATE_KEYS if key in doc and (line := line_of(key))},
    )


def _ratio(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def _millis(doc: dict[str, Any], key: str, fail: Any, *, prefix: str = "", allow_zero: bool = False) -> float | None:
    """A number of milliseconds (more than 0, or 0 too) up to 10 minutes; None when absent."""
    if key not in doc:
        return None
    value = doc[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok or value > MAX_MS:
        raise fail(key, f"'{prefix}{key}' must be a number of milliseconds, {'0' if allow_zero else 'more than 0'} "
                        f"to {MAX_MS}")
    return float(value)


def _lang(doc: dict[str, Any], default: str | None, path: Path, line: int | None, label: str) -> str | None:
    if "lang" not in doc:
        return default
    if doc["lang"] not in LANGS:
        raise ScenarioError(path, line, f"{label}'lang' must be one of {', '.join(LANGS)}")
    return str(doc["lang"])


def _seconds(doc: dict[str, Any], key: str, default: float, path: Path, line_of: Any, *, label: str = "",
             allow_zero: bool = False) -> float:
    value = doc.get(key, default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok or value > 600:
        bound = "0" if allow_zero else "more than 0"
        raise ScenarioError(path, line_of(key), f"{label}'{key}' must be a number of seconds, {bound} to 600")
    return float(value)


def _only(doc: dict[str, Any], known: set[str], path: Path, line_of: Any, label: str, prefix: str = "") -> None:
    for key in doc:
        if key not in known:
            names = ", ".join(prefix + k for k in sorted(known))
            raise ScenarioError(path, line_of(key), f"{label}unknown key '{prefix}{key}' (known: {names})")
