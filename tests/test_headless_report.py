"""The headless runner's output, event by event, on a hand-driven clock: text lines in both
languages, the debounce of the assistant's state, error lines on stderr, and the JSON records."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from wespoke_tui.errors import MICROPHONE_ERROR, SERVER_ERROR, CallError, describe
from wespoke_tui.events import (
    AgentState,
    AgentStateChanged,
    AudioHealth,
    CallEnding,
    CallQuality,
    CallState,
    ErrorEvent,
    MetricsEvent,
    QualityLevel,
    ReconnectAttempt,
    StateChanged,
    ToolEvent,
    TranscriptItem,
)
from wespoke_tui.headless_report import Reporter, TrailingDebounce

WALL = 1_750_000_000.0


class Timer:
    def __init__(self, clock: FakeClock, when: float, callback: Callable[[], object]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False
        self._clock = clock

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """`time()` and `call_later()` of an event loop, with time moved by `advance()`."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[Timer] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(self, self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            due = sorted((t for t in self.timers if not t.cancelled and t.when <= end), key=lambda t: t.when)
            if not due:
                break
            timer = due[0]
            self.timers.remove(timer)
            self.now = timer.when
            timer.callback()
        self.now = end

    def wall(self) -> float:
        return WALL + self.now


def state(value: CallState, previous: CallState = CallState.IDLE, error: CallError | None = None) -> StateChanged:
    return StateChanged(value, previous, error)


def agent(value: str) -> AgentStateChanged:
    return AgentStateChanged(AgentState(value))


class Run:
    def __init__(self, lang: str = "en", *, json_mode: bool = False, transcript: bool = True) -> None:
        self.clock = FakeClock()
        self.out, self.err, self.file = io.StringIO(), io.StringIO(), io.StringIO()
        records = [s for s in (self.file if transcript else None, self.out if json_mode else None) if s is not None]
        self.reporter = Reporter(lang, lines=None if json_mode else self.out, records=records, errors=self.err,  # type: ignore[arg-type]
                                 clock=self.clock, wall=self.clock.wall)

    def feed(self, *events: Any, gap: float = 0.0) -> None:
        for event in events:
            self.reporter.handle(event)
            self.clock.advance(gap)

    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()

    def records(self, of: io.StringIO | None = None) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (of or self.file).getvalue().splitlines()]


# ------------------------------------------------------------------ debounce


def test_trailing_debounce_passes_a_value_only_once_it_held() -> None:
    clock, said = FakeClock(), []
    debounce: TrailingDebounce[str] = TrailingDebounce(0.25, said.append, clock)
    debounce.push("listening")
    clock.advance(0.3)
    assert said == ["listening"]
    debounce.push("thinking")
    clock.advance(0.1)
    debounce.push("speaking")  # "thinking" held 0.1 s only: never said
    clock.advance(0.2)
    assert said == ["listening"]
    debounce.push("speaking")  # the same value does not restart the hold
    clock.advance(0.06)
    assert said == ["listening", "speaking"]
    debounce.push("thinking")
    clock.advance(0.1)
    debounce.push("speaking")  # back to what was said last: nothing new to say
    clock.advance(1.0)
    assert said == ["listening", "speaking"]
    debounce.push("listening")
    clock.advance(0.05)
    debounce.flush()  # the call ends: the pending value is said at once
    clock.advance(1.0)
    assert said == ["listening", "speaking", "listening"]
    debounce.flush()
    assert said == ["listening", "speaking", "listening"]


