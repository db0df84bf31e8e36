"""The Wespoke embed API over HTTP: call token, call control, message history, text chat.

Every failure, whatever the server or the network did, comes out as a `CallError` (the status
→ code mapping is `errors.error_from_response`); no request waits past its deadline or reads
past its size bound; the API key never appears in an error or a log line, and the LiveKit
token is never logged. What an answer means is `answers.py`'s, the chat stream's events
`chat_stream.py`'s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from wespoke_tui import __version__
from wespoke_tui.api.answers import (
    ApiMessage,
    CallToken,
    ChatSession,
    parse_chat_session,
    parse_messages,
    parse_token,
)
from wespoke_tui.api.chat_stream import ChatDone, ChatEvent, SseParser, chat_event
from wespoke_tui.errors import (
    CONNECTION_ERROR,
    INVALID_RESPONSE,
    CallError,
    ErrorCode,
    error_from_response,
    scrub,
)
from wespoke_tui.settings import mask_key

log = logging.getLogger("wespoke_tui.api")  # the package logs under one name

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
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.api_url = api_url.rstrip("/")
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
        error = error_from_response(response.status_code, body, response.headers, secrets=(self._api_key,))
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

    def _error(self, code: ErrorCode, message: str) -> CallError:
        return CallError.of(code, scrub(message, (self._api_key,)))


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
