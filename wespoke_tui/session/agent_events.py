"""The assistant's data messages (docs/api-contract.md, "Data messages") as typed call events.

`parse_data_message(payload, topic, assembler)` turns one data-channel packet into events; it
never raises, whatever the bytes: malformed JSON and unknown types are logged and give [].

Transcript items go through a `TranscriptAssembler` (one per call), which deduplicates by id
across the data channel, standard `lk.transcription` text streams and the polled history:
- streaming chunks of one id end as ONE item, `added` the first time and `updated` after;
- a chunk's `content` may be a delta or the text so far: if it starts with the text we have, it
  replaces it (accumulated), otherwise it is appended (delta); `isFirstChunk` restarts the text;
- a completed id is final: later chunks for it are ignored, and nothing downgrades it;
- the history merges without duplicates: an unseen id is added (final); a seen, unfinished id
  is completed with the history's text; a final one is left alone.

Metrics rule: `latency_ms`/`latencyMs` are milliseconds. `latency` is seconds when below
`LATENCY_SECONDS_BELOW` (20, since no voice round trip takes under 20 ms but one can take 15 s),
otherwise milliseconds. `duration` is seconds (`duration_ms`/`durationMs` are milliseconds).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wespoke_tui.events import BargeIn, CallEnding, CallEvent, MetricsEvent, Role, ToolEvent, ToolPhase, TranscriptItem

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 1 << 20  # a data packet bigger than this is not one of the contract's messages
LATENCY_SECONDS_BELOW = 20.0
# The message types of tool events → the phase each one tells; any other type is not a tool event.
TOOL_PHASE_OF_TYPE = {
    "tool_start": ToolPhase.START,
    "tool_complete": ToolPhase.COMPLETE,
    "tool_failed": ToolPhase.FAILED,
    "tool_delayed": ToolPhase.DELAYED,
}
# A message's `role` (lowercased) → its Role; an unknown or missing one gets the message's default.
ROLE_ALIASES = {
    "user": Role.USER,
    "human": Role.USER,
    "assistant": Role.ASSISTANT,
    "agent": Role.ASSISTANT,
    "bot": Role.ASSISTANT,
    "ai": Role.ASSISTANT,
    "system": Role.SYSTEM,
    "tool": Role.TOOL,
    "function": Role.TOOL,
}
_PREVIEW_CHARS = 80


# ---------------------------------------------------------------------------- field readers


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _id(value: Any) -> str | None:
    """Ids are strings; a number is accepted as its decimal text; "" or anything else is no id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _bool(value: Any) -> bool:
    return value is True


def _role(value: Any, default: Role) -> Role:
    if isinstance(value, str):
        return ROLE_ALIASES.get(value.strip().lower(), default)
    return default