def test_assistant_states_print_debounced_and_are_recorded_on_every_change() -> None:
    run = Run()
    run.feed(state(CallState.REQUESTING_TOKEN), state(CallState.CONNECTING), state(CallState.CONNECTED))
    run.feed(agent("initializing"), gap=0.05)
    run.feed(agent("listening"), gap=0.5)
    run.feed(agent("listening"), gap=0.5)  # another attribute changed, not the state
    run.feed(agent("thinking"), gap=0.1)
    run.feed(agent("speaking"), gap=1.0)
    run.feed(agent("listening"), gap=0.1)
    run.feed(state(CallState.ENDING, CallState.CONNECTED))  # flushes "listening" before "Ending…"
    run.feed(agent("speaking"), gap=1.0)  # the call is over: recorded, not printed
    run.feed(state(CallState.ENDED, CallState.ENDING))
    run.reporter.close()
    assert run.lines() == [
        "Getting token…", "Connecting…", "Connected",
        "assistant: listening", "assistant: speaking", "assistant: listening",
        "Ending…", "Call ended",
    ]
    assistant = [(r["state"], r["timestamp"]) for r in run.records() if r["type"] == "state" and r["of"] == "assistant"]
    assert [s for s, _ in assistant] == ["initializing", "listening", "thinking", "speaking", "listening", "speaking"]
    assert [t for _, t in assistant] == sorted(t for _, t in assistant)
    calls = [r["state"] for r in run.records() if r["type"] == "state" and r["of"] == "call"]
    assert calls == ["requesting_token", "connecting", "connected", "ending", "ended"]
    assert run.err.getvalue() == ""


def test_turkish_lines() -> None:
    run = Run("tr")
    run.feed(state(CallState.CONNECTED), agent("thinking"), gap=0.3)
    run.feed(agent("speaking"), gap=0.3)
    run.feed(TranscriptItem("a1", "assistant", "Merhaba!", final=True, added=True))
    run.feed(ToolEvent("start", "hava_durumu"), ToolEvent("complete", "hava_durumu"), CallEnding("bye", "Hoşça kalın"))
    run.feed(ReconnectAttempt(1, 3))
    assert run.lines() == [
        "Bağlı", "asistan: düşünüyor", "asistan: konuşuyor", "Asistan: Merhaba!",
        "araç çalışıyor: hava_durumu", "araç bitti: hava_durumu", "Asistan aramayı bitiriyor",
        "Yeniden bağlanıyor 1/3",
    ]


# ------------------------------------------------------------------ errors, records, --json


def test_non_fatal_errors_go_to_stderr_once_each_and_fatal_ones_are_left_to_the_runner() -> None:
    run = Run()
    mic = CallError.of(MICROPHONE_ERROR, "no input device matches 'x'\nsecond line")
    run.feed(ErrorEvent(mic, fatal=False))
    fatal = CallError.of(SERVER_ERROR, "HTTP 500 with key pk_live_abcdefghijklmnopqrstuvwx")
    run.feed(ErrorEvent(fatal, fatal=True), state(CallState.FAILED, CallState.REQUESTING_TOKEN, fatal))
    assert run.err.getvalue().splitlines() == [describe(mic, "en")]
    assert run.reporter.final_state == CallState.FAILED and run.reporter.error is fatal
    errors = [r for r in run.records() if r["type"] == "error"]
    assert errors == [
        {"type": "error", "code": MICROPHONE_ERROR, "message": describe(mic, "en"), "fatal": False, "timestamp": WALL + 100},
        {"type": "error", "code": SERVER_ERROR, "message": describe(fatal, "en"), "fatal": True, "timestamp": WALL + 100},
    ]
    assert "pk_live_" not in run.file.getvalue() + run.err.getvalue()


