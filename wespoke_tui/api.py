"""The Wespoke embed API over HTTP: call token, call control, message history, text chat.

Every failure, whatever the server or the network did, comes out as a `CallError` whose user
message is in the client's language; the API key never appears in an error or a log line, and
the LiveKit token is never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from wespoke_tui import __version__
from wespoke_tui.errors import (
    CONNECTION_ERROR,
    INVALID_RESPONSE,
    CallError,
    Lang,
    error_from_response,
    scrub,
)
from wespoke_tui.settings import mask_key

log = logging.getLogger("wespoke_tui.api")

USER_AGENT = f"wespoke-tui/{__version__}"
# Connect fast or not at all; a healthy API answers well within the read bound.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# `/end` is a courtesy: the room disconnect is what ends the call, so never wait long on it.
END_CALL_TIMEOUT = 2.0
# A chat has no room to leave: its /end is what ends it, so it gets longer than a call's, but a
# quit still never waits on it past the app's shutdown bound.
END_CHAT_TIMEOUT = 4.0
# Error bodies are only read this far: an HTML page or a runaway proxy must not eat memory.
ERROR_BODY_LIMIT = 64 * 1024
# A success body larger than this is not a plausible answer of the contract.
SUCCESS_BODY_LIMIT = 1024 * 1024


# ---------------------------------------------------------------------------- typed answers


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


# ------------------------------------------------------------------- chat stream (SSE) events


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
        return ChatMessageStart(message_id=_str(doc.get("messageId")))
    if name == "message:chunk":
        return ChatMessageChunk(
            accumulated_content=_str(doc.get("accumulatedContent")) or "",
            delta=_str(doc.get("content")) or _str(doc.get("chunk")) or "",
        )
    if name == "message:complete":
        raw = doc.get("message")
        message = _message(raw) if isinstance(raw, dict) else None
        return ChatMessageComplete(message=message or ApiMessage(id=None, role="assistant", content=""))
    if name in ("tool:started", "tool:completed", "tool:failed"):
        details = doc.get("toolDetails")
        return ChatToolEvent(
            phase=name.split(":", 1)[1],
            tool_name=_str(doc.get("toolName")),
            tool_type=_str(doc.get("toolType")),
            details=details if isinstance(details, dict) else {},
        )
    if name == "knowledge:used":
        sources = doc.get("sources")
        return ChatKnowledgeUsed(sources=sources if isinstance(sources, list) else [])
    if name == "error":
        return ChatStreamError(message=_str(doc.get("message")) or "Chat error", code=_str(doc.get("code")))
    if name == "done":
        return ChatDone()
    log.debug("chat stream: ignoring unknown event %r", name)
    return None


# ------------------------------------------------------------------------ tolerant parsing


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _assistant(value: Any) -> AssistantInfo:
    if not isinstance(value, dict):
        return AssistantInfo()
    return AssistantInfo(id=_str(value.get("id")), name=_str(value.get("name")), version=_int(value.get("version")))


def _message(value: dict[str, Any]) -> ApiMessage | None:
    content = value.get("content")
    if content is None:
        content = value.get("message")  # some history rows name it `message`
    text = _str(content)
    if text is None:
        return None
    stamp = value.get("timestamp")
    return ApiMessage(
        id=_str(value.get("id")),
        role=_str(value.get("role")) or "assistant",
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
        RateLimit(remaining=_int(limit.get("remaining")), limit=_int(limit.get("limit")), reset_at=_str(limit.get("resetAt")))
        if isinstance(limit, dict)
        else None
    )
    return CallToken(
        url=url,
        token=token,
        call_id=_str(data.get("callId")),
        room_name=_str(data.get("roomName")),
        assistant=_assistant(data.get("assistant")),
        rate_limit=rate_limit,
    )


def parse_messages(doc: Any) -> list[ApiMessage]:
    """`{data: {messages: [...]}}` (or a bare list) as messages; rows that are not messages are skipped."""
    data = doc.get("data", doc) if isinstance(doc, dict) else doc
    rows = data.get("messages") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ValueError("messages answer has no `messages` list")
    return [m for m in (_message(r) for r in rows if isinstance(r, dict)) if m is not None]


def parse_chat_session(doc: Any) -> ChatSession:
    data = doc.get("data", doc) if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise ValueError("chat answer has no `data` object")
    chat_id = _str(data.get("chatId"))
    if not chat_id:
        raise ValueError("chat answer lacks chatId")
    greeting = data.get("greetingMessage")
    if isinstance(greeting, dict):
        greeting = greeting.get("content")
    return ChatSession(
        chat_id=chat_id,
        assistant=_assistant(data.get("assistant")),
        started_at=_str(data.get("startedAt")),
        greeting_message=_str(greeting),
    )


# ------------------------------------------------------------------------------ the client


def _timeout(value: float | httpx.Timeout) -> httpx.Timeout:
    if isinstance(value, httpx.Timeout):
        return value
    return httpx.Timeout(value, connect=min(value, DEFAULT_TIMEOUT.connect or value))


def _deadline(timeout: httpx.Timeout) -> float:
    """A bound on the whole request, so a server that trickles bytes cannot stall us forever."""
    return (timeout.connect or 0) + (timeout.read or 0)


class WespokeClient:
    """Async client of the Wespoke embed API. Use as `async with WespokeClient(...) as api:`."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        origin: str | None = None,
        lang: Lang = "en",
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.lang: Lang = lang
        self.origin = origin
        self._api_key = api_key
        self._timeout = _timeout(timeout)
        headers = {
            "Authorization": f"Bearer {api_key}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        if origin:
            headers["Origin"] = origin
        try:
            self._http = httpx.AsyncClient(
                base_url=self.api_url, headers=headers, timeout=self._timeout, verify=True, follow_redirects=False
            )
        except httpx.InvalidURL as exc:
            raise self._error(CONNECTION_ERROR, f"invalid API URL: {exc}") from None

    def __repr__(self) -> str:
        return f"WespokeClient(api_url={self.api_url!r}, api_key={mask_key(self._api_key)!r}, origin={self.origin!r})"

    async def __aenter__(self) -> WespokeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- calls

    async def create_token(
        self,
        assistant_id: str,
        metadata: Mapping[str, Any] | None = None,
        assistant_overrides: Mapping[str, Any] | None = None,
    ) -> CallToken:
        body: dict[str, Any] = {"assistantId": assistant_id, "metadata": dict(metadata or {})}
        if assistant_overrides:
            body["assistantOverrides"] = dict(assistant_overrides)
        doc = await self._request_json("POST", "/api/v1/embed/token", json_body=body)
        try:
            token = parse_token(doc)
        except ValueError as exc:
            raise self._error(INVALID_RESPONSE, str(exc)) from None
        log.debug("token for call %s, room %s", token.call_id, token.room_name)
        return token

    async def end_call(self, call_id: str, timeout: float = END_CALL_TIMEOUT) -> None:
        await self._request_json("POST", f"/api/v1/embed/calls/{_seg(call_id)}/end", json_body={}, timeout=timeout)

    async def set_muted(self, call_id: str, muted: bool) -> None:
        await self._request_json("POST", f"/api/v1/embed/calls/{_seg(call_id)}/mute", json_body={"muted": muted})

    async def send_message(self, call_id: str, text: str) -> None:
        await self._request_json("POST", f"/api/v1/embed/calls/{_seg(call_id)}/messages", json_body={"message": text})

    async def list_messages(self, call_id: str, limit: int = 50, offset: int = 0) -> list[ApiMessage]:
        doc = await self._request_json(
            "GET", f"/api/v1/embed/calls/{_seg(call_id)}/messages", params={"limit": limit, "offset": offset}
        )
        try:
            return parse_messages(doc)
        except ValueError as exc:
            raise self._error(INVALID_RESPONSE, str(exc)) from None

    async def delete_call(self, call_id: str) -> None:
        """Deletes the call's record from history; it does not end a live call (disconnect first)."""
        await self._request_json("DELETE", f"/api/v1/calls/{_seg(call_id)}")

    # -- text chat

    async def start_chat(
        self,
        assistant_id: str,
        metadata: Mapping[str, Any] | None = None,
        assistant_overrides: Mapping[str, Any] | None = None,
    ) -> ChatSession:
        body: dict[str, Any] = {"assistantId": assistant_id, "metadata": dict(metadata or {})}
        if assistant_overrides:
            body["assistantOverrides"] = dict(assistant_overrides)
        doc = await self._request_json("POST", "/api/v1/embed/chat", json_body=body)
        try:
            return parse_chat_session(doc)
        except ValueError as exc:
            raise self._error(INVALID_RESPONSE, str(exc)) from None

    async def send_chat_message(self, chat_id: str, content: str) -> AsyncIterator[ChatEvent]:
        """The assistant's answer as typed events, as the server streams them (SSE).

        Ends after `done` or when the server closes the stream. Errors (CallError) are raised
        when iterating; an `error` event of the stream is yielded as ChatStreamError.
        """
        path = f"/api/v1/embed/chat/{_seg(chat_id)}/messages"
        started = time.monotonic()
        log.debug("POST %s (stream, key %s)", path, mask_key(self._api_key))
        try:
            async with self._http.stream(
                "POST", path, json={"content": content}, headers={"Accept": "text/event-stream"}
            ) as response:
                if response.status_code >= 300:
                    body = await _read_limited(response, ERROR_BODY_LIMIT)
                    raise self._http_error(response, body, started)
                parser = SseParser()
                events = 0
                async for text in response.aiter_text():
                    for name, data in parser.feed(text):
                        event = chat_event(name, data)
                        if event is not None:
                            events += 1
                            yield event
                            if isinstance(event, ChatDone):
                                return
                if events == 0:  # e.g. a JSON or HTML page where the stream should be
                    raise self._error(INVALID_RESPONSE, f"POST {path}: answer has no chat events")
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._connection_error(exc) from None

    async def end_chat(self, chat_id: str, timeout: float = END_CHAT_TIMEOUT) -> None:
        await self._request_json("POST", f"/api/v1/embed/chat/{_seg(chat_id)}/end", json_body={}, timeout=timeout)

    # -- plumbing

    async def _request_json(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; the decoded JSON of a 2xx answer (None when it has no body)."""
        # An explicit `timeout` bounds the whole request (end_call: a hang-up never waits on it).
        request_timeout = _timeout(timeout) if timeout is not None else self._timeout
        deadline = timeout if timeout is not None else _deadline(request_timeout)
        started = time.monotonic()
        log.debug("%s %s (key %s, origin %s)", method, path, mask_key(self._api_key), self.origin or "-")
        try:
            async with asyncio.timeout(deadline):
                async with self._http.stream(
                    method, path, json=json_body, params=params, timeout=request_timeout
                ) as response:
                    ok = 200 <= response.status_code < 300
                    body = await _read_limited(response, SUCCESS_BODY_LIMIT if ok else ERROR_BODY_LIMIT)
        except TimeoutError:
            raise self._error(CONNECTION_ERROR, f"{method} {path}: no answer within {deadline:g} s") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._connection_error(exc) from None
        except _BodyTooLarge:
            raise self._error(INVALID_RESPONSE, f"{method} {path}: answer larger than {SUCCESS_BODY_LIMIT} bytes") from None
        if not ok:
            raise self._http_error(response, body, started)
        log.debug("%s %s → %d in %.0f ms", method, path, response.status_code, (time.monotonic() - started) * 1000)
        if not body.strip():
            return None
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise self._error(INVALID_RESPONSE, f"{method} {path}: answer is not JSON") from None

    def _http_error(self, response: httpx.Response, body: bytes, started: float) -> CallError:
        error = error_from_response(
            response.status_code, body, response.headers, lang=self.lang, secrets=(self._api_key,)
        )
        log.debug(
            "%s %s → %d %s in %.0f ms: %s",
            response.request.method,
            response.request.url.path,
            response.status_code,
            error.code,
            (time.monotonic() - started) * 1000,
            error.message,
        )
        return error

    def _connection_error(self, exc: httpx.HTTPError | httpx.InvalidURL) -> CallError:
        detail = str(exc) or type(exc).__name__
        message = scrub(f"{type(exc).__name__}: {detail}", (self._api_key,))
        log.debug("connection error: %s", message)
        return self._error(CONNECTION_ERROR, message)

    def _error(self, code: str, message: str) -> CallError:
        return CallError.of(code, scrub(message, (self._api_key,)), lang=self.lang)


class _BodyTooLarge(Exception):
    pass


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    """At most `limit` bytes of the body; an error body is cut there, a success body is refused."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            if 200 <= response.status_code < 300:
                raise _BodyTooLarge
            break
    return b"".join(chunks)[:limit]


def _seg(value: str) -> str:
    """An id as one URL path segment: nothing in it can change the path."""
    return quote(value, safe="")
