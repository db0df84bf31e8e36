"""Parsing of the assistant's data messages and the transcript assembly (dedupe by id)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.stack import assistant as script
from wespoke_tui.events import BargeIn, CallEnding, MetricsEvent, ToolEvent, TranscriptItem
from wespoke_tui.session.agent_events import (
    TranscriptAssembler,
    metrics_event,
    parse_data_message,
    timestamp_seconds,
)


def enc(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def chunk(id_: str, content: str, *, first: bool = False, streaming: bool = True, complete: bool = False) -> bytes:
    return enc(
        {"type": "message", "id": id_, "role": "assistant", "content": content, "timestamp": 1_700_000_000_000,
         "isFirstChunk": first, "isStreaming": streaming, "isComplete": complete}
    )


# --------------------------------------------------------------------------- the test assistant's script


def test_the_test_assistants_whole_script_becomes_the_right_events(caplog: pytest.LogCaptureFixture) -> None:
    """Exactly what tests/stack/assistant.py sends, in order: every type maps to its typed event."""
    asm = TranscriptAssembler()
    caplog.set_level(logging.DEBUG, logger="wespoke_tui.session.agent_events")
    events = [ev for payload in script.data_messages(1_700_000_000_000) for ev in parse_data_message(payload, None, asm)]
    items = [e for e in events if isinstance(e, TranscriptItem)]
    stream = [i for i in items if i.id == script.STREAM_ID]
    assert [(i.added, i.final) for i in stream] == [(True, False), (False, False), (False, True)]
    assert stream[0].text == script.STREAM_CHUNKS[0]
    assert stream[1].text == "".join(script.STREAM_CHUNKS[:2])
    assert stream[-1].text == script.STREAM_FULL_TEXT and stream[-1].role == "assistant"
    assert stream[-1].timestamp == pytest.approx(1_700_000_000.0)
    conv = [i for i in items if i.id == script.CONVERSATION_ITEM_ID]
    assert conv == [TranscriptItem(script.CONVERSATION_ITEM_ID, "assistant", script.CONVERSATION_ITEM_TEXT, True, True, 1_700_000_000.0)]
    tr = [i for i in items if i.id == script.TRANSCRIPTION_ID]
    assert [(i.text, i.final, i.added, i.role) for i in tr] == [
        (script.TRANSCRIPTION_PARTIAL, False, True, "user"),
        (script.TRANSCRIPTION_FINAL, True, False, "user"),
    ]
    tools = [e for e in events if isinstance(e, ToolEvent)]
    assert [t.phase for t in tools] == ["start", "complete", "failed", "delayed"]
    assert {t.tool_name for t in tools} == {script.TOOL_NAME} and tools[0].tool_type == "function"
    assert tools[1].details == {"phase": "tool_complete", "args": {"city": "Istanbul"}}
    (metrics,) = [e for e in events if isinstance(e, MetricsEvent)]
    assert metrics.latency_ms == 420 and metrics.duration_s == 1.2
    # One item per id, whatever the number of chunks.
    assert [i.id for i in asm.items()] == [script.STREAM_ID, script.CONVERSATION_ITEM_ID, script.TRANSCRIPTION_ID]
    assert "malformed data message" in caplog.text and "unknown type 'mystery'" in caplog.text


def test_barge_in_and_call_ending() -> None:
    assert parse_data_message(enc({"type": "barge_in", "timestamp": 1})) == [BargeIn()]
    assert parse_data_message(enc({"type": "call_ending", "reason": "silence", "message": "Görüşürüz"})) == [
        CallEnding(reason="silence", message="Görüşürüz")
    ]
    assert parse_data_message(enc({"type": "call_ending", "reason": 5})) == [CallEnding(None, None)]


@pytest.mark.parametrize(
    "payload",
    [b"{not json", b"", b"\xff\xfe\x00", b"[1, 2]", b'"text"', b"null", b"42", enc({"type": "mystery"}),
     enc({"no_type": True}), enc({"type": None}), enc({"type": ["message"]}), b"[" * 100_000],
)
def test_malformed_and_unknown_messages_give_nothing(payload: bytes) -> None:
    assert parse_data_message(payload, "any-topic", TranscriptAssembler()) == []


def test_oversized_payload_is_ignored() -> None:
    huge = enc({"type": "message", "id": "x", "content": "a" * (2 << 20)})
    assert parse_data_message(huge) == []


# --------------------------------------------------------------------------- streaming and dedupe


def test_accumulated_chunks_replace_and_complete_is_final() -> None:
    asm = TranscriptAssembler()
    out = [parse_data_message(chunk("m", t, first=i == 0), None, asm) for i, t in enumerate(["Mer", "Merhaba", "Merhaba dünya"])]
    assert [o[0].text for o in out] == ["Mer", "Merhaba", "Merhaba dünya"]
    done = parse_data_message(chunk("m", "Merhaba dünya!", streaming=False, complete=True), None, asm)
    assert done == [TranscriptItem("m", "assistant", "Merhaba dünya!", True, False, 1_700_000_000.0)]
    # After completion, late chunks and duplicates of the id change nothing.
    assert parse_data_message(chunk("m", " late"), None, asm) == []
    assert parse_data_message(chunk("m", "other", first=True), None, asm) == []
    assert parse_data_message(chunk("m", "Merhaba dünya!", streaming=False, complete=True), None, asm) == []
    assert len(asm) == 1 and asm.items()[0].text == "Merhaba dünya!"


def test_delta_chunks_append_and_an_empty_completion_keeps_the_text() -> None:
    asm = TranscriptAssembler()
    parse_data_message(chunk("d", "Hello", first=True), None, asm)
    parse_data_message(chunk("d", " world"), None, asm)
    (done,) = parse_data_message(chunk("d", "", streaming=False, complete=True), None, asm)
    assert done.text == "Hello world" and done.final and not done.added


def test_a_repeated_chunk_is_not_an_update() -> None:
    asm = TranscriptAssembler()
    assert len(parse_data_message(chunk("r", "same", first=True), None, asm)) == 1
    assert parse_data_message(chunk("r", "same"), None, asm) == []


def test_first_chunk_again_restarts_an_unfinished_item() -> None:
    asm = TranscriptAssembler()
    parse_data_message(chunk("x", "wrong start", first=True), None, asm)
    (restart,) = parse_data_message(chunk("x", "Right", first=True), None, asm)
    assert restart.text == "Right" and not restart.added


def test_whole_message_without_flags_is_final_and_roles_are_normalised() -> None:
    asm = TranscriptAssembler()
    (user,) = asm.apply_message({"id": "u1", "role": "User", "content": "selam"})
    (sys_,) = asm.apply_message({"id": "s1", "role": "system", "content": "x"})
    (unknown,) = asm.apply_message({"id": 7, "role": 3, "content": None})
    (parts,) = asm.apply_message({"id": "p", "role": "agent", "content": [{"type": "text", "text": "a"}, {"text": "b"}, 5]})
    assert (user.role, user.final, user.text) == ("user", True, "selam")
    assert sys_.role == "system"
    assert (unknown.id, unknown.role, unknown.text) == ("7", "assistant", "")
    assert (parts.role, parts.text) == ("assistant", "ab")


def test_messages_without_id_are_separate_items() -> None:
    asm = TranscriptAssembler()
    a = asm.apply_message({"role": "assistant", "content": "one"})
    b = asm.apply_message({"role": "assistant", "content": "two"})
    assert a[0].id != b[0].id and a[0].added and b[0].added


def test_transcription_partials_replace_in_sequence_order() -> None:
    asm = TranscriptAssembler()
    base = {"type": "transcription_stream", "transcriptionId": "t", "isStreaming": True}
    parse_data_message(enc({**base, "text": "mer", "sequence": 0}), None, asm)
    parse_data_message(enc({**base, "text": "merhaba ben", "sequence": 2}), None, asm)
    assert parse_data_message(enc({**base, "text": "merhaba", "sequence": 1}), None, asm) == []  # late
    (final,) = parse_data_message(enc({**base, "text": "merhaba ben geldim", "sequence": 3, "isFinal": True}), None, asm)
    assert final.final and final.text == "merhaba ben geldim" and final.role == "user"


def test_transcriptions_without_id_group_until_final() -> None:
    asm = TranscriptAssembler()
    (a,) = asm.apply_transcription_stream({"text": "bir"})
    (b,) = asm.apply_transcription_stream({"text": "bir iki", "isFinal": True})
    (c,) = asm.apply_transcription_stream({"text": "üç"})
    assert a.id == b.id != c.id and a.added and not b.added and c.added


def test_standard_text_stream_transcriptions() -> None:
    asm = TranscriptAssembler()
    (a,) = asm.apply_text_stream("seg-1", "hello", False, participant_is_assistant=True, timestamp=1_700_000_000.5)
    (b,) = asm.apply_text_stream("seg-1", "hello there", True, participant_is_assistant=True, timestamp=1_700_000_009.0)
    (c,) = asm.apply_text_stream("seg-2", "hi", True, participant_is_assistant=False)
    assert (a.added, a.role, a.final, a.timestamp) == (True, "assistant", False, 1_700_000_000.5)
    assert (b.added, b.text, b.final) == (False, "hello there", True)
    assert b.timestamp == 1_700_000_000.5  # the segment's first stream gives its time
    assert (c.role, c.final, c.timestamp) == ("user", True, None)
    assert asm.apply_text_stream("seg-1", "changed", True, True) == []  # final stays final


# --------------------------------------------------------------------------- history merge


def test_history_merges_without_duplicates() -> None:
    asm = TranscriptAssembler()
    parse_data_message(chunk("a1", "streaming", first=True), None, asm)  # unfinished from data
    asm.apply_message({"id": "a2", "role": "assistant", "content": "done", "isComplete": True})
    history = [
        {"id": "a1", "role": "assistant", "content": "streaming finished", "timestamp": "2026-11-24T15:00:00Z"},
        {"id": "a2", "role": "assistant", "content": "done (history says otherwise)"},
        {"id": "hist-1", "role": "assistant", "content": "only-in-history", "timestamp": 1_700_000_000_000},
        {"role": "user", "content": "no id", "createdAt": "2026-11-24T15:00:01Z"},
        "garbage",
        {"id": None, "content": 5},
    ]
    first = asm.apply_history(history)
    assert [(i.id, i.added, i.final) for i in first][:3] == [("a1", False, True), ("hist-1", True, True), (first[2].id, True, True)]
    assert first[0].text == "streaming finished"
    assert len(asm) == 5
    # Polling again (every 2 s) adds and changes nothing.
    assert asm.apply_history(history) == []
    assert len(asm) == 5
    # A data chunk for an id the history already completed is ignored.
    assert parse_data_message(chunk("hist-1", "late chunk"), None, asm) == []
    texts = {i.id: i.text for i in asm.items()}
    assert texts["a2"] == "done" and texts["hist-1"] == "only-in-history"


@pytest.mark.parametrize("bad", [None, "text", 5, {"messages": []}, b"bytes"])
def test_history_that_is_not_a_list(bad: Any) -> None:
    assert TranscriptAssembler().apply_history(bad) == []


# --------------------------------------------------------------------------- metrics and timestamps


@pytest.mark.parametrize(
    ("fields", "latency_ms", "duration_s"),
    [
        ({"latency": 420, "duration": 1.2}, 420.0, 1.2),
        ({"latency": 0.42}, 420.0, None),
        ({"latency": 1.5}, 1500.0, None),
        ({"latency": 20}, 20.0, None),
        ({"latencyMs": 3}, 3.0, None),
        ({"latency_ms": 900, "latency": 0.1}, 900.0, None),
        ({"duration_ms": 2500}, None, 2.5),
        ({"latency": "fast", "duration": True}, None, None),
        ({"latency": float("nan")}, None, None),
        ({}, None, None),
    ],
)
def test_metrics_units(fields: dict[str, Any], latency_ms: float | None, duration_s: float | None) -> None:
    event = metrics_event({"type": "metrics", **fields})
    assert event.latency_ms == latency_ms and event.duration_s == duration_s
    assert "type" not in event.raw


def test_timestamps() -> None:
    assert timestamp_seconds(1_700_000_000_000) == 1_700_000_000.0
    assert timestamp_seconds(1_700_000_000.5) == 1_700_000_000.5
    assert timestamp_seconds("2026-11-24T15:00:00Z") == pytest.approx(1795532400.0)
    assert timestamp_seconds("yesterday") is None and timestamp_seconds(None) is None and timestamp_seconds(True) is None


# --------------------------------------------------------------------------- robustness


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)
contract_keys = st.sampled_from(
    ["id", "role", "content", "timestamp", "isComplete", "isFirstChunk", "isStreaming", "text", "transcriptionId",
     "isFinal", "sequence", "toolName", "toolType", "toolDetails", "latency", "duration", "reason", "message",
     "latencyMs", "durationMs", "createdAt"]
)
contract_types = st.sampled_from(
    ["message", "conversation_item", "transcription_stream", "tool_start", "tool_complete", "tool_failed",
     "tool_delayed", "metrics", "barge_in", "call_ending", "mystery"]
)
contract_like = st.builds(
    lambda kind, fields: {"type": kind, **fields}, contract_types, st.dictionaries(contract_keys, json_values, max_size=8)
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_fuzz_random_bytes_never_raise(payload: bytes) -> None:
    assert isinstance(parse_data_message(payload, None, TranscriptAssembler()), list)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fuzz_random_json_never_raises(value: Any) -> None:
    payload = json.dumps(value).encode()
    assert isinstance(parse_data_message(payload, "t", TranscriptAssembler()), list)


@settings(max_examples=150, deadline=None)
@given(st.lists(contract_like, max_size=12), st.lists(json_values, max_size=4))
def test_fuzz_contract_shaped_messages_keep_one_item_per_id(messages: list[dict[str, Any]], history: list[Any]) -> None:
    asm = TranscriptAssembler()
    for msg in messages:
        for event in parse_data_message(json.dumps(msg).encode(), None, asm):
            assert not isinstance(event, TranscriptItem) or isinstance(event.text, str)
    asm.apply_history(history)
    asm.apply_history([m for m in messages])  # dicts with odd fields as history too
    ids = [i.id for i in asm.items()]
    assert len(ids) == len(set(ids))
    assert asm.apply_history([m for m in messages]) == []  # a second poll changes nothing


def test_parsing_is_fast() -> None:
    payloads = script.data_messages(1_700_000_000_000) * 200
    asm = TranscriptAssembler()
    start = time.perf_counter()
    for p in payloads:
        parse_data_message(p, None, asm)
    per_message_us = (time.perf_counter() - start) / len(payloads) * 1e6
    print(f"parse_data_message: {per_message_us:.1f} µs per message")
    assert per_message_us < 200
