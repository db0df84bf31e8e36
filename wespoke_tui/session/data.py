"""The transcript side of a call: data messages, `lk.transcription` streams, the polled history
and the user's typed lines, merged by one `TranscriptAssembler` so nothing shows twice.

An `lk.transcription` stream of LiveKit Agents says `lk.transcription_final: "false"` in its
header; the agent's own segment is final only by the attributes it sends when the stream closes,
and a user segment comes as two streams of one `lk.segment_id` (header "false", then "true").
So finality is read from the attributes at close, the header's overlaid by the trailer's; a
stream that never says "false" (a plain `send_text`) is final when it closes.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

from wespoke_tui.api import ApiMessage
from wespoke_tui.events import CallEvent
from wespoke_tui.session.agent_events import TranscriptAssembler, parse_data_message

log = logging.getLogger(__name__)

SEGMENT_ID_ATTRIBUTE = "lk.segment_id"
FINAL_ATTRIBUTE = "lk.transcription_final"


class StreamInfo(Protocol):
    stream_id: str
    timestamp: int  # ms since the epoch, 0 when the sender gave none
    attributes: dict[str, str] | None


class TextStream(Protocol):
    """What `rtc.TextStreamReader` offers: `info`, and the text chunks as an async iterator.
    The SDK merges the trailer's attributes into `info.attributes` when the stream ends."""

    @property
    def info(self) -> StreamInfo: ...

    def __aiter__(self) -> AsyncIterator[str]: ...


class DataHandler:
    """Per call. Every method returns (or yields) the events to emit and never raises on bad input."""

    def __init__(self) -> None:
        self._assembler = TranscriptAssembler()
        self._local_ids = itertools.count(1)
        # Lines the user typed, shown at once under a local id; the history echoes them back
        # under the server's id, and those copies are skipped (by text, each once, then by id).
        self._typed_pending: list[str] = []
        self._typed_server_ids: set[str] = set()

    def data_packet(self, payload: bytes, topic: str | None) -> list[CallEvent]:
        return parse_data_message(payload, topic, self._assembler)

    async def transcription(self, reader: TextStream, *, from_assistant: bool) -> AsyncIterator[CallEvent]:
        """One `lk.transcription` stream read to its end: its segment as the text grows, then final
        or not by the attributes at close. A stream cut short keeps what came."""
        header = dict(reader.info.attributes or {})  # a copy: the SDK updates its dict at close
        stream_id = reader.info.stream_id
        sent_at = reader.info.timestamp / 1000.0 if reader.info.timestamp > 0 else None
        segment_id = header.get(SEGMENT_ID_ATTRIBUTE) or stream_id
        text = ""
        try:
            async for chunk in reader:
                text += chunk
                for event in self._assembler.apply_text_stream(segment_id, text, False, from_assistant, sent_at):
                    yield event
        except Exception as exc:  # e.g. the sender left mid-stream
            log.info("transcription stream %s ended early: %s", stream_id, exc)
        closing = {**header, **(reader.info.attributes or {})}
        final = closing.get(FINAL_ATTRIBUTE, "true").strip().lower() != "false"
        for event in self._assembler.apply_text_stream(segment_id, text, final, from_assistant, sent_at):
            yield event

    def history(self, messages: Iterable[ApiMessage]) -> list[CallEvent]:
        """The polled `GET …/messages`: fills in what the data channel lost."""
        docs: list[dict[str, Any]] = []
        for message in messages:
            doc = dict(message.raw) if message.raw else {
                "id": message.id, "role": message.role, "content": message.content, "timestamp": message.timestamp
            }
            if self._is_typed_echo(message):
                continue
            docs.append(doc)
        return list(self._assembler.apply_history(docs))

    def typed_line(self, text: str) -> list[CallEvent]:
        """What the user typed, shown right away."""
        self._typed_pending.append(text)
        item = {"id": f"typed-{next(self._local_ids)}", "role": "user", "content": text, "isComplete": True}
        return list(self._assembler.apply_message(item))

    def _is_typed_echo(self, message: ApiMessage) -> bool:
        if message.id is not None and message.id in self._typed_server_ids:
            return True
        if message.role == "user" and message.content in self._typed_pending:
            self._typed_pending.remove(message.content)
            if message.id is not None:
                self._typed_server_ids.add(message.id)
            return True
        return False
