"""What a headless call says: text lines (or, with `--json`, records) on stdout, the user message
of each error on stderr, and the records in the `--transcript FILE` JSONL.

Text lines, in the user's language: each call state; the assistant's state ("assistant: thinking",
debounced, below); each final transcript line ("Assistant: …"); tool events; the call-ending
notice; "Call record deleted" after the call with `--delete-after`. The user message of every
non-fatal error goes to stderr at once; a fatal one is said once, by the runner, after the call.

Records, one JSON object a line, each with "type" and "timestamp" (epoch seconds, float: a
transcript item's own time when known, else when it came):
    {"type":"transcript","id","role","text","final":true}  final items only, each id once
    {"type":"state","of":"call","state":"connected"}        every call state change
    {"type":"state","of":"assistant","state":"thinking"}    every change of `lk.agent.state`
    {"type":"tool","phase","tool_name","tool_type","details"}
    {"type":"knowledge","sources":[…]}                      the assistant used its knowledge base
    {"type":"error","code","message","fatal"}               message: the user message
    {"type":"metrics", the fields of MetricsEvent, AudioHealth and CallQuality, null until first seen}
    {"type":"call_ending","reason","message"}
    {"type":"record_deleted","call_id"}                     after the call, with --delete-after
    {"type":"recording","active","path"}                    a recording (--record DIR) started or stopped
Metrics records come at most once a second, each with the latest values of both events (those
that came in the call's last second, after the last record, are not written). The
assistant's state lines are debounced, its records are not: a state is printed once it has held
for `ASSISTANT_STATE_HOLD_S` (LiveKit Agents' "thinking" often lasts ~0.1 s), never the same
state twice in a row, and the pending one is printed when the call ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from collections.abc import Callable
from typing import IO, Any, Generic, Protocol, TypeVar

from wespoke_tui.errors import CallError, Lang, describe
from wespoke_tui.events import (
    AgentState,
    AgentStateChanged,
    AudioHealth,
    CallEnding,
    CallQuality,
    CallRecordDeleted,
    CallState,
    ErrorCleared,
    ErrorEvent,
    KnowledgeUsed,
    MetricsEvent,
    ReconnectAttempt,
    RecordingChanged,
    StateChanged,
    ToolEvent,
    TranscriptItem,
)
from wespoke_tui.i18n import Texts, text
from wespoke_tui.logs import redact
from wespoke_tui.presenter import CallStatus, reduce, role_words, state_words, tool_words

ASSISTANT_STATE_HOLD_S = 0.25
METRICS_INTERVAL_S = 1.0
CALL_OVER = (CallState.ENDING, CallState.ENDED, CallState.FAILED)
_METRICS_FIELDS = tuple(
    name
    for event in (MetricsEvent, AudioHealth, CallQuality)
    for name in (f.name for f in dataclasses.fields(event))
)

T = TypeVar("T")


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """The part of the event loop the reporter uses, so tests can drive time by hand."""

    def time(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer: ...


class TrailingDebounce(Generic[T]):
    """Passes a value on once it has held for `hold_s`, and never the same value twice in a row.

    A new value restarts the hold; the same value again does not. `flush()` passes the pending
    value on at once (the call is over).
    """

    def __init__(self, hold_s: float, emit: Callable[[T], None], clock: Clock) -> None:
        self.hold_s = hold_s
        self._emit = emit
        self._clock = clock
        self._pending: T | None = None
        self._last: T | None = None
        self._timer: Timer | None = None

    def push(self, value: T) -> None:
        if value == self._pending:
            return
        self._cancel()
        self._pending = value
        self._timer = self._clock.call_later(self.hold_s, self.flush)

    def flush(self) -> None:
        self._cancel()
        value, self._pending = self._pending, None
        if value is None or value == self._last:
            return
        self._last = value
        self._emit(value)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Reporter:
    """Turns a call's events into lines and records; remembers how the call ended.

    `lines`: where text lines go (None with `--json`); `records`: where records go (the
    transcript file, and stdout with `--json`); `errors`: stderr.
    """

    def __init__(
        self,
        lang: Lang,
        *,
        lines: IO[str] | None,
        records: list[IO[str]],
        errors: IO[str],
        clock: Clock | None = None,
        wall: Callable[[], float] = time.time,
        chat: bool = False,
    ) -> None:
        """`chat`: the states are said as a chat's ("Chat open"), not a call's."""
        self._lang = lang
        self._chat = chat
        self._texts = Texts(lang)
        self._status = CallStatus(chat=chat)  # the call as the TUI would show it (wespoke_tui.presenter)
        self._lines = lines
        self._records = records
        self._errors = errors
        self._clock: Clock = clock if clock is not None else asyncio.get_running_loop()
        self._wall = wall
        self._final_ids: set[str] = set()
        self._assistant_state: AgentState | None = None
        self._assistant_lines: TrailingDebounce[AgentState] = TrailingDebounce(
            ASSISTANT_STATE_HOLD_S, self._say_assistant_state, self._clock
        )
        self._call_over = False
        self._metrics: dict[str, Any] = dict.fromkeys(_METRICS_FIELDS)
        self._metrics_written_at: float | None = None
        self._metrics_timer: Timer | None = None
        self.final_state: CallState | None = None
        self.error: CallError | None = None
        self.nonfatal_errors = 0
        self.state_changed = asyncio.Event()

    # ------------------------------------------------------------------ events

    @property
    def call_id(self) -> str | None:
        """Of the last call, once the API gave it."""
        return self._status.call_id or None

    def handle(self, event: Any) -> None:
        self._status = reduce(self._status, event, now=self._clock.time(), lang=self._lang)
        match event:
            case StateChanged():
                self._on_state(event)
            case ReconnectAttempt(attempt=attempt, max_attempts=max_attempts):
                self._say(text("state.reconnecting", self._lang, attempt=attempt, max=max_attempts))
            case AgentStateChanged(state=state):
                self._on_assistant_state(state)
            case TranscriptItem():
                self._on_transcript(event)
            case ToolEvent(phase=phase, tool_name=name):
                self._say(tool_words(phase, _one_line(name), self._texts))
                self._record("tool", event.timestamp, phase=phase, tool_name=name,
                             tool_type=event.tool_type, details=event.details)
            case KnowledgeUsed(sources=sources):
                self._say(text("knowledge.used", self._lang, sources=_one_line(", ".join(sources))))
                self._record("knowledge", event.timestamp, sources=list(sources))
            case CallEnding(reason=reason, message=message):
                self._say(text("call_ending.notice", self._lang))
                self._record("call_ending", None, reason=reason, message=message)
            case ErrorEvent(error=error, fatal=fatal):
                message = _one_line(redact(describe(error, self._lang)))
                if not fatal:
                    self.nonfatal_errors += 1
                    print(message, file=self._errors, flush=True)
                self._record("error", None, code=error.code, message=message, fatal=fatal)
            case ErrorCleared(code=code):
                key = f"notice.cleared.{code}"
                if self._texts.has(key):
                    print(text(key, self._lang), file=self._errors, flush=True)
                self._record("error_cleared", None, code=code)
            case MetricsEvent() | AudioHealth() | CallQuality():
                self._on_metrics(event)
            case RecordingChanged(active=active, path=path):
                if path is not None:
                    key = "headless.recording" if active else "headless.recording_saved"
                    self._say(text(key, self._lang, path=path))
                self._record("recording", None, active=active, path=path)
            case CallRecordDeleted(call_id=call_id):
                self._say(text("headless.record_deleted", self._lang))
                self._record("record_deleted", None, call_id=call_id)

    def close(self) -> None:
        """The call is over: say the assistant's pending state. Metrics not yet due are dropped:
        writing them now would break the one-a-second promise, and they are under a second old."""
        self._assistant_lines.flush()
        if self._metrics_timer is not None:
            self._metrics_timer.cancel()
            self._metrics_timer = None

    def _on_state(self, event: StateChanged) -> None:
        if event.state in CALL_OVER and not self._call_over:
            self._assistant_lines.flush()  # before "Ending…", so the last state is not lost
            self._call_over = True
        elif event.state.in_call and not event.previous.in_call:  # a new call (or chat) begins
            self._call_over = False
        if event.state != CallState.RECONNECTING:  # said with its attempt number instead
            self._say(state_words(self._status, self._texts))
        self._record("state", None, of="call", state=event.state.value)
        if event.state in (CallState.ENDED, CallState.FAILED):
            self.final_state = event.state
            self.error = event.error
        self.state_changed.set()

    def _on_assistant_state(self, state: AgentState) -> None:
        if state == self._assistant_state:
            return  # another attribute of the assistant changed, not its state
        self._assistant_state = state
        self._record("state", None, of="assistant", state=state.value)
        if not self._call_over and not self._chat:  # a chat's reply says it all
            self._assistant_lines.push(state)

    def _say_assistant_state(self, state: AgentState) -> None:
        self._say(text("headless.assistant_state", self._lang, state=text(f"agent.{state.value}", self._lang)))

    def _on_transcript(self, item: TranscriptItem) -> None:
        if not item.final or item.id in self._final_ids or not item.text.strip():
            return
        self._final_ids.add(item.id)
        self._say(f"{role_words(item.role, self._texts)}: {_one_line(item.text)}")
        self._record("transcript", item.timestamp, id=item.id, role=item.role, text=item.text, final=item.final)

    def _on_metrics(self, event: MetricsEvent | AudioHealth | CallQuality) -> None:
        self._metrics.update({f.name: getattr(event, f.name) for f in dataclasses.fields(event)})
        if self._metrics_timer is not None:
            return  # a record is due anyway and will carry these values
        now = self._clock.time()
        wait = 0.0 if self._metrics_written_at is None else self._metrics_written_at + METRICS_INTERVAL_S - now
        if wait <= 0:
            self._write_metrics()
        else:
            self._metrics_timer = self._clock.call_later(wait, self._write_metrics)

    def _write_metrics(self) -> None:
        if self._metrics_timer is not None:
            self._metrics_timer.cancel()
            self._metrics_timer = None
        self._metrics_written_at = self._clock.time()
        self._record("metrics", None, **self._metrics)

    # ------------------------------------------------------------------ output

    def _say(self, line: str) -> None:
        if self._lines is not None:
            print(line, file=self._lines, flush=True)

    def _record(self, kind: str, timestamp: float | None, **fields: Any) -> None:
        if not self._records:
            return
        record = {"type": kind, **fields, "timestamp": float(timestamp) if timestamp is not None else self._wall()}
        line = json.dumps(_finite(record), ensure_ascii=False, default=str, allow_nan=False)
        for sink in self._records:
            sink.write(line + "\n")
            sink.flush()


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _finite(value: Any) -> Any:
    """`value` with NaN and infinities as null: what the assistant sent may hold them, JSON not."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
