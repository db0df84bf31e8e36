"""The transcript side of a call: data messages, `lk.transcription` streams, the polled history
and the user's typed lines, merged by one `TranscriptAssembler` so nothing shows twice."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from wespoke_tui.agent_events import TranscriptAssembler, parse_data_message
from wespoke_tui.api import ApiMessage
from wespoke_tui.events import CallEvent

SEGMENT_ID_ATTRIBUTE = "lk.segment_id"
FINAL_ATTRIBUTE = "lk.transcription_final"


class DataHandler:
    """Per call. Every method returns the events to emit and never raises on bad input."""

    def __init__(self) -> None:
        self._assembler = TranscriptAssembler()
        self._local_ids = itertools.count(1)
        # Lines the user typed, shown at once under a local id; the history echoes them back
        # under the server's id, and those copies are skipped (by text, each once, then by id).
        self._typed_pending: list[str] = []
        self._typed_server_ids: set[str] = set()

    def data_packet(self, payload: bytes, topic: str | None) -> list[CallEvent]:
        return parse_data_message(payload, topic, self._assembler)

    def transcription(
        self, stream_id: str, text_so_far: str, attributes: Mapping[str, str], *, closed: bool, from_assistant: bool
    ) -> list[CallEvent]:
        """A standard LiveKit transcription text stream: the segment's text so far."""
        segment_id = attributes.get(SEGMENT_ID_ATTRIBUTE) or stream_id
        final = closed and attributes.get(FINAL_ATTRIBUTE, "true").lower() != "false"
        return list(self._assembler.apply_text_stream(segment_id, text_so_far, final, from_assistant))

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
