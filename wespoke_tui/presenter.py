"""What a call looks like to the user, as a value: `CallStatus`, and `reduce`, which folds each
`CallEvent` into the next status. Pure: no Textual, no I/O, time comes in as `now`.

The TUI keeps a `CallStatus` in a reactive and draws it (ui/app.py, ui/screens/call_screen.py);
the headless reporter keeps one too for what it says of the call (its id, the state words).
What an event *does* beside the status (a toast, a transcript line, a meter) stays with them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from wespoke_tui.errors import CallError, Lang, describe
from wespoke_tui.events import (
    AgentState,
    AgentStateChanged,
    AssistantSpeaking,
    CallEvent,
    CallQuality,
    CallRecordDeleted,
    CallStarted,
    CallState,
    ErrorCleared,
    ErrorEvent,
    MetricsEvent,
    MuteChanged,
    QualityLevel,
    RateLimitInfo,
    ReconnectAttempt,
    RecordingChanged,
    Role,
    StateChanged,
    ToolPhase,
)
from wespoke_tui.i18n import Texts


@dataclass(frozen=True, slots=True)
class CallStatus:
    state: CallState = CallState.IDLE
    reconnect_attempt: int = 0
    reconnect_max: int = 3
    duration_s: float | None = None
    call_id: str | None = None
    assistant_name: str | None = None
    muted: bool = False
    agent_state: AgentState | None = None
    latency_ms: float | None = None
    rate_remaining: int | None = None
    rate_limit: int | None = None
    error: str | None = None  # the user message of the last error, in the user's language
    chat: bool = False  # a text chat: its own state words, no microphone
    recording: bool = False
    quality: QualityLevel | None = None
    # Not shown, but what the next status depends on:
    connected_at: float | None = None  # when the call connected (monotonic), for its clock
    error_code: str | None = None  # of the last error shown, so the same error is toasted once
    record_deleted: bool = False  # the last call's record, by `x` or --delete-after


def reduce(status: CallStatus, event: CallEvent, *, now: float, lang: Lang) -> CallStatus:
    """The status after `event`; `status` itself when the event changes nothing shown.

    `now` is the monotonic time (the call clock starts at the connect), `lang` the language
    error messages are shown in."""
    match event:
        case StateChanged():
            return _state_changed(status, event, now, lang)
        case CallStarted(call_id=call_id, assistant_name=name):
            return dataclasses.replace(status, call_id=call_id, assistant_name=name)
        case AssistantSpeaking(speaking=speaking):
            if speaking:
                return dataclasses.replace(status, agent_state=AgentState.SPEAKING)
            if status.agent_state is AgentState.SPEAKING:
                return dataclasses.replace(status, agent_state=AgentState.LISTENING)
        case AgentStateChanged(state=agent_state):
            return dataclasses.replace(status, agent_state=agent_state)
        case MuteChanged(muted=muted):
            return dataclasses.replace(status, muted=muted)
        case MetricsEvent(latency_ms=latency) if latency is not None:
            return dataclasses.replace(status, latency_ms=latency)
        case ErrorEvent(error=error):
            return with_error(status, error, lang)
        case ErrorCleared(code=code) if code == status.error_code:
            return dataclasses.replace(status, error=None, error_code=None)
        case ReconnectAttempt(attempt=attempt, max_attempts=max_attempts):
            return dataclasses.replace(status, reconnect_attempt=attempt, reconnect_max=max_attempts)
        case RateLimitInfo(remaining=remaining, limit=limit):
            return dataclasses.replace(status, rate_remaining=remaining, rate_limit=limit)
        case CallQuality(level=level) if level is not status.quality:
            return dataclasses.replace(status, quality=level)
        case RecordingChanged(active=active):
            return dataclasses.replace(status, recording=active)
        case CallRecordDeleted(call_id=call_id) if call_id == status.call_id:
            return dataclasses.replace(status, record_deleted=True)
    return status  # levels, transcript, tools, barge-in, audio health: nothing in the status


def _state_changed(status: CallStatus, event: StateChanged, now: float, lang: Lang) -> CallStatus:
    state = event.state
    if state.in_call and not event.previous.in_call:
        # A new call: nothing of the previous one stays (the name, rate and recording do).
        return dataclasses.replace(status, state=state, call_id=None, error=None, latency_ms=None, agent_state=None,
                                   duration_s=None, reconnect_attempt=0, quality=None, connected_at=None,
                                   error_code=None, record_deleted=False)
    if state is CallState.CONNECTED:
        # Back from reconnecting, the call goes on: its clock keeps its start.
        connected_at = status.connected_at if event.previous is CallState.RECONNECTING else now
        return dataclasses.replace(status, state=state, reconnect_attempt=0, connected_at=connected_at,
                                   duration_s=_since(connected_at, now))
    if state is CallState.RECONNECTING:
        return dataclasses.replace(status, state=state, reconnect_attempt=max(1, status.reconnect_attempt))
    if state is CallState.FAILED and event.error is not None:
        status = with_error(status, event.error, lang)
    duration = _since(status.connected_at, now)
    connected_at = None if state in (CallState.ENDED, CallState.FAILED) else status.connected_at
    return dataclasses.replace(status, state=state, duration_s=duration, connected_at=connected_at)


def tick(status: CallStatus, now: float) -> CallStatus:
    """The call clock moved on (the app ticks every second)."""
    if status.connected_at is None:
        return status
    return dataclasses.replace(status, duration_s=now - status.connected_at)


def with_error(status: CallStatus, error: CallError, lang: Lang) -> CallStatus:
    return dataclasses.replace(status, error=describe(error, lang), error_code=error.code)


def is_new_error(old: CallStatus, error: CallError) -> bool:
    """Whether `error` is worth a toast after `old`: the same error again is said only once."""
    return old.error_code is None or old.error_code != error.code


def record_deletable(status: CallStatus) -> bool:
    """An ended call with a record on the server that is still there."""
    return (status.state in (CallState.ENDED, CallState.FAILED) and bool(status.call_id)
            and not status.record_deleted)


def state_words(status: CallStatus, t: Texts) -> str:
    """The call's state in words: "Connected", "Chat open", "Reconnecting (1/3)…"."""
    if status.state is CallState.RECONNECTING:
        return t("state.reconnecting", attempt=status.reconnect_attempt, max=status.reconnect_max)
    if status.chat and t.has(f"chat_state.{status.state.value}"):
        return t(f"chat_state.{status.state.value}")
    return t(f"state.{status.state.value}")


def role_words(role: Role, t: Texts) -> str:
    """Who said a transcript line, in words: "You", "Assistant"."""
    return t(f"role.{role}")


def tool_words(phase: ToolPhase, tool_name: str, t: Texts) -> str:
    """A tool event in words: "tool running: lookup_order"."""
    return t(f"tool.{phase}", name=tool_name)


def _since(start: float | None, now: float) -> float | None:
    return None if start is None else now - start
