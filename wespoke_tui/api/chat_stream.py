"""The chat's answer stream (Server-Sent Events) as typed events.

The parser follows the WHATWG rules whatever way the text is cut into chunks; an event this
client does not know, or cannot read, is logged and dropped, never raised: a newer server
must not break an older client. No I/O here; the client feeds the bytes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from wespoke_tui.api.answers import ApiMessage, parse_message, str_or_none

log = logging.getLogger("wespoke_tui.api")  # the package logs under one name


@dataclass(frozen=True, slots=True)
class ChatMessageStart:
    message_id: str | None


@dataclass(frozen=True, slots=True)
class ChatMessageChunk:
    accumulated_content: str
    delta: str = ""


@dataclass(frozen=True, slots=True)
class ChatMessageComplete:
    message: ApiMessage


@dataclass(frozen=True, slots=True)
class ChatToolEvent:
    phase: str  # started | completed | failed
    tool_name: str | None = None
    tool_type: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChatKnowledgeUsed:
    sources: list[Any]


@dataclass(frozen=True, slots=True)
class ChatStreamError:
    message: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class ChatDone:
    pass


ChatEvent = (
    ChatMessageStart
    | ChatMessageChunk
    | ChatMessageComplete
    | ChatToolEvent
    | ChatKnowledgeUsed
    | ChatStreamError
    | ChatDone
)


class SseParser:
    """Incremental Server-Sent Events parser (WHATWG rules): feed text, get (event, data) pairs."""

    def __init__(self) -> None:
        self._buffer = ""
        self._event = ""
        self._data: list[str] = []

    def feed(self, text: str) -> list[tuple[str, str]]:
        self._buffer += text
        out: list[tuple[str, str]] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                return out
            line, self._buffer = self._buffer[: cut[0]], self._buffer[cut[1]:]
            if line == "":
                if self._data:
                    out.append((self._event or "message", "\n".join(self._data)))
                self._event, self._data = "", []
                continue
            if line.startswith(":"):
                continue  # comment / keep-alive
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)


def _line_end(buffer: str) -> tuple[int, int] | None:
    """Start and end of the first line break in `buffer` (\\n, \\r\\n or \\r), or None.

    A trailing lone \\r is not a break yet: its \\n may be in the next chunk.
    """
    for i, ch in enumerate(buffer):
        if ch == "\n":
            return i, i + 1
        if ch == "\r":
            if i + 1 == len(buffer):
                return None
            return i, i + (2 if buffer[i + 1] == "\n" else 1)
    return None


def chat_event(name: str, data: str) -> ChatEvent | None:
    """One SSE event of the chat stream as a typed event; None for unknown or unreadable ones."""
    try:
        doc = json.loads(data) if data.strip() else {}
    except ValueError:
        log.debug("chat stream: unreadable data for event %r", name)
        return None
    if not isinstance(doc, dict):
        doc = {}
    if name == "message" and isinstance(doc.get("type"), str):
        name = doc["type"]  # data-only streams carry the event name inside the JSON
    if name == "message:start":
        return ChatMessageStart(message_id=str_or_none(doc.get("messageId")))
    if name == "message:chunk":
        return ChatMessageChunk(
            accumulated_content=str_or_none(doc.get("accumulatedContent")) or "",
            delta=str_or_none(doc.get("content")) or str_or_none(doc.get("chunk")) or "",
        )
    if name == "message:complete":
        raw = doc.get("message")
        message = parse_message(raw) if isinstance(raw, dict) else None
        return ChatMessageComplete(message=message or ApiMessage(id=None, role="assistant", content=""))
    if name in ("tool:started", "tool:completed", "tool:failed"):
        details = doc.get("toolDetails")
        return ChatToolEvent(
            phase=name.split(":", 1)[1],
            tool_name=str_or_none(doc.get("toolName")),
            tool_type=str_or_none(doc.get("toolType")),
            details=details if isinstance(details, dict) else {},
        )
    if name == "knowledge:used":
        sources = doc.get("sources")
        return ChatKnowledgeUsed(sources=sources if isinstance(sources, list) else [])
    if name == "error":
        return ChatStreamError(message=str_or_none(doc.get("message")) or "Chat error", code=str_or_none(doc.get("code")))
    if name == "done":
        return ChatDone()
    log.debug("chat stream: ignoring unknown event %r", name)
    return None