def _text(value: Any) -> str:
    """`content` is a string; a list of {"text": ...} parts (OpenAI style) is joined; else ""."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(part["text"] for part in value if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def timestamp_seconds(value: Any) -> float | None:
    """Epoch seconds from epoch ms (> 1e11), epoch seconds, or an ISO-8601 string; else None."""
    number = _number(value)
    if number is not None:
        return number / 1000.0 if abs(number) > 1e11 else number
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError, OSError):
            return None
    return None


def _preview(payload: bytes) -> str:
    return repr(payload[:_PREVIEW_CHARS]) + ("…" if len(payload) > _PREVIEW_CHARS else "")


# ---------------------------------------------------------------------------- transcript


@dataclass(slots=True)
class _Item:
    id: str
    role: Role
    text: str
    final: bool
    timestamp: float | None
    sequence: float | None = None


class TranscriptAssembler:
    """The transcript of one call, deduplicated by id. Each `apply_*` returns the items it changed."""

    def __init__(self) -> None:
        self._items: dict[str, _Item] = {}
        self._anonymous = itertools.count(1)
        self._open_transcription: str | None = None  # the id given to a transcription without one

    def items(self) -> list[TranscriptItem]:
        """The current transcript, in order of first appearance (each `added=False`)."""
        return [self._event(item, added=False) for item in self._items.values()]

    def __len__(self) -> int:
        return len(self._items)

    @staticmethod
    def _event(item: _Item, added: bool) -> TranscriptItem:
        return TranscriptItem(
            id=item.id, role=item.role, text=item.text, final=item.final, added=added, timestamp=item.timestamp
        )

    def _put(
        self,
        item_id: str,
        role: Role,
        text: str,
        final: bool,
        timestamp: float | None,
        *,
        merge: str,
        sequence: float | None = None,
    ) -> list[TranscriptItem]:
        """Add or update one item. `merge`: "replace" the text, or "chunk" (delta or accumulated)."""
        item = self._items.get(item_id)
        if item is None:
            item = _Item(item_id, role, text, final, timestamp, sequence)
            self._items[item_id] = item
            return [self._event(item, added=True)]
        if item.final:
            return []  # a completed id is final
        if sequence is not None and item.sequence is not None and sequence < item.sequence:
            return []  # an older hypothesis arriving late
        if merge == "chunk":
            new_text = _merge_chunk(item.text, text)
        else:
            new_text = text if text or not final else item.text
        changed = new_text != item.text or final != item.final
        item.text, item.final = new_text, final
        item.sequence = sequence if sequence is not None else item.sequence
        if item.timestamp is None:
            item.timestamp = timestamp
        return [self._event(item, added=False)] if changed else []

    def apply_message(self, msg: dict[str, Any]) -> list[TranscriptItem]:
        """A `message` or `conversation_item` data message (one streaming chunk or a whole message)."""
        item_id = _id(msg.get("id")) or f"anon-msg-{next(self._anonymous)}"
        text = _text(msg.get("content"))
        complete = msg.get("isComplete")
        # Without isComplete, a message that is not streaming is a whole one.
        final = _bool(complete) if complete is not None else not _bool(msg.get("isStreaming"))
        timestamp = timestamp_seconds(msg.get("timestamp"))
        existing = self._items.get(item_id)
        if existing is not None and not existing.final and _bool(msg.get("isFirstChunk")):
            return self._put(item_id, existing.role, text, final, timestamp, merge="replace")
        role = _role(msg.get("role"), Role.ASSISTANT)
        if existing is not None:
            role = existing.role
        return self._put(item_id, role, text, final, timestamp, merge="chunk")

    def apply_transcription_stream(self, msg: dict[str, Any]) -> list[TranscriptItem]:
        """A `transcription_stream` message: the user's speech so far (each text replaces the last)."""
        final = _bool(msg.get("isFinal"))
        item_id = _id(msg.get("transcriptionId"))
        if item_id is None:
            # Partial hypotheses without an id belong together until the final one.
            if self._open_transcription is None:
                self._open_transcription = f"anon-tr-{next(self._anonymous)}"
            item_id = self._open_transcription
            if final:
                self._open_transcription = None
        return self._put(
            item_id,
            _role(msg.get("role"), Role.USER),
            _text(msg.get("text")),
            final,
            timestamp_seconds(msg.get("timestamp")),
            merge="replace",
            sequence=_number(msg.get("sequence")),
        )

    def apply_text_stream(
        self,
        segment_id: str | None,
        text: str,
        final: bool,
        participant_is_assistant: bool,
        timestamp: float | None = None,
    ) -> list[TranscriptItem]:
        """A standard LiveKit transcription (text stream on `lk.transcription`): the segment's text so far.

        Every stream of one segment carries the segment's whole text so far, so a later stream of
        the same `segment_id` replaces the text of the one item; the first stream's time stays.
        """
        item_id = segment_id or f"anon-seg-{next(self._anonymous)}"
        role = Role.ASSISTANT if participant_is_assistant else Role.USER
        text = text if isinstance(text, str) else ""
        return self._put(item_id, role, text, bool(final), timestamp, merge="replace")

    def apply_history(self, messages: Iterable[Any]) -> list[TranscriptItem]:
        """Messages from `GET …/messages` (the polling fallback): all final, merged by id."""
        out: list[TranscriptItem] = []
        if not isinstance(messages, Iterable) or isinstance(messages, (str, bytes, dict)):
            return out
        for msg in messages:
            if not isinstance(msg, dict):
                continue
            text = _text(msg.get("content"))
            role = _role(msg.get("role"), Role.ASSISTANT)
            raw_time = msg.get("timestamp", msg.get("createdAt"))
            item_id = _id(msg.get("id")) or _history_key(role, text, raw_time)
            existing = self._items.get(item_id)
            if existing is not None:
                role = existing.role
            out += self._put(item_id, role, text, True, timestamp_seconds(raw_time), merge="replace")
        return out


