"""Fault drill: the assistant floods the data channel with random and malformed messages.

Hundreds of messages in a burst through the real room (the test assistant's `send` command):
random bytes, broken JSON, every contract type with fields of the wrong type, huge and deeply
nested bodies, unknown types. Afterwards the call is still connected, audio still flows both
ways, well-formed messages sent after the flood still become exactly one transcript line per
id, and nothing logged a traceback. The generator is seeded, so a failure replays exactly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any

import pytest

from tests.support.waiting import eventually
from tests.test_drills import (  # noqa: F401 (fixtures)
    Events,
    Stack,
    TracebackWatch,
    assistant_hears_us,
    call,
    no_call_left_open,
    no_traceback,
    stack,
)
from wespoke_tui.events import CallState, ErrorEvent, TranscriptItem
from wespoke_tui.session import CallSession

pytestmark = pytest.mark.timeout(120)

FLOOD = 400
SEED = 20261124
TYPES = ["message", "conversation_item", "transcription_stream", "tool_start", "tool_complete", "tool_failed",
         "tool_delayed", "metrics", "barge_in", "no_such_type", "", None, 7]
ROLES = ["user", "assistant", "system", "tool", "", "robot", None, 3, ["assistant"]]


class ParserLog(logging.Handler):
    """Counts the data messages the app logged as ignored (malformed, unknown, unusable)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.ignored = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "wespoke_tui.session.agent_events" and "ignored" in record.getMessage():
            self.ignored += 1


def junk(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value of any type (bounded depth)."""
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, 1.5e308, -0.0, rng.randrange(-10**6, 10**6)])
    if kind == 3:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(0, 40)))
    if kind == 4:
        return rng.choice(["", " ", "\u0000", "\u202e", "<script>", "\r\n", "é" * 50])
    if kind in (5, 6):
        return [junk(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {rng.choice(["id", "role", "content", "text", "type", "x"]): junk(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def fuzz_command(rng: random.Random, n: int) -> dict[str, Any]:
    """One `send` command for the test assistant: a raw string or a JSON payload, maybe a topic."""
    shape = rng.randrange(9)
    cmd: dict[str, Any] = {"cmd": "send"}
    if shape == 0:
        cmd["raw"] = "".join(chr(rng.randrange(1, 0xD7FF)) for _ in range(rng.randrange(0, 200)))
    elif shape == 1:
        cmd["raw"] = rng.choice(["{", "}", "[", "null", "\"type\"", "{\"type\": \"message\",", "{" * 200, "[" * 5000])
    elif shape == 2:
        cmd["raw"] = json.dumps({"type": "message", "id": f"big-{n}", "role": "assistant", "content": "x" * 12_000})
    else:
        payload: dict[str, Any] = {"type": rng.choice(TYPES)}
        for key in ("id", "role", "content", "text", "transcriptionId", "isFinal", "isComplete", "isStreaming",
                    "isFirstChunk", "sequence", "timestamp", "toolName", "toolType", "toolDetails", "latency"):
            if rng.random() < 0.5:
                payload[key] = rng.choice(ROLES) if key == "role" else junk(rng)
        cmd["payload"] = payload
    if rng.random() < 0.1:
        cmd["topic"] = rng.choice(["lk.transcription", "lk.chat", "random-topic", ""])
    return cmd


def well_formed(now_ms: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Messages sent after the flood and the final text each id must end with."""
    chunks = ["Sel", "am, ", "yine buradayım."]
    messages: list[dict[str, Any]] = []
    acc = ""
    for i, chunk in enumerate(chunks):
        acc += chunk
        last = i == len(chunks) - 1
        messages.append({"type": "message", "id": "after-flood-stream", "role": "assistant", "timestamp": now_ms,
                         "content": acc if last else chunk, "isFirstChunk": i == 0, "isStreaming": not last,
                         "isComplete": last})
    messages.append({"type": "conversation_item", "id": "after-flood-item", "role": "assistant",
                     "content": "Her şey yolunda.", "timestamp": now_ms, "isComplete": True})
    return messages, {"after-flood-stream": "Selam, yine buradayım.", "after-flood-item": "Her şey yolunda."}


async def test_flood_of_random_and_malformed_data_does_not_break_the_call_or_the_transcript(
    stack: Stack, call: tuple[CallSession, Events], no_traceback: TracebackWatch
) -> None:
    session, events = call
    assistant = stack.assistant_for(session.call_id or "")
    await asyncio.to_thread(assistant.wait_for, "script_sent", None, 20.0)  # its own script is done
    rng = random.Random(SEED)
    parsed = ParserLog()
    logging.getLogger("wespoke_tui").addHandler(parsed)
    already_sent = len(assistant.events("sent"))
    flood_started = time.monotonic()
    for n in range(FLOOD):
        assistant.send(fuzz_command(rng, n))
    await asyncio.to_thread(
        assistant.wait_until, lambda reports: sum(r["event"] == "sent" for r in reports) >= already_sent + FLOOD, 60.0
    )
    took = time.monotonic() - flood_started
    errors = assistant.events("error")
    # The flood reached the app's parser: most of it is not a usable message and was logged as such.
    await eventually(lambda: parsed.ignored >= FLOOD // 3, timeout=10, what=lambda: f"{FLOOD // 3} ignored, {parsed.ignored} so far")
    logging.getLogger("wespoke_tui").removeHandler(parsed)
    print(f"{FLOOD} fuzzed data messages through the room in {took:.1f} s ({FLOOD / took:.0f}/s); "
          f"assistant-side send errors: {len(errors)}; the app logged {parsed.ignored} as ignored")
    assert parsed.ignored >= FLOOD // 3

    # Well-formed messages after the flood still make exactly one transcript line per id.
    after = time.monotonic()
    messages, final_texts = well_formed(int(time.time() * 1000))
    for message in messages:
        assistant.send({"cmd": "send", "payload": message})
    for item_id, text in final_texts.items():
        await events.wait_for(
            lambda e, i=item_id, t=text: isinstance(e, TranscriptItem) and e.id == i and e.final and e.text == t,
            timeout=10,
            since=after,
        )
    for item_id in final_texts:
        assert sum(1 for e in events.of(TranscriptItem) if e.id == item_id and e.added) == 1, item_id

    # Everything the flood produced is still a sane transcript item; the call never faltered.
    for item in events.of(TranscriptItem, since=flood_started):
        assert isinstance(item.id, str) and item.id and isinstance(item.text, str) and isinstance(item.role, str)
    assert session.state == CallState.CONNECTED
    assert CallState.FAILED not in events.states(since=flood_started)
    assert not [e for e in events.of(ErrorEvent, since=flood_started) if e.fatal]
    await assistant_hears_us(assistant, time.time(), timeout=10)
    await events.heard(timeout=10, since=time.monotonic())

    await session.hang_up()
    assert session.state == CallState.ENDED
    await no_call_left_open(stack)


def test_fuzz_generator_is_deterministic_and_varied() -> None:
    def flood() -> list[dict[str, Any]]:
        rng = random.Random(SEED)
        return [fuzz_command(rng, n) for n in range(FLOOD)]

    commands = flood()
    assert commands == flood()  # a failing flood replays exactly
    assert sum("raw" in c for c in commands) > FLOOD // 10
    assert len({json.dumps(c["payload"].get("type")) for c in commands if "payload" in c}) >= 10
