"""The API's answers as typed values: token, messages, chat session.

Parsing is tolerant where the contract lets a field be absent or of another type (it becomes
None or a default), strict only where the answer is useless without it: a parser raises
`ValueError` naming what is missing, and the client turns that into `INVALID_RESPONSE`.
No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AssistantInfo:
    id: str | None = None
    name: str | None = None
    version: int | None = None


@dataclass(frozen=True, slots=True)
class RateLimit:
    remaining: int | None = None
    limit: int | None = None
    reset_at: str | None = None


@dataclass(frozen=True, slots=True)
class CallToken:
    """What `POST /api/v1/embed/token` gave: where and how to join the call's LiveKit room."""

    url: str
    token: str = field(repr=False)  # a bearer credential for the room: never printed
    call_id: str | None = None
    room_name: str | None = None
    assistant: AssistantInfo = field(default_factory=AssistantInfo)
    rate_limit: RateLimit | None = None


@dataclass(frozen=True, slots=True)
class ApiMessage:
    """One message of a call's or a chat's history."""

    id: str | None
    role: str
    content: str
    timestamp: str | float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ChatSession:
    chat_id: str
    assistant: AssistantInfo = field(default_factory=AssistantInfo)
    started_at: str | None = None
    greeting_message: str | None = None


# ------------------------------------------------------------------------ tolerant parsing


def str_or_none(value: Any) -> str | None:
    """A string field as a string (a number counts, spelt out); anything else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def int_or_none(value: Any) -> int | None:
    """An integer field as an int (a whole float counts); anything else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def parse_assistant(value: Any) -> AssistantInfo:
    if not isinstance(value, dict):
        return AssistantInfo()
    return AssistantInfo(
        id=str_or_none(value.get("id")), name=str_or_none(value.get("name")), version=int_or_none(value.get("version"))
    )


def parse_message(value: dict[str, Any]) -> ApiMessage | None:
    """One history row as a message; None when it has no text."""
    content = value.get("content")
    if content is None:
        content = value.get("message")  # some history rows name it `message`
    text = str_or_none(content)
    if text is None:
        return None
    stamp = value.get("timestamp")
    return ApiMessage(
        id=str_or_none(value.get("id")),
        role=str_or_none(value.get("role")) or "assistant",
        content=text,
        timestamp=stamp if isinstance(stamp, (str, int, float)) and not isinstance(stamp, bool) else None,
        raw=value,
    )


def parse_token(doc: Any) -> CallToken:
    """The token answer as a CallToken; raises ValueError naming what is missing."""
    if doc is None:
        raise ValueError("token answer is empty: no url and token")
    if not isinstance(doc, dict):
        raise ValueError("token answer is not a JSON object")
    data = doc.get("data", doc)
    if not isinstance(data, dict):
        raise ValueError("token answer has no `data` object")
    url, token = data.get("url"), data.get("token")
    if not (isinstance(url, str) and url and isinstance(token, str) and token):
        missing = [name for name, value in (("url", url), ("token", token)) if not isinstance(value, str) or not value]
        raise ValueError(f"token answer lacks {' and '.join(missing)}")
    limit = data.get("rateLimit")
    rate_limit = (
        RateLimit(
            remaining=int_or_none(limit.get("remaining")),
            limit=int_or_none(limit.get("limit")),
            reset_at=str_or_none(limit.get("resetAt")),
        )
        if isinstance(limit, dict)
        else None
    )
    return CallToken(
        url=url,
        token=token,
        call_id=str_or_none(data.get("callId")),
        room_name=str_or_none(data.get("roomName")),
        assistant=parse_assistant(data.get("assistant")),
        rate_limit=rate_limit,
    )


def parse_messages(doc: Any) -> list[ApiMessage]:
    """`{data: {messages: [...]}}` (or a bare list) as messages; rows that are not messages are skipped."""
    data = doc.get("data", doc) if isinstance(doc, dict) else doc
    rows = data.get("messages") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ValueError("messages answer has no `messages` list")
    return [m for m in (parse_message(r) for r in rows if isinstance(r, dict)) if m is not None]


def parse_chat_session(doc: Any) -> ChatSession:
    data = doc.get("data", doc) if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise ValueError("chat answer has no `data` object")
    chat_id = str_or_none(data.get("chatId"))
    if not chat_id:
        raise ValueError("chat answer lacks chatId")
    greeting = data.get("greetingMessage")
    if isinstance(greeting, dict):
        greeting = greeting.get("content")
    return ChatSession(
        chat_id=chat_id,
        assistant=parse_assistant(data.get("assistant")),
        started_at=str_or_none(data.get("startedAt")),
        greeting_message=str_or_none(greeting),
    )