def test_every_record_type_with_its_fields() -> None:
    run = Run()
    run.feed(state(CallState.CONNECTED))
    run.feed(TranscriptItem("u1", "user", "mer", final=False, added=True))  # not final: no record
    run.feed(TranscriptItem("u1", "user", "merhaba", final=True, added=False, timestamp=1_700_000_000.25))
    run.feed(TranscriptItem("u1", "user", "merhaba", final=True, added=False))  # said once only
    run.feed(TranscriptItem("a1", "assistant", "Selam", final=True, added=True))
    run.feed(ToolEvent("failed", "lookup", "function", {"why": math.nan}, 1_700_000_001.0))
    run.feed(CallEnding("goodbye", "Hoşça kalın"))
    by_type = {r["type"]: r for r in run.records() if r["type"] != "transcript"}
    transcript = [r for r in run.records() if r["type"] == "transcript"]
    assert transcript == [
        {"type": "transcript", "id": "u1", "role": "user", "text": "merhaba", "final": True, "timestamp": 1_700_000_000.25},
        {"type": "transcript", "id": "a1", "role": "assistant", "text": "Selam", "final": True, "timestamp": WALL + 100},
    ]
    assert by_type["tool"] == {"type": "tool", "phase": "failed", "tool_name": "lookup", "tool_type": "function",
                               "details": {"why": None}, "timestamp": 1_700_000_001.0}
    assert by_type["call_ending"] == {"type": "call_ending", "reason": "goodbye", "message": "Hoşça kalın",
                                      "timestamp": WALL + 100}
    assert by_type["state"] == {"type": "state", "of": "call", "state": "connected", "timestamp": WALL + 100}
    for line in run.file.getvalue().splitlines():
        assert isinstance(json.loads(line)["timestamp"], float)
    assert run.lines()[1:] == ["You: merhaba", "Assistant: Selam", "tool failed: lookup", "The assistant is ending the call"]


def test_metrics_records_are_at_most_one_a_second_and_carry_the_latest_values() -> None:
    run = Run()
    run.feed(AudioHealth(playback_underruns=1), gap=0.3)  # the first is written at once
    run.feed(MetricsEvent(latency_ms=420.0, duration_s=1.2, raw={"latency": 420}), gap=0.3)
    run.feed(AudioHealth(playback_underruns=2), gap=0.1)
    run.feed(CallQuality(QualityLevel.FAIR, rtt_ms=350.0, packet_loss_pct=0.5), gap=0.2)
    run.clock.advance(0.2)  # 1 s after the first: the pending one is written
    run.feed(AudioHealth(playback_underruns=3), gap=1.0)
    run.feed(AudioHealth(playback_underruns=4), gap=0.1)
    run.reporter.close()  # the call is over: the record due 0.9 s later is not written early
    run.clock.advance(2.0)
    metrics = [r for r in run.records() if r["type"] == "metrics"]
    assert [(m["playback_underruns"], m["latency_ms"], m["timestamp"] - WALL) for m in metrics] == [
        (1, None, pytest.approx(100.0)), (2, 420.0, pytest.approx(101.0)), (3, 420.0, pytest.approx(102.0)),
    ]
    assert set(metrics[1]) == {
        "type", "timestamp", "latency_ms", "duration_s", "raw", "playback_underruns", "playback_overruns",
        "playback_trims", "capture_dropped_frames", "capture_queue_depth", "playback_queue_ms",
        "level", "rtt_ms", "jitter_ms", "packet_loss_pct", "bitrate_in_kbps", "bitrate_out_kbps",
        "playback_buffer_ms", "underruns", "aec_delay_ms", "response_ms",
    }
    assert metrics[1]["duration_s"] == 1.2 and metrics[1]["raw"] == {"latency": 420}
    assert (metrics[1]["level"], metrics[1]["rtt_ms"], metrics[0]["level"]) == ("fair", 350.0, None)
    assert run.lines() == []


def test_json_mode_prints_the_records_instead_of_lines() -> None:
    run = Run(json_mode=True)
    run.feed(state(CallState.CONNECTED), agent("listening"), gap=0.3)
    run.feed(TranscriptItem("a1", "assistant", "Selam", final=True, added=True))
    mic = CallError.of(MICROPHONE_ERROR, "gone")
    run.feed(ErrorEvent(mic, fatal=False))
    printed = run.records(run.out)
    assert [(r["type"], r.get("state")) for r in printed] == [
        ("state", "connected"), ("state", "listening"), ("transcript", None), ("error", None),
    ]
    assert printed == run.records()  # the same records as the file
    assert run.err.getvalue().splitlines() == [describe(mic, "en")]


def test_without_a_transcript_file_or_json_no_record_is_made() -> None:
    run = Run(transcript=False)
    run.feed(state(CallState.CONNECTED), AudioHealth(), TranscriptItem("a1", "assistant", "Selam", final=True, added=True))
    assert run.lines() == ["Connected", "Assistant: Selam"]
    assert run.clock.timers == []
