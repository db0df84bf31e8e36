"""A local Wespoke-compatible embed API server for tests, benchmarks and trying things by hand.

Real HTTP on 127.0.0.1 (stdlib `ThreadingHTTPServer` on a background thread), the whole contract
of the embed API, real LiveKit access tokens, everything kept in memory and recorded so tests
can assert on it, and failure injection (`fail_next`) for every way the contract can fail.

By hand:
    python -m tests.stack.wespoke_server --port 8787 --livekit-url ws://127.0.0.1:7880 \\
        --key pk_test_... --assistant asst_demo
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import logging
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from jwt.warnings import InsecureKeyLengthWarning
from livekit import api as lkapi

log = logging.getLogger("tests.stack.wespoke_server")

Dispatch = Callable[["CallRecord", "WespokeServer"], None]

# A chat message with this word gets a tool call and knowledge sources before its answer.
CHAT_TOOL_WORD = "weather"
SSE_DROP = "drop-connection"  # not an event: where the stream is cut

LEAVE_IN_FLIGHT_S = 1.0

ERROR_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("INVALID_REQUEST", "Invalid request"),
    401: ("UNAUTHORIZED", "Invalid API key"),
    402: ("INSUFFICIENT_CREDITS", "Insufficient credits"),
    403: ("DOMAIN_NOT_ALLOWED", "Domain not in allowed list"),
    404: ("NOT_FOUND", "Not found"),
    429: ("RATE_LIMITED", "Rate limit exceeded"),
    500: ("SERVER_ERROR", "Internal server error"),
}

# Endpoint names (usable in `fail_next`) and their routes. Ids are one path segment.
ROUTES: list[tuple[str, str, re.Pattern[str]]] = [
    ("token", "POST", re.compile(r"^/api/v1/embed/token$")),
    ("end", "POST", re.compile(r"^/api/v1/embed/calls/(?P<id>[^/]+)/end$")),
    ("mute", "POST", re.compile(r"^/api/v1/embed/calls/(?P<id>[^/]+)/mute$")),
    ("send_message", "POST", re.compile(r"^/api/v1/embed/calls/(?P<id>[^/]+)/messages$")),
    ("list_messages", "GET", re.compile(r"^/api/v1/embed/calls/(?P<id>[^/]+)/messages$")),
    ("delete", "DELETE", re.compile(r"^/api/v1/calls/(?P<id>[^/]+)$")),
    ("chat_start", "POST", re.compile(r"^/api/v1/embed/chat$")),
    ("chat_message", "POST", re.compile(r"^/api/v1/embed/chat/(?P<id>[^/]+)/messages$")),
    ("chat_end", "POST", re.compile(r"^/api/v1/embed/chat/(?P<id>[^/]+)/end$")),
    ("test_add_message", "POST", re.compile(r"^/_test/calls/(?P<id>[^/]+)/messages$")),
    ("test_get_call", "GET", re.compile(r"^/_test/calls/(?P<id>[^/]+)$")),
]

MAX_REQUEST_BODY = 1024 * 1024


def _now_iso(when: float | None = None) -> str:
    return datetime.fromtimestamp(when if when is not None else time.time(), timezone.utc).isoformat()


# ------------------------------------------------------------------------------- records


@dataclass
class KeyRecord:
    key: str
    origins: list[str] | None  # None: any origin (or none at all) is allowed
    credits: int
    limit: int = 100
    window_s: float = 60.0
    starts: deque[float] = field(default_factory=deque)  # times of calls/chats started in the window


@dataclass
class MuteChange:
    muted: bool
    at: float


@dataclass
class RequestRecord:
    method: str
    path: str
    headers: dict[str, str]  # without Authorization
    at: float
    status: int | None = None


@dataclass
class CallRecord:
    call_id: str
    key: str
    assistant_id: str
    metadata: dict[str, Any]
    overrides: dict[str, Any] | None
    origin: str | None
    room_name: str
    identity: str
    created_at: float
    mute_history: list[MuteChange] = field(default_factory=list)
    ended: bool = False
    ended_at: float | None = None
    deleted: bool = False
    deleted_at: float | None = None
    # Whether the call was live when the DELETE came: LiveKit still listed the caller in its room
    # `LEAVE_IN_FLIGHT_S` later (a Leave sent just before the DELETE may take a moment to land).
    # None: LiveKit gave no answer.
    live_at_delete: bool | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: list[RequestRecord] = field(default_factory=list)

    @property
    def muted(self) -> bool:
        return bool(self.mute_history) and self.mute_history[-1].muted

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["muted"] = self.muted
        return doc


@dataclass
class ChatRecord:
    chat_id: str
    key: str
    assistant_id: str
    metadata: dict[str, Any]
    overrides: dict[str, Any] | None
    origin: str | None
    started_at: float
    messages: list[dict[str, Any]] = field(default_factory=list)
    ended: bool = False
    ended_at: float | None = None


@dataclass
class FailRule:
    """An injected answer for the next `count` requests matching `target` (None: every one)."""

    target: str  # an endpoint name from ROUTES, or a glob on the path (starts with "/")
    status: int | None
    body: bytes | dict[str, Any] | None
    headers: dict[str, str]
    delay_s: float
    drop: bool
    count: int | None
    hits: int = 0

    def matches(self, endpoint: str | None, path: str) -> bool:
        if self.target.startswith("/"):
            return fnmatch.fnmatchcase(path, self.target)
        return self.target == endpoint


class _Reply(Exception):
    """Raised inside a handler to answer with a contract error."""

    def __init__(self, status: int, message: str | None = None, code: str | None = None, **extra: Any) -> None:
        default_code, default_message = ERROR_MESSAGES.get(status, ("ERROR", f"HTTP {status}"))
        self.status = status
        self.error = {"message": message or default_message, "code": code or default_code, **extra}
        self.headers: dict[str, str] = {}
        super().__init__(self.error["message"])


# -------------------------------------------------------------------------------- server


class WespokeServer:
    """The embed API on 127.0.0.1. `start()`/`stop()` or use as a context manager."""

    def __init__(
        self,
        livekit_url: str = "ws://127.0.0.1:7880",
        livekit_api_key: str = "devkey",
        livekit_api_secret: str = "secret",
        dispatch: Dispatch | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.livekit_url = livekit_url
        self.livekit_api_key = livekit_api_key
        self.livekit_api_secret = livekit_api_secret
        self.dispatch = dispatch
        self._host, self._port = host, port
        self._ssl_context = ssl_context
        self._lock = threading.RLock()
        self.keys: dict[str, KeyRecord] = {}
        self.assistants: dict[str, dict[str, Any]] = {}
        # Assistant id → the LiveKit Agents agent name its tokens dispatch (see add_assistant).
        self.agent_names: dict[str, str] = {}
        self.calls: dict[str, CallRecord] = {}
        self.chats: dict[str, ChatRecord] = {}
        self.requests: list[RequestRecord] = []
        self._rules: list[FailRule] = []
        self._chat_cuts: deque[str] = deque()  # see cut_next_chat_reply
        self.chat_ids: Iterator[str] | None = None  # ids for the next chats (snapshots need fixed ones)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.dispatch_errors: list[BaseException] = []

    # -- lifecycle

    def start(self) -> WespokeServer:
        handler = type("Handler", (_Handler,), {"app": self})
        httpd = _HTTPServer((self._host, self._port), handler)
        # A client that hangs up mid-answer is normal here (timeouts, huge bodies cut short).
        httpd.handle_error = lambda request, address: log.debug("connection from %s ended: %s", address, sys.exc_info()[1])  # type: ignore[method-assign]
        if self._ssl_context is not None:
            httpd.socket = self._ssl_context.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        # A short poll interval: `stop()` waits for it, and tests start and stop many servers.
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="wespoke-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> WespokeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self._host}:{self.port}"

    # -- state set-up

    def add_key(self, key: str, origins: list[str] | None = None, credits: int = 1000) -> None:
        with self._lock:
            self.keys[key] = KeyRecord(key=key, origins=list(origins) if origins is not None else None, credits=credits)

    def set_credits(self, key: str, credits: int) -> None:
        with self._lock:
            self.keys[key].credits = credits

    def set_rate_limit(self, key: str, limit: int, window_s: float) -> None:
        with self._lock:
            record = self.keys[key]
            record.limit, record.window_s = limit, window_s
            record.starts.clear()

    def add_assistant(self, assistant_id: str, name: str, version: int = 1, agent_name: str | None = None) -> None:
        """`agent_name`: the assistant is a LiveKit Agents worker registered under that name. Its
        tokens carry a room configuration that dispatches it (`RoomAgentDispatch`), so LiveKit
        starts it when the caller joins; the `dispatch` hook (the test assistant) is not used."""
        with self._lock:
            self.assistants[assistant_id] = {"id": assistant_id, "name": name, "version": version}
            if agent_name:
                self.agent_names[assistant_id] = agent_name
            else:
                self.agent_names.pop(assistant_id, None)

    def fail_next(
        self,
        target: str,
        status: int | None = None,
        body: bytes | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        delay_s: float = 0.0,
        drop: bool = False,
        count: int | None = 1,
    ) -> FailRule:
        """Make the next `count` matching requests fail (None: all of them until `clear_failures`).

        `target` is an endpoint name (token, end, mute, send_message, list_messages, delete,
        chat_start, chat_message, chat_end) or a glob on the path ("/api/v1/embed/calls/*").
        `status` None with `delay_s` answers normally, only late. `body` None gives the contract's
        error body for `status`; bytes are sent as they are (HTML, b"", anything); a dict as JSON.
        `drop` closes the connection without any answer (after `delay_s`).
        """
        if not target.startswith("/") and target not in {name for name, _, _ in ROUTES}:
            raise ValueError(f"unknown endpoint {target!r}")
        rule = FailRule(target, status, body, dict(headers or {}), delay_s, drop, count)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear_failures(self) -> None:
        with self._lock:
            self._rules.clear()
            self._chat_cuts.clear()

    def cut_next_chat_reply(self, how: str) -> None:
        """Cut the next chat reply after its first chunk: "error" sends the contract's `error`
        event (and no `done`), "drop" closes the connection there."""
        if how not in ("error", "drop"):
            raise ValueError(f"unknown cut {how!r}")
        with self._lock:
            self._chat_cuts.append(how)

    def add_message(self, call_id: str, role: str, content: str, message_id: str | None = None) -> dict[str, Any]:
        """Add a message to a call's history (what the assistant would have said)."""
        with self._lock:
            record = self.calls[call_id]
            message = {
                "id": message_id or f"msg_{secrets.token_hex(6)}",
                "role": role,
                "content": content,
                "timestamp": _now_iso(),
            }
            record.messages.append(message)
            return message

    def call_for_room(self, room_name: str) -> CallRecord | None:
        with self._lock:
            return next((c for c in self.calls.values() if c.room_name == room_name), None)

    # -- request handling (called on the handler threads)

    def _take_rule(self, endpoint: str | None, path: str) -> FailRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(endpoint, path):
                    rule.hits += 1
                    if rule.count is not None and rule.hits >= rule.count:
                        self._rules.remove(rule)
                    return rule
        return None

    def _authorize(self, headers: dict[str, str], *, starts_something: bool) -> KeyRecord:
        auth = headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        with self._lock:
            record = self.keys.get(key.strip()) if scheme.lower() == "bearer" else None
            if record is None:
                raise _Reply(401)
            origin = headers.get("origin")
            if record.origins is not None and origin not in record.origins:
                raise _Reply(403, f"Origin {origin or '(none)'} is not allowed for this key")
            if starts_something:
                now = time.monotonic()
                while record.starts and now - record.starts[0] >= record.window_s:
                    record.starts.popleft()
                if len(record.starts) >= record.limit:
                    retry = max(1, int(record.window_s - (now - record.starts[0]) + 0.999))
                    reply = _Reply(429, retryAfter=retry, resetAt=_now_iso(time.time() + retry))
                    reply.headers["Retry-After"] = str(retry)
                    raise reply
            return record

    def _rate_limit_info(self, record: KeyRecord) -> dict[str, Any]:
        reset = record.starts[0] + record.window_s - time.monotonic() if record.starts else record.window_s
        return {
            "remaining": max(0, record.limit - len(record.starts)),
            "limit": record.limit,
            "resetAt": _now_iso(time.time() + reset),
        }

    def _start_common(self, body: Any, headers: dict[str, str]) -> tuple[KeyRecord, dict[str, Any], dict[str, Any], dict[str, Any] | None]:
        """Auth, origin, rate limit, validation, assistant and credits: the checks of token and chat."""
        key = self._authorize(headers, starts_something=True)
        if not isinstance(body, dict):
            raise _Reply(400, "Body must be a JSON object")
        assistant_id = body.get("assistantId")
        if not isinstance(assistant_id, str) or not assistant_id:
            raise _Reply(400, "assistantId is required")
        metadata = body.get("metadata", {})
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict):
            raise _Reply(400, "metadata must be an object")
        overrides = body.get("assistantOverrides")
        if overrides is not None and not isinstance(overrides, dict):
            raise _Reply(400, "assistantOverrides must be an object")
        with self._lock:
            assistant = self.assistants.get(assistant_id)
            if assistant is None:
                raise _Reply(404, f"Assistant {assistant_id} not found", code="ASSISTANT_NOT_FOUND")
            if key.credits <= 0:
                raise _Reply(402)
            key.credits -= 1
            key.starts.append(time.monotonic())
        return key, dict(assistant), metadata, overrides

    def handle_token(self, body: Any, headers: dict[str, str]) -> dict[str, Any]:
        key, assistant, metadata, overrides = self._start_common(body, headers)
        call_id = f"call_{secrets.token_hex(8)}"
        room_name = f"call-{call_id}"
        identity = f"user-{call_id}"
        with self._lock:
            agent_name = self.agent_names.get(assistant["id"])
        agent_dispatch = None
        if agent_name:
            # What the agent learns of the call, as a backend would tell its agent.
            job_metadata = {"callId": call_id, "assistantId": assistant["id"], "metadata": metadata,
                            "assistantOverrides": overrides}
            agent_dispatch = lkapi.RoomAgentDispatch(agent_name=agent_name, metadata=json.dumps(job_metadata))
        token = self._mint(room_name, identity, agent_dispatch)
        record = CallRecord(
            call_id=call_id,
            key=key.key,
            assistant_id=assistant["id"],
            metadata=metadata,
            overrides=overrides,
            origin=headers.get("origin"),
            room_name=room_name,
            identity=identity,
            created_at=time.time(),
        )
        with self._lock:
            self.calls[call_id] = record
            rate_limit = self._rate_limit_info(key)
        if self.dispatch is not None and agent_dispatch is None:
            threading.Thread(target=self._run_dispatch, args=(record,), name=f"dispatch-{call_id}", daemon=True).start()
        return {
            "callId": call_id,
            "token": token,
            "url": self.livekit_url,
            "roomName": room_name,
            "assistant": assistant,
            "rateLimit": rate_limit,
        }

    def _mint(self, room_name: str, identity: str, agent_dispatch: lkapi.RoomAgentDispatch | None = None) -> str:
        """A real LiveKit access token: join `room_name` as `identity`, publish, subscribe, data;
        with `agent_dispatch`, the room the token creates dispatches that agent."""
        grants = lkapi.VideoGrants(
            room_join=True, room=room_name, can_publish=True, can_subscribe=True, can_publish_data=True
        )
        token = (
            lkapi.AccessToken(self.livekit_api_key, self.livekit_api_secret)
            .with_identity(identity)
            .with_name("Caller")
            .with_metadata(json.dumps({"role": "user"}))
            .with_grants(grants)
            .with_ttl(timedelta(hours=1))
        )
        if agent_dispatch is not None:
            token = token.with_room_config(lkapi.RoomConfiguration(agents=[agent_dispatch]))
        with warnings.catch_warnings():
            # The dev server's secret is the short word "secret"; that is its choice, not a bug here.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return token.to_jwt()

    def _caller_stays(self, record: CallRecord) -> bool | None:
        """Whether LiveKit lists the call's caller in its room for `LEAVE_IN_FLIGHT_S` from now."""
        http_url = "http" + self.livekit_url.removeprefix("ws")

        async def ask() -> bool:
            deadline = time.monotonic() + LEAVE_IN_FLIGHT_S
            async with lkapi.LiveKitAPI(http_url, self.livekit_api_key, self.livekit_api_secret) as lk:
                while True:
                    try:
                        resp = await lk.room.list_participants(lkapi.ListParticipantsRequest(room=record.room_name))
                    except lkapi.TwirpError as exc:
                        if exc.code == "not_found":
                            return False
                        raise
                    if all(p.identity != record.identity for p in resp.participants):
                        return False
                    if time.monotonic() >= deadline:
                        return True
                    await asyncio.sleep(0.02)

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InsecureKeyLengthWarning)
                return asyncio.run(ask())
        except Exception:
            log.warning("could not ask LiveKit who is in %s", record.room_name, exc_info=True)
            return None

    def _run_dispatch(self, record: CallRecord) -> None:
        try:
            assert self.dispatch is not None
            self.dispatch(record, self)
        except BaseException as exc:  # recorded so the test that set `dispatch` can see it
            log.error("dispatch failed for %s: %r", record.call_id, exc)
            self.dispatch_errors.append(exc)

    def _live_call(self, call_id: str, headers: dict[str, str]) -> CallRecord:
        key = self._authorize(headers, starts_something=False)
        with self._lock:
            record = self.calls.get(call_id)
            if record is None or record.deleted or record.key != key.key:
                raise _Reply(404, f"Call {call_id} not found", code="CALL_NOT_FOUND")
            return record

    def handle_end(self, call_id: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
        record = self._live_call(call_id, headers)
        with self._lock:
            if not record.ended:
                record.ended, record.ended_at = True, time.time()
        return {"callId": call_id, "status": "ended"}

    def handle_mute(self, call_id: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
        record = self._live_call(call_id, headers)
        if not isinstance(body, dict) or not isinstance(body.get("muted"), bool):
            raise _Reply(400, "muted must be a boolean")
        with self._lock:
            record.mute_history.append(MuteChange(body["muted"], time.time()))
        return {"muted": body["muted"]}

    def handle_send_message(self, call_id: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
        record = self._live_call(call_id, headers)
        text = body.get("message") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise _Reply(400, "message must be a non-empty string")
        if record.ended:
            raise _Reply(400, "Call has ended")
        message = self.add_message(call_id, "user", text)
        return {"messageId": message["id"]}

    def handle_list_messages(self, call_id: str, query: dict[str, list[str]], headers: dict[str, str]) -> dict[str, Any]:
        record = self._live_call(call_id, headers)
        try:
            limit = int(query.get("limit", ["50"])[0])
            offset = int(query.get("offset", ["0"])[0])
        except ValueError:
            raise _Reply(400, "limit and offset must be integers") from None
        if not 1 <= limit <= 100 or offset < 0:
            raise _Reply(400, "limit must be 1..100 and offset >= 0")
        with self._lock:
            page = [dict(m) for m in record.messages[offset : offset + limit]]
            total = len(record.messages)
        return {"messages": page, "total": total, "limit": limit, "offset": offset}

    def handle_delete(self, call_id: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
        record = self._live_call(call_id, headers)
        live = self._caller_stays(record)
        with self._lock:
            record.live_at_delete = live
            record.deleted, record.deleted_at = True, time.time()
        return {"callId": call_id, "deleted": True}

    def handle_chat_start(self, body: Any, headers: dict[str, str]) -> dict[str, Any]:
        key, assistant, metadata, overrides = self._start_common(body, headers)
        chat_id = next(self.chat_ids, None) if self.chat_ids is not None else None
        chat_id = chat_id or f"chat_{secrets.token_hex(8)}"
        greeting = (overrides or {}).get("firstMessage") or f"Hello! I am {assistant['name']}. How can I help?"
        record = ChatRecord(
            chat_id=chat_id,
            key=key.key,
            assistant_id=assistant["id"],
            metadata=metadata,
            overrides=overrides,
            origin=headers.get("origin"),
            started_at=time.time(),
        )
        record.messages.append({"id": f"msg_{secrets.token_hex(6)}", "role": "assistant", "content": greeting, "timestamp": _now_iso()})
        with self._lock:
            self.chats[chat_id] = record
        return {"chatId": chat_id, "assistant": assistant, "startedAt": _now_iso(record.started_at), "greetingMessage": greeting}

    def _live_chat(self, chat_id: str, headers: dict[str, str]) -> ChatRecord:
        key = self._authorize(headers, starts_something=False)
        with self._lock:
            record = self.chats.get(chat_id)
            if record is None or record.key != key.key:
                raise _Reply(404, f"Chat {chat_id} not found", code="CHAT_NOT_FOUND")
            if record.ended:
                raise _Reply(404, f"Chat {chat_id} has ended", code="CHAT_ENDED")
            return record

    def chat_reply_events(self, chat_id: str, body: Any, headers: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
        """Validate a chat message and return the SSE events of the (echo) answer."""
        record = self._live_chat(chat_id, headers)
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, str) or not content.strip():
            raise _Reply(400, "content must be a non-empty string")
        reply_id = f"msg_{secrets.token_hex(6)}"
        reply = f"You said: {content}"
        with self._lock:
            record.messages.append({"id": f"msg_{secrets.token_hex(6)}", "role": "user", "content": content, "timestamp": _now_iso()})
            cut = self._chat_cuts.popleft() if self._chat_cuts else None
        events: list[tuple[str, dict[str, Any]]] = [("message:start", {"messageId": reply_id})]
        if CHAT_TOOL_WORD in content.lower():
            # The scripted tool use: a weather lookup from the knowledge base, before the answer.
            tool = {"toolName": "lookup_weather", "toolType": "function", "messageId": reply_id}
            events.append(("tool:started", tool))
            events.append(("tool:completed", {**tool, "result": {"celsius": 21}}))
            events.append(("knowledge:used", {"sources": [{"id": "kb_1", "title": "Weather FAQ"}, "kb_2"]}))
        words = reply.split(" ")
        accumulated = ""
        for i in range(0, len(words), 2):
            delta = " ".join(words[i : i + 2]) + (" " if i + 2 < len(words) else "")
            accumulated += delta
            events.append(("message:chunk", {"messageId": reply_id, "content": delta, "accumulatedContent": accumulated}))
            if cut == "error":
                events.append(("error", {"message": "The language model failed", "code": "LLM_ERROR"}))
                return events
            if cut == "drop":
                events.append((SSE_DROP, {}))
                return events
        message = {"id": reply_id, "role": "assistant", "content": reply, "timestamp": _now_iso()}
        with self._lock:
            record.messages.append(message)
        events.append(("message:complete", {"message": message}))
        events.append(("done", {}))
        return events

    def handle_chat_end(self, chat_id: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
        record = self._live_chat(chat_id, headers)
        with self._lock:
            record.ended, record.ended_at = True, time.time()
        return {"chatId": chat_id, "status": "ended"}

    def handle_test_add_message(self, call_id: str, body: Any) -> dict[str, Any]:
        if call_id not in self.calls:
            raise _Reply(404, f"Call {call_id} not found")
        if not isinstance(body, dict) or not isinstance(body.get("content"), str):
            raise _Reply(400, "content must be a string")
        role = body.get("role") if isinstance(body.get("role"), str) else "assistant"
        message_id = body.get("id") if isinstance(body.get("id"), str) else None
        return self.add_message(call_id, role, body["content"], message_id)

    def handle_test_get_call(self, call_id: str) -> dict[str, Any]:
        with self._lock:
            record = self.calls.get(call_id)
            if record is None:
                raise _Reply(404, f"Call {call_id} not found")
            return record.to_json()


# ------------------------------------------------------------------------------- handler


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 128  # the stdlib's 5 resets connections when a test starts many at once
    daemon_threads = True
    block_on_close = False


class _Handler(BaseHTTPRequestHandler):
    app: WespokeServer
    protocol_version = "HTTP/1.1"
    server_version = "wespoke-test-server"
    # Headers and body go out in separate writes; with Nagle on, each answer would wait ~40 ms
    # for the client's delayed ACK, and that latency would pollute every benchmark.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_OPTIONS(self) -> None:
        """A browser's CORS preflight, answered for any origin.

        A preflight carries no key, so the key's origin allow-list can only decide on the real
        request (403 DOMAIN_NOT_ALLOWED). It is the browser's, not the client's: not recorded, and
        `fail_next` does not apply to it.
        """
        self._send(204, b"", {
            "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
        })

    def _cors_headers(self) -> dict[str, str]:
        """Lets a page on another origin (the web embed) read every answer, errors included."""
        origin = self.headers.get("Origin")
        if not origin:
            return {}
        return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": "Retry-After", "Vary": "Origin"}

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw_body = self._read_body()
        endpoint, call_id = None, ""
        route_method_mismatch = False
        for name, route_method, pattern in ROUTES:
            match = pattern.match(path)
            if match:
                if route_method != method:
                    route_method_mismatch = True
                    continue
                endpoint, call_id = name, unquote(match.groupdict().get("id") or "")
                break
        entry = RequestRecord(method, path, {k: v for k, v in headers.items() if k != "authorization"}, time.time())
        test_control = path.startswith("/_test/")  # the test harness, not a client: not in the call's log
        with self.app._lock:
            self.app.requests.append(entry)
            if call_id and call_id in self.app.calls and not test_control:
                self.app.calls[call_id].requests.append(entry)

        rule = None if test_control else self.app._take_rule(endpoint, path)
        if rule is not None:
            if rule.delay_s:
                time.sleep(rule.delay_s)
            if rule.drop:
                self._drop()
                return
            if rule.status is not None:
                entry.status = rule.status
                self._send_injected(rule)
                return

        try:
            if endpoint is None:
                raise _Reply(405 if route_method_mismatch else 404, "No such endpoint", code="NOT_FOUND")
            body = self._json(raw_body)
            if endpoint == "chat_message":
                events = self.app.chat_reply_events(call_id, body, headers)
                entry.status = 200
                self._send_sse(events)
                return
            data = self._route(endpoint, call_id, body, query, headers)
            entry.status = 200
            if endpoint == "token":  # the call did not exist when its first request came in
                with self.app._lock:
                    self.app.calls[data["callId"]].requests.insert(0, entry)
            self._send_json(200, {"success": True, "data": data} if not endpoint.startswith("test_") else data)
        except _Reply as reply:
            entry.status = reply.status
            self._send_json(reply.status, {"success": False, "error": reply.error}, reply.headers)

    def _route(self, endpoint: str, call_id: str, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> Any:
        app = self.app
        if endpoint == "token":
            return app.handle_token(body, headers)
        if endpoint == "chat_start":
            return app.handle_chat_start(body, headers)
        if endpoint == "list_messages":
            return app.handle_list_messages(call_id, query, headers)
        if endpoint == "test_add_message":
            return app.handle_test_add_message(call_id, body)
        if endpoint == "test_get_call":
            return app.handle_test_get_call(call_id)
        handler = {
            "end": app.handle_end,
            "mute": app.handle_mute,
            "send_message": app.handle_send_message,
            "delete": app.handle_delete,
            "chat_end": app.handle_chat_end,
        }[endpoint]
        return handler(call_id, body, headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, MAX_REQUEST_BODY)) if length > 0 else b""

    @staticmethod
    def _json(raw: bytes) -> Any:
        if not raw.strip():
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _Reply(400, "Body is not valid JSON") from None

    def _send_json(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(doc).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _send_injected(self, rule: FailRule) -> None:
        assert rule.status is not None
        if rule.body is None:
            code, message = ERROR_MESSAGES.get(rule.status, ("ERROR", f"HTTP {rule.status}"))
            body = json.dumps({"success": False, "error": {"message": message, "code": code}}).encode()
            content_type = "application/json"
        elif isinstance(rule.body, bytes):
            body, content_type = rule.body, "text/html; charset=utf-8"
        else:
            body, content_type = json.dumps(rule.body).encode(), "application/json"
        self._send(rule.status, body, {"Content-Type": content_type, **rule.headers})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for name, value in {**self._cors_headers(), **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading (e.g. a huge body cut short)

    def _send_sse(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        self.close_connection = True  # the stream ends when the connection does
        try:
            self.send_response(200)
            for name, value in self._cors_headers().items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b": stream open\n\n")
            for name, data in events:
                if name == SSE_DROP:
                    self.wfile.flush()
                    self._drop()
                    return
                self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.005)  # arrive as separate chunks, as a real stream does
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _drop(self) -> None:
        """Close the connection without a byte of answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# ------------------------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--livekit-url", default="ws://127.0.0.1:7880")
    parser.add_argument("--livekit-api-key", default="devkey")
    parser.add_argument("--livekit-api-secret", default="secret")
    parser.add_argument("--key", action="append", default=[], help="an embed key to accept (repeatable)")
    parser.add_argument("--origin", action="append", default=None, help="allowed origin for the keys (repeatable)")
    parser.add_argument("--credits", type=int, default=1000)
    parser.add_argument("--assistant", action="append", default=[], help="assistant id, or id=Name (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    server = WespokeServer(args.livekit_url, args.livekit_api_key, args.livekit_api_secret, host=args.host, port=args.port)
    for key in args.key or ["pk_test_" + "0" * 24]:
        server.add_key(key, origins=args.origin, credits=args.credits)
    for spec in args.assistant or ["asst_demo"]:
        assistant_id, _, name = spec.partition("=")
        server.add_assistant(assistant_id, name or assistant_id)
    server.start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