def _merge_chunk(current: str, chunk: str) -> str:
    """A chunk that starts with what we have is the text so far; any other chunk is a delta."""
    if chunk.startswith(current):
        return chunk
    return current + chunk


def _history_key(role: Role, text: str, raw_time: Any) -> str:
    """A stable id for a history message without one, so repeated polls do not duplicate it."""
    digest = hashlib.sha1(f"{role}\x00{text}\x00{raw_time!r}".encode("utf-8", "replace")).hexdigest()
    return f"hist-{digest[:16]}"


# ---------------------------------------------------------------------------- data messages


def parse_data_message(
    payload: bytes, topic: str | None = None, assembler: TranscriptAssembler | None = None
) -> list[CallEvent]:
    """One data packet from the room → its events. Never raises.

    Pass the call's `TranscriptAssembler`, so transcript items are deduplicated across packets;
    without one, a fresh assembler is used and every transcript item reads as `added`.
    """
    try:
        return _parse(payload, topic, assembler if assembler is not None else TranscriptAssembler())
    except Exception:  # noqa: BLE001 - a bad packet must never break the call
        log.warning("data message (topic %r) could not be handled: %s", topic, _preview(bytes(payload or b"")), exc_info=True)
        return []


def _parse(payload: bytes, topic: str | None, assembler: TranscriptAssembler) -> list[CallEvent]:
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        log.warning("data message (topic %r) is not bytes: %s", topic, type(payload).__name__)
        return []
    raw = bytes(payload)
    if len(raw) > MAX_PAYLOAD_BYTES:
        log.warning("data message (topic %r) of %d bytes ignored: too large", topic, len(raw))
        return []
    try:
        msg = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        log.warning("malformed data message (topic %r) ignored: %s", topic, _preview(raw))
        return []
    if not isinstance(msg, dict):
        log.warning("data message (topic %r) is not a JSON object, ignored: %s", topic, _preview(raw))
        return []
    kind = msg.get("type")
    if kind in ("message", "conversation_item"):
        return list(assembler.apply_message(msg))
    if kind == "transcription_stream":
        return list(assembler.apply_transcription_stream(msg))
    if isinstance(kind, str) and kind in TOOL_PHASE_OF_TYPE:
        return [
            ToolEvent(
                phase=TOOL_PHASE_OF_TYPE[kind],
                tool_name=_str(msg.get("toolName")) or "tool",
                tool_type=_str(msg.get("toolType")),
                details=msg.get("toolDetails"),
                timestamp=timestamp_seconds(msg.get("timestamp")),
            )
        ]
    if kind == "metrics":
        return [metrics_event(msg)]
    if kind == "barge_in":
        return [BargeIn()]
    if kind == "call_ending":
        return [CallEnding(reason=_str(msg.get("reason")), message=_str(msg.get("message")))]
    log.debug("data message of unknown type %r (topic %r) ignored", kind, topic)
    return []


def metrics_event(msg: dict[str, Any]) -> MetricsEvent:
    """`metrics` → MetricsEvent with the unit rule of the module docstring; `raw` keeps every field."""
    latency_ms = _number(msg.get("latency_ms", msg.get("latencyMs")))
    if latency_ms is None:
        latency = _number(msg.get("latency"))
        if latency is not None:
            latency_ms = latency * 1000.0 if abs(latency) < LATENCY_SECONDS_BELOW else latency
    duration_s = _number(msg.get("duration"))
    if duration_s is None:
        duration_ms = _number(msg.get("duration_ms", msg.get("durationMs")))
        duration_s = duration_ms / 1000.0 if duration_ms is not None else None
    raw = {k: v for k, v in msg.items() if k != "type"}
    return MetricsEvent(latency_ms=latency_ms, duration_s=duration_s, raw=raw)
