"""The presenter folds a call's events into the status the TUI draws (wespoke_tui.presenter)."""

from __future__ import annotations

from functools import reduce as fold

from wespoke_tui.errors import UNAUTHORIZED, UNKNOWN_ERROR, CallError, describe
from wespoke_tui.events import (
    AgentState,
    AgentStateChanged,
    AssistantSpeaking,
    CallQuality,
    CallRecordDeleted,
    CallStarted,
    CallState,
    ErrorEvent,
    MetricsEvent,
    QualityLevel,
    ReconnectAttempt,
    StateChanged,
    TranscriptItem,
)
from wespoke_tui.i18n import Texts
from wespoke_tui.presenter import CallStatus, is_new_error, record_deletable, reduce, state_words, tick

S = CallState


def run(events, status: CallStatus | None = None, now: float = 100.0, lang: str = "en") -> CallStatus:
    return fold(lambda s, e: reduce(s, e, now=now, lang=lang), events, status or CallStatus())


CONNECT = [StateChanged(S.REQUESTING_TOKEN, S.IDLE), CallStarted("call_1", "room", "asst", "Ada"),
           StateChanged(S.CONNECTING, S.REQUESTING_TOKEN), StateChanged(S.CONNECTED, S.CONNECTING)]


def test_a_call_connects_and_its_clock_starts() -> None:
    status = run(CONNECT)
    assert (status.state, status.call_id, status.assistant_name) == (S.CONNECTED, "call_1", "Ada")
    assert status.connected_at == 100.0 and status.duration_s == 0.0
    assert tick(status, 142.0).duration_s == 42.0
    assert tick(CallStatus(), 142.0) == CallStatus()  # no call, no clock


def test_events_that_show_nothing_in_the_status_leave_it_as_it_is() -> None:
    status = run(CONNECT)
    assert reduce(status, TranscriptItem("u1", "user", "hi", final=True, added=True), now=1, lang="en") is status
    assert reduce(status, MetricsEvent(latency_ms=None), now=1, lang="en") is status
    assert reduce(status, AssistantSpeaking(False), now=1, lang="en") is status  # it was not speaking


def test_reconnecting_keeps_the_call_clock_and_counts_attempts() -> None:
    status = run([StateChanged(S.RECONNECTING, S.CONNECTED)], run(CONNECT), now=110.0)
    assert status.state is S.RECONNECTING and status.reconnect_attempt == 1
    status = run([ReconnectAttempt(2, 5), StateChanged(S.CONNECTED, S.RECONNECTING)], status, now=120.0)
    assert status.reconnect_attempt == 0 and status.reconnect_max == 5
    assert status.connected_at == 100.0 and status.duration_s == 20.0
    assert state_words(CallStatus(state=S.RECONNECTING, reconnect_attempt=2, reconnect_max=5), Texts("en")) \
        == Texts("en")("state.reconnecting", attempt=2, max=5)


def test_the_end_stops_the_clock_and_a_new_call_forgets_the_last() -> None:
    status = run([AgentStateChanged(AgentState.THINKING), MetricsEvent(latency_ms=640.0),
                  CallQuality(level=QualityLevel.POOR)], run(CONNECT))
    status = run([StateChanged(S.ENDING, S.CONNECTED), StateChanged(S.ENDED, S.ENDING)], status, now=130.0)
    assert status.state is S.ENDED and status.duration_s == 30.0 and status.connected_at is None
    assert record_deletable(status)
    deleted = reduce(status, CallRecordDeleted("call_1"), now=131.0, lang="en")
    assert deleted.record_deleted and not record_deletable(deleted)
    assert reduce(status, CallRecordDeleted("another"), now=131.0, lang="en") is status
    again = reduce(deleted, StateChanged(S.REQUESTING_TOKEN, S.ENDED), now=140.0, lang="en")
    assert (again.call_id, again.latency_ms, again.agent_state, again.quality, again.duration_s) == (None,) * 5
    assert not again.record_deleted and again.assistant_name == "Ada"


def test_errors_show_their_user_message_in_the_users_language_once() -> None:
    error = CallError.of(UNAUTHORIZED, "401")
    status = run([StateChanged(S.FAILED, S.CONNECTING, error)], run(CONNECT[:3]), lang="tr")
    assert status.state is S.FAILED and status.error == describe(error, "tr")
    assert not is_new_error(status, error)  # the same error again is not toasted again
    assert is_new_error(status, CallError.of(UNKNOWN_ERROR, "boom"))
    assert is_new_error(CallStatus(), error)
    status = reduce(CallStatus(), ErrorEvent(error, fatal=False), now=0, lang="en")
    assert status.error == describe(error, "en") and status.error_code == UNAUTHORIZED


def test_the_assistant_speaking_and_its_state() -> None:
    status = run([AssistantSpeaking(True)])
    assert status.agent_state is AgentState.SPEAKING
    assert run([AssistantSpeaking(False)], status).agent_state is AgentState.LISTENING
    assert run([AgentStateChanged(AgentState.THINKING)], status).agent_state is AgentState.THINKING
