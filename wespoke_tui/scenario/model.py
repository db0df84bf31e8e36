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

Only the standard library: the file is checked before anything heavier is imported.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TURN_TIMEOUT_S = 20.0
DEFAULT_GREETING_TIMEOUT_S = 20.0
TOP_KEYS = {"name", "greeting_timeout", "assistant", "turns"}
ASSISTANT_KEYS = {"first_message", "system_prompt", "variables", "metadata", "overrides"}
TURN_KEYS = {"say", "say_wav", "type", "timeout", "expect"}
EXPECT_KEYS = {"contains", "not_contains", "regex", "tool", "call_ends"}
ACTIONS = ("say", "say_wav", "type")


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


@dataclass(frozen=True, slots=True)
class Turn:
    number: int
    line: int | None
    action: str  # say | say_wav | type
    text: str | None = None  # what is said or typed
    wav: Path | None = None
    timeout_s: float = DEFAULT_TURN_TIMEOUT_S
    expect: Expectations = field(default_factory=Expectations)

    @property
    def title(self) -> str:
        what = self.wav.name if self.wav is not None else (self.text or "")
        return f"turn {self.number}: {self.action} {what!r}"


@dataclass(frozen=True, slots=True)
class Scenario:
    path: Path
    name: str
    turns: tuple[Turn, ...]
    greeting_timeout_s: float = DEFAULT_GREETING_TIMEOUT_S
    first_message: str | None = None
    system_prompt: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def speaks(self) -> bool:
        return any(turn.action == "say" for turn in self.turns)


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
    turns = tuple(_turn(path, lines, i, t) for i, t in enumerate(turns_doc, 1))
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
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise ScenarioError(path, lines.top("name"), "'name' must be a non-empty string")
    return Scenario(
        path=path,
        name=name,
        turns=turns,
        greeting_timeout_s=_seconds(doc, "greeting_timeout", DEFAULT_GREETING_TIMEOUT_S, path, lines.top, allow_zero=True),
        first_message=assistant.get("first_message"),
        system_prompt=assistant.get("system_prompt"),
        variables=dict(variables),
        metadata=dict(assistant.get("metadata", {})),
        overrides=dict(assistant.get("overrides", {})),
    )


def _turn(path: Path, lines: _Lines, number: int, doc: Any) -> Turn:
    where = lines.turn(number)
    if not isinstance(doc, dict):
        raise ScenarioError(path, where, f"turn {number} must be a table")

    def line_of(key: str) -> int | None:
        return lines.turn_key(number, key) or where

    _only(doc, TURN_KEYS, path, line_of, f"turn {number}: ")
    actions = [a for a in ACTIONS if a in doc]
    if len(actions) != 1:
        raise ScenarioError(path, where, f"turn {number} needs exactly one of say, say_wav, type "
                                         f"(has {', '.join(actions) or 'none'})")
    action = actions[0]
    value = doc[action]
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(path, line_of(action), f"turn {number}: '{action}' must be a non-empty string")
    wav = None
    if action == "say_wav":
        wav = (path.parent / value).resolve() if not Path(value).is_absolute() else Path(value)
        if not wav.is_file():
            raise ScenarioError(path, line_of(action), f"turn {number}: no such WAV file: {wav}")
    expect_doc = doc.get("expect", {})
    if not isinstance(expect_doc, dict):
        raise ScenarioError(path, line_of("expect"), f"turn {number}: 'expect' must be a table")
    _only(expect_doc, EXPECT_KEYS, path, lambda k: lines.turn_key(number, f"expect.{k}") or line_of("expect"),
          f"turn {number}: ", "expect.")
    texts: dict[str, tuple[str, ...]] = {}
    for key in ("contains", "not_contains", "regex", "tool"):
        raw = expect_doc.get(key, ())
        items = (raw,) if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) and i for i in items):
            raise ScenarioError(path, lines.turn_key(number, f"expect.{key}") or line_of("expect"),
                                f"turn {number}: 'expect.{key}' must be a string or a list of strings")
        texts[key] = tuple(items)
    for pattern in texts["regex"]:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ScenarioError(path, lines.turn_key(number, "expect.regex") or line_of("expect"),
                                f"turn {number}: 'expect.regex' {pattern!r} is not a regular expression: {exc}") from None
    call_ends = expect_doc.get("call_ends")
    if call_ends is not None and not isinstance(call_ends, bool):
        raise ScenarioError(path, lines.turn_key(number, "expect.call_ends") or line_of("expect"),
                            f"turn {number}: 'expect.call_ends' must be true or false")
    return Turn(
        number=number,
        line=where,
        action=action,
        text=value if action != "say_wav" else None,
        wav=wav,
        timeout_s=_seconds(doc, "timeout", DEFAULT_TURN_TIMEOUT_S, path, line_of, label=f"turn {number}: "),
        expect=Expectations(texts["contains"], texts["not_contains"], texts["regex"], texts["tool"], call_ends),
    )


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


class _Lines:
    """Where keys are in the file: TOML parsers give values, not lines, so the text is scanned."""

    def __init__(self, text: str) -> None:
        self._top: dict[str, int] = {}
        self._turns: list[int] = []
        self._turn_keys: list[dict[str, int]] = []
        table = ""
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if line.startswith("[[") and line.rstrip().endswith("]]"):
                table = line[2:-2].strip()
                if table == "turns":
                    self._turns.append(number)
                    self._turn_keys.append({})
                continue
            if line.startswith("[") and line.endswith("]"):
                table = line[1:-1].strip()
                if table.startswith("turns."):
                    continue
                self._top.setdefault(table, number)
                continue
            match = re.match(r"([A-Za-z0-9_.\"-]+)\s*=", line)
            if not match:
                continue
            key = match.group(1).replace('"', "")
            if table == "turns" and self._turn_keys:
                self._turn_keys[-1].setdefault(key, number)
            elif table.startswith("turns.") and self._turn_keys:
                self._turn_keys[-1].setdefault(f"{table[len('turns.'):]}.{key}", number)
            else:
                self._top.setdefault(key.split(".")[-1], number)

    def top(self, key: str) -> int | None:
        return self._top.get(key)

    def turn(self, number: int) -> int | None:
        return self._turns[number - 1] if 0 < number <= len(self._turns) else None

    def turn_key(self, number: int, key: str) -> int | None:
        if not 0 < number <= len(self._turn_keys):
            return None
        keys = self._turn_keys[number - 1]
        return keys.get(key) or keys.get(key.split(".")[0])
