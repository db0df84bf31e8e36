"""WespokeClient against the local Wespoke-compatible server over real HTTP (no mocked transport)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from livekit import api as lkapi

from tests.stack.wespoke_fixtures import TEST_API_KEY, TEST_ASSISTANT_ID, TestWespokeServer, start_wespoke_server
from tests.stack.wespoke_server import CallRecord, WespokeServer
from wespoke_tui import __version__, errors
from wespoke_tui.api import (
    END_CALL_TIMEOUT,
    ApiMessage,
    ChatDone,
    ChatKnowledgeUsed,
    ChatMessageChunk,
    ChatMessageComplete,
    ChatMessageStart,
    ChatStreamError,
    ChatToolEvent,
    SseParser,
    WespokeClient,
    chat_event,
)
from wespoke_tui.errors import USER_MESSAGES, CallError, describe

ORIGIN = "https://shop.example.com"
LANGS = ["tr", "en"]


def client(server: WespokeServer, **kw: Any) -> WespokeClient:
    kw.setdefault("api_key", TEST_API_KEY)
    return WespokeClient(server.url, **kw)


async def fails(coro: Any) -> CallError:
    with pytest.raises(CallError) as info:
        await coro
    return info.value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ----------------------------------------------------------------------------- happy paths


async def test_token_sends_everything_and_parses_the_answer(wespoke_server: TestWespokeServer) -> None:
    metadata = {"userId": "user-123", "sessionId": "s-9", "customData": {"plan": "pro"}, "extra": 1}
    overrides = {"firstMessage": "Merhaba!", "variableValues": {"name": "Ayşe"}, "temperature": 0.7}
    async with client(wespoke_server, origin=ORIGIN) as api:
        token = await api.create_token(TEST_ASSISTANT_ID, metadata, overrides)

    assert token.url == wespoke_server.livekit_url
    assert token.call_id and token.room_name == f"call-{token.call_id}"
    assert (token.assistant.id, token.assistant.name, token.assistant.version) == (TEST_ASSISTANT_ID, "Test Assistant", 3)
    assert token.rate_limit is not None and (token.rate_limit.remaining, token.rate_limit.limit) == (99, 100)
    assert token.rate_limit.reset_at
    assert token.token not in repr(token)

    record = wespoke_server.calls[token.call_id]
    assert (record.assistant_id, record.metadata, record.overrides, record.origin) == (
        TEST_ASSISTANT_ID, metadata, overrides, ORIGIN)
    assert record.key == TEST_API_KEY  # the Bearer key was read and accepted
    first = record.requests[0]
    assert (first.method, first.path) == ("POST", "/api/v1/embed/token")
    assert first.headers["user-agent"] == f"wespoke-tui/{__version__}"
    assert first.headers["origin"] == ORIGIN
    assert first.headers["content-type"] == "application/json"
    assert "authorization" not in first.headers


async def test_no_origin_header_unless_chosen_and_no_overrides_unless_given(wespoke_server: TestWespokeServer) -> None:
    async with client(wespoke_server) as api:
        token = await api.create_token(TEST_ASSISTANT_ID)
    record = wespoke_server.calls[token.call_id]
    assert record.origin is None and "origin" not in record.requests[0].headers
    assert record.overrides is None and record.metadata == {}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # dev secret is short by design
async def test_minted_token_is_a_valid_livekit_jwt(wespoke_server: TestWespokeServer) -> None:
    async with client(wespoke_server) as api:
        token = await api.create_token(TEST_ASSISTANT_ID)
    claims = lkapi.TokenVerifier("devkey", "secret").verify(token.token)
    assert claims.identity == f"user-{token.call_id}"
    assert claims.video is not None
    assert claims.video.room_join is True and claims.video.room == token.room_name
    assert claims.video.can_publish and claims.video.can_subscribe and claims.video.can_publish_data
    with pytest.raises(jwt.InvalidSignatureError):
        lkapi.TokenVerifier("devkey", "not-the-secret").verify(token.token)


async def test_call_control_endpoints_are_recorded(wespoke_server: TestWespokeServer) -> None:
    async with client(wespoke_server, origin=ORIGIN) as api:
        token = await api.create_token(TEST_ASSISTANT_ID)
        call_id = token.call_id
        assert call_id
        await api.set_muted(call_id, True)
        await api.set_muted(call_id, False)
        await api.send_message(call_id, "Merhaba, siparişim nerede?")
        messages = await api.list_messages(call_id)
        await api.end_call(call_id)
        await api.delete_call(call_id)

    record = wespoke_server.calls[call_id]
    assert [m.muted for m in record.mute_history] == [True, False]
    assert record.mute_history[0].at <= record.mute_history[1].at
    assert [(m.role, m.content) for m in messages] == [("user", "Merhaba, siparişim nerede?")]
    assert messages[0].id == record.messages[0]["id"]
    assert record.ended and record.ended_at is not None
    assert record.deleted
    paths = [(r.method, r.path) for r in record.requests]
    assert paths == [
        ("POST", "/api/v1/embed/token"),
        ("POST", f"/api/v1/embed/calls/{call_id}/mute"),
        ("POST", f"/api/v1/embed/calls/{call_id}/mute"),
        ("POST", f"/api/v1/embed/calls/{call_id}/messages"),
        ("GET", f"/api/v1/embed/calls/{call_id}/messages"),
        ("POST", f"/api/v1/embed/calls/{call_id}/end"),
        ("DELETE", f"/api/v1/calls/{call_id}"),
    ]
    assert all(r.headers["origin"] == ORIGIN and r.headers["user-agent"] == f"wespoke-tui/{__version__}" for r in record.requests)


async def test_list_messages_pages_with_limit_and_offset(wespoke_server: TestWespokeServer) -> None:
    async with client(wespoke_server) as api:
        token = await api.create_token(TEST_ASSISTANT_ID)
        assert token.call_id
        for i in range(5):
            wespoke_server.add_message(token.call_id, "assistant", f"m{i}", message_id=f"id{i}")
        page = await api.list_messages(token.call_id, limit=2, offset=3)
    assert [(m.id, m.content, m.role) for m in page] == [("id3", "m3", "assistant"), ("id4", "m4", "assistant")]
    assert wespoke_server.calls[token.call_id].requests[-1].path.endswith("/messages")


async def test_list_messages_tolerates_odd_rows(wespoke_server: TestWespokeServer) -> None:
    body = {"success": True, "data": {"messages": [
        {"id": "a", "role": "assistant", "content": "hi", "timestamp": 1700000000.5, "isComplete": True},
        "junk", 7, None,
        {"role": "user"},  # no content: not a message
        {"id": 5, "content": "numeric id, no role"},
        {"id": "b", "role": "user", "message": "named message", "timestamp": {"odd": 1}},
    ]}}
    wespoke_server.fail_next("list_messages", status=200, body=body)
    async with client(wespoke_server) as api:
        messages = await api.list_messages("call_x")
    assert messages == [
        ApiMessage(id="a", role="assistant", content="hi", timestamp=1700000000.5),
        ApiMessage(id="5", role="assistant", content="numeric id, no role"),
        ApiMessage(id="b", role="user", content="named message", timestamp=None),
    ]


@pytest.mark.parametrize(
    "body", [{"success": True, "data": {"messages": "nope"}}, {"success": True}, {"data": {"msgs": []}}, b"<html>", b"7"]
)
async def test_list_messages_of_the_wrong_shape_is_invalid_response(wespoke_server: TestWespokeServer, body: Any) -> None:
    wespoke_server.fail_next("list_messages", status=200, body=body)
    async with client(wespoke_server) as api:
        error = await fails(api.list_messages("call_x"))
    assert error.code == errors.INVALID_RESPONSE
    assert describe(error, "tr") == USER_MESSAGES[errors.INVALID_RESPONSE]["tr"]


async def test_test_control_endpoints_add_messages_the_client_then_polls(wespoke_server: TestWespokeServer) -> None:
    async with client(wespoke_server) as api:
        token = await api.create_token(TEST_ASSISTANT_ID, {"userId": "u1"})
        assert token.call_id
        async with httpx.AsyncClient(base_url=wespoke_server.url) as raw:  # as the test assistant does: no auth
            added = await raw.post(f"/_test/calls/{token.call_id}/messages",
                                   json={"role": "assistant", "content": "Merhaba!", "id": "greet-1"})
            assert added.status_code == 200 and added.json()["id"] == "greet-1"
            await api.set_muted(token.call_id, True)
            doc = (await raw.get(f"/_test/calls/{token.call_id}")).json()
            missing = await raw.get("/_test/calls/call_nope")
        polled = await api.list_messages(token.call_id)
    assert [(m.id, m.role, m.content) for m in polled] == [("greet-1", "assistant", "Merhaba!")]
    assert doc["call_id"] == token.call_id and doc["metadata"] == {"userId": "u1"} and doc["muted"] is True
    assert doc["room_name"] == token.room_name and doc["messages"][0]["content"] == "Merhaba!"
    assert missing.status_code == 404
    assert not any(r.path.startswith("/_test/") for r in wespoke_server.calls[token.call_id].requests)


async def test_dispatch_runs_in_the_background_after_the_token() -> None:
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def dispatch(record: CallRecord, server: WespokeServer) -> None:
        time.sleep(1.0)  # scenario: a slow assistant start must not hold up the token answer
        seen.append((record.call_id, record.room_name))
        done.set()

    server = start_wespoke_server(livekit_url="ws://127.0.0.1:9", dispatch=dispatch)
    try:
        async with client(server) as api:
            started = time.monotonic()
            token = await api.create_token(TEST_ASSISTANT_ID)
            assert time.monotonic() - started < 0.8
        assert token.url == "ws://127.0.0.1:9"
        assert await asyncio.to_thread(done.wait, 5)
        assert seen == [(token.call_id, token.room_name)]
        assert server.call_for_room(token.room_name or "") is server.calls[token.call_id or ""]
    finally:
        server.stop()


async def test_concurrent_token_requests_are_all_recorded(wespoke_server: TestWespokeServer) -> None:
    async with client(wespoke_server) as api:
        tokens = await asyncio.gather(*(api.create_token(TEST_ASSISTANT_ID, {"n": i}) for i in range(20)))
    assert len({t.call_id for t in tokens}) == 20
    assert sorted(wespoke_server.calls[t.call_id or ""].metadata["n"] for t in tokens) == list(range(20))
    assert wespoke_server.keys[TEST_API_KEY].credits == 1000 - 20


# ---------------------------------------------------------------------------------- chat


async def test_chat_start_stream_and_end(wespoke_server: TestWespokeServer) -> None:
    async with client(wespoke_server, origin=ORIGIN) as api:
        chat = await api.start_chat(TEST_ASSISTANT_ID, {"userId": "u7"}, {"firstMessage": "Hoş geldiniz!"})
        events = [event async for event in api.send_chat_message(chat.chat_id, "Kargo ne zaman gelir?")]
        await api.end_chat(chat.chat_id)
        after_end = await fails(api.send_chat_message(chat.chat_id, "still there?").__anext__())

    assert chat.greeting_message == "Hoş geldiniz!"
    assert chat.assistant.name == "Test Assistant" and chat.started_at
    assert isinstance(events[0], ChatMessageStart) and events[0].message_id
    chunks = [e for e in events if isinstance(e, ChatMessageChunk)]
    assert len(chunks) >= 2
    assert all(b.accumulated_content.startswith(a.accumulated_content) for a, b in zip(chunks, chunks[1:]))
    assert "".join(c.delta for c in chunks) == chunks[-1].accumulated_content
    complete = events[-2]
    assert isinstance(complete, ChatMessageComplete)
    assert complete.message.content == "You said: Kargo ne zaman gelir?" == chunks[-1].accumulated_content
    assert complete.message.id == events[0].message_id and complete.message.role == "assistant"
    assert isinstance(events[-1], ChatDone)

    record = wespoke_server.chats[chat.chat_id]
    assert record.ended and record.origin == ORIGIN and record.metadata == {"userId": "u7"}
    assert [(m["role"], m["content"]) for m in record.messages[1:]] == [
        ("user", "Kargo ne zaman gelir?"), ("assistant", "You said: Kargo ne zaman gelir?")]
    assert after_end.code == errors.CHAT_ENDED and after_end.status == 404  # the chat, not the assistant, is gone


SSE_BODY = (
    b": keep-alive comment\r\n\r\n"
    b"event: message:start\r\ndata: {\"messageId\": \"m1\"}\r\n\r\n"
    b"event: tool:started\ndata: {\"toolName\": \"lookup_order\", \"toolType\": \"function\", \"toolDetails\": {\"id\": 7}}\n\n"
    b"event: tool:completed\ndata: {\"toolName\": \"lookup_order\"}\n\n"
    b"event: tool:failed\ndata: {\"toolName\": \"refund\", \"toolDetails\": \"not a dict\"}\n\n"
    b"event: knowledge:used\ndata: {\"sources\": [{\"title\": \"FAQ\"}]}\n\n"
    b"event: surprise:new\ndata: {\"x\": 1}\n\n"
    b"event: message:chunk\ndata: not json at all\n\n"
    b"data: {\"type\": \"message:chunk\", \"accumulatedContent\": \"Sipari\\u015finiz\"}\n\n"
    b"event: error\ndata: {\"message\": \"model overloaded\", \"code\": \"LLM_BUSY\"}\n\n"
    b"event: done\ndata: {}\n\n"
    b"event: message:chunk\ndata: {\"accumulatedContent\": \"after done\"}\n\n"
)


async def test_chat_stream_parses_every_event_kind(wespoke_server: TestWespokeServer) -> None:
    wespoke_server.fail_next("chat_message", status=200, body=SSE_BODY, headers={"Content-Type": "text/event-stream"})
    async with client(wespoke_server) as api:
        events = [event async for event in api.send_chat_message("chat_any", "hi")]
    assert events == [
        ChatMessageStart(message_id="m1"),
        ChatToolEvent(phase="started", tool_name="lookup_order", tool_type="function", details={"id": 7}),
        ChatToolEvent(phase="completed", tool_name="lookup_order"),
        ChatToolEvent(phase="failed", tool_name="refund"),
        ChatKnowledgeUsed(sources=[{"title": "FAQ"}]),
        ChatMessageChunk(accumulated_content="Siparişiniz"),
        ChatStreamError(message="model overloaded", code="LLM_BUSY"),
        ChatDone(),
    ]


@pytest.mark.parametrize("status", [401, 429, 500, 503])
async def test_chat_stream_error_status_raises_mapped_error(wespoke_server: TestWespokeServer, status: int) -> None:
    wespoke_server.fail_next("chat_message", status=status, body=b"<html>nope</html>", headers={"Retry-After": "3"})
    async with client(wespoke_server) as api:
        error = await fails(api.send_chat_message("chat_any", "hi").__anext__())
    assert error.code == errors.code_for_status(status) and error.status == status
    assert describe(error, "tr").startswith(USER_MESSAGES[error.code]["tr"])


@pytest.mark.parametrize("body", [b'{"success": true}', b"<html>hi</html>", b""])
async def test_chat_answer_that_is_not_a_stream_is_invalid_response(wespoke_server: TestWespokeServer, body: bytes) -> None:
    wespoke_server.fail_next("chat_message", status=200, body=body)
    async with client(wespoke_server) as api:
        error = await fails(api.send_chat_message("chat_any", "hi").__anext__())
    assert error.code == errors.INVALID_RESPONSE
    assert describe(error, "tr") == USER_MESSAGES[errors.INVALID_RESPONSE]["tr"]


async def test_chat_stream_dropped_is_connection_error(wespoke_server: TestWespokeServer) -> None:
    wespoke_server.fail_next("chat_message", drop=True)
    async with client(wespoke_server) as api:
        error = await fails(api.send_chat_message("chat_any", "hi").__anext__())
    assert error.code == errors.CONNECTION_ERROR


def test_sse_parser_handles_any_split_and_line_ending() -> None:
    text = "event: a\r\ndata: {\"x\":\r\ndata: 1}\r\n\r\n:c\nevent: b\rdata: 2\r\rdata: 3\n\n"
    expected = [("a", "{\"x\":\n1}"), ("b", "2"), ("message", "3")]
    for cut in range(len(text) + 1):
        parser = SseParser()
        assert parser.feed(text[:cut]) + parser.feed(text[cut:]) == expected, cut
    one_by_one = SseParser()
    assert [e for ch in text for e in one_by_one.feed(ch)] == expected


def test_chat_event_without_data_or_with_unknown_name() -> None:
    assert chat_event("done", "") == ChatDone()
    assert chat_event("message:complete", "[]") == ChatMessageComplete(ApiMessage(id=None, role="assistant", content=""))
    assert chat_event("whatever", "{}") is None


# ------------------------------------------------------------------------ the error table

TABLE = [
    (400, errors.INVALID_REQUEST),
    (401, errors.UNAUTHORIZED),
    (402, errors.INSUFFICIENT_CREDITS),
    (403, errors.DOMAIN_NOT_ALLOWED),
    (404, errors.ASSISTANT_NOT_FOUND),
    (429, errors.RATE_LIMITED),
    (500, errors.SERVER_ERROR),
    (418, errors.UNKNOWN_ERROR),
    (503, errors.UNKNOWN_ERROR),
]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("status", "code"), TABLE)
async def test_error_table(wespoke_server: TestWespokeServer, status: int, code: str, lang: str) -> None:
    wespoke_server.fail_next("token", status=status, body={"success": False, "error": {"message": "server says no", "code": "X"}})
    async with client(wespoke_server) as api:
        error = await fails(api.create_token(TEST_ASSISTANT_ID))
    assert (error.code, error.status) == (code, status)
    expected = USER_MESSAGES[code][lang]
    if code == errors.INVALID_REQUEST:
        expected += " (server says no)"  # the contract: 400 shows the server's message
    if code == errors.UNKNOWN_ERROR:
        expected += f" (HTTP {status})"
        assert error.message == f"HTTP {status}: server says no"
    else:
        assert error.message == "server says no"
    assert describe(error, lang) == expected


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("status", "code"), TABLE)
@pytest.mark.parametrize("kind", ["html", "empty", "huge", "wrong-shape-list", "wrong-shape-error", "text"])
async def test_error_bodies_of_any_shape_map_by_status(
    wespoke_server: TestWespokeServer, status: int, code: str, kind: str, lang: str
) -> None:
    body = {
        "html": b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
        "empty": b"",
        "huge": b"<html>" + b"A" * (8 * 1024 * 1024) + b"</html>",
        "wrong-shape-list": b"[\"error\", 1]",
        "wrong-shape-error": b"{\"success\": false, \"error\": {\"message\": 42, \"retryAfter\": \"x\"}}",
        "text": "Hata oluştu".encode(),
    }[kind]
    wespoke_server.fail_next("token", status=status, body=body)
    async with client(wespoke_server) as api:
        started = time.monotonic()
        error = await fails(api.create_token(TEST_ASSISTANT_ID))
    assert (error.code, error.status) == (code, status)
    assert describe(error, lang).startswith(USER_MESSAGES[code][lang])
    assert error.message == (f"HTTP {status}" if code == errors.UNKNOWN_ERROR else errors.DEFAULT_MESSAGES[code])
    assert time.monotonic() - started < 2.0  # a huge body is cut short (api.ERROR_BODY_LIMIT), not read whole


@pytest.mark.parametrize("lang", LANGS)
async def test_natural_errors_of_the_server(wespoke_server: TestWespokeServer, lang: str) -> None:
    wespoke_server.add_key("pk_test_" + "o" * 24, origins=[ORIGIN])
    wespoke_server.add_key("pk_test_" + "c" * 24, credits=0)
    async with client(wespoke_server, api_key="pk_test_" + "w" * 24) as api:
        assert (await fails(api.create_token(TEST_ASSISTANT_ID))).code == errors.UNAUTHORIZED
    async with client(wespoke_server, api_key="pk_test_" + "o" * 24, origin="https://evil.example") as api:
        forbidden = await fails(api.create_token(TEST_ASSISTANT_ID))
    async with client(wespoke_server, api_key="pk_test_" + "o" * 24, origin=ORIGIN) as api:
        assert (await api.create_token(TEST_ASSISTANT_ID)).call_id
    async with client(wespoke_server, api_key="pk_test_" + "c" * 24) as api:
        assert (await fails(api.create_token(TEST_ASSISTANT_ID))).code == errors.INSUFFICIENT_CREDITS
    async with client(wespoke_server) as api:
        missing = await fails(api.create_token("asst_nope"))
        invalid = await fails(api.create_token(""))
        unknown_call = await fails(api.set_muted("call_nope", True))
    assert forbidden.code == errors.DOMAIN_NOT_ALLOWED
    assert describe(forbidden, lang) == USER_MESSAGES[errors.DOMAIN_NOT_ALLOWED][lang] and "--origin" in describe(forbidden, lang)
    assert missing.code == errors.ASSISTANT_NOT_FOUND and "asst_nope" in missing.message
    assert invalid.code == errors.INVALID_REQUEST and describe(invalid, lang).endswith("(assistantId is required)")
    assert unknown_call.status == 404


@pytest.mark.parametrize("lang", LANGS)
async def test_rate_limit_from_the_server_carries_retry_after(wespoke_server: TestWespokeServer, lang: str) -> None:
    wespoke_server.set_rate_limit(TEST_API_KEY, limit=2, window_s=30)
    async with client(wespoke_server) as api:
        first = await api.create_token(TEST_ASSISTANT_ID)
        await api.create_token(TEST_ASSISTANT_ID)
        error = await fails(api.create_token(TEST_ASSISTANT_ID))
    assert first.rate_limit is not None and first.rate_limit.remaining == 1 and first.rate_limit.limit == 2
    assert error.code == errors.RATE_LIMITED and error.retry_after is not None and 28 <= error.retry_after <= 30
    assert error.details["reset_at"]
    seconds = round(error.retry_after)
    suffix = f" ({seconds} sn sonra)" if lang == "tr" else f" (retry in {seconds} s)"
    assert describe(error, lang) == USER_MESSAGES[errors.RATE_LIMITED][lang] + suffix


@pytest.mark.parametrize("lang", LANGS)
async def test_429_retry_after_from_header_only(wespoke_server: TestWespokeServer, lang: str) -> None:
    wespoke_server.fail_next("token", status=429, body=b"<html>slow down</html>", headers={"Retry-After": "45"})
    async with client(wespoke_server) as api:
        error = await fails(api.create_token(TEST_ASSISTANT_ID))
    assert error.retry_after == 45
    assert describe(error, lang) == USER_MESSAGES[errors.RATE_LIMITED][lang] + (" (45 sn sonra)" if lang == "tr" else " (retry in 45 s)")


async def test_429_retry_after_from_body_beats_header(wespoke_server: TestWespokeServer) -> None:
    body = {"success": False, "error": {"message": "Rate limit", "code": "RATE_LIMITED", "retryAfter": 7}}
    wespoke_server.fail_next("token", status=429, body=body, headers={"Retry-After": "45"})
    async with client(wespoke_server) as api:
        assert (await fails(api.create_token(TEST_ASSISTANT_ID))).retry_after == 7


@pytest.mark.parametrize("endpoint", ["end", "mute", "send_message", "list_messages", "delete", "chat_start", "chat_end"])
async def test_every_endpoint_maps_errors(wespoke_server: TestWespokeServer, endpoint: str) -> None:
    wespoke_server.fail_next(endpoint, status=402, body=b"")
    async with client(wespoke_server) as api:
        call = {
            "end": lambda: api.end_call("c1"),
            "mute": lambda: api.set_muted("c1", True),
            "send_message": lambda: api.send_message("c1", "x"),
            "list_messages": lambda: api.list_messages("c1"),
            "delete": lambda: api.delete_call("c1"),
            "chat_start": lambda: api.start_chat(TEST_ASSISTANT_ID),
            "chat_end": lambda: api.end_chat("ch1"),
        }[endpoint]
        error = await fails(call())
    assert error.code == errors.INSUFFICIENT_CREDITS
    assert describe(error, "tr") == USER_MESSAGES[errors.INSUFFICIENT_CREDITS]["tr"]


# --------------------------------------------------------------------- invalid 200 answers


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"success": True, "data": {"token": "abc"}}, "url"),
        ({"success": True, "data": {"url": "ws://x"}}, "token"),
        ({"success": True, "data": {"url": "", "token": ""}}, "url and token"),
        ({"success": True, "data": {"url": 5, "token": ["t"]}}, "url and token"),
        ({"success": True, "data": "ok"}, "data"),
        (b"<html>maintenance</html>", "not JSON"),
        (b"", "empty: no url and token"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"data": {"url": "ws://x", "token": "t", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}}', "larger than"),
    ],
)
@pytest.mark.parametrize("lang", LANGS)
async def test_unusable_token_answer_is_invalid_response(
    wespoke_server: TestWespokeServer, body: Any, why: str, lang: str
) -> None:
    wespoke_server.fail_next("token", status=200, body=body)
    async with client(wespoke_server) as api:
        error = await fails(api.create_token(TEST_ASSISTANT_ID))
    assert error.code == errors.INVALID_RESPONSE and why in error.message
    assert describe(error, lang) == USER_MESSAGES[errors.INVALID_RESPONSE][lang]


async def test_minimal_token_answer_of_the_seed_is_enough(wespoke_server: TestWespokeServer) -> None:
    wespoke_server.fail_next("token", status=200, body={"data": {"url": "wss://lk.example", "token": "jwt"}})
    async with client(wespoke_server) as api:
        token = await api.create_token(TEST_ASSISTANT_ID)
    assert (token.url, token.token, token.call_id, token.rate_limit) == ("wss://lk.example", "jwt", None, None)


# ------------------------------------------------------------------------ network failures


@pytest.mark.parametrize("lang", LANGS)
async def test_slow_answer_times_out_as_connection_error(wespoke_server: TestWespokeServer, lang: str) -> None:
    wespoke_server.fail_next("token", delay_s=3)
    async with client(wespoke_server, timeout=0.5) as api:
        started = time.monotonic()
        error = await fails(api.create_token(TEST_ASSISTANT_ID))
    assert time.monotonic() - started < 1.5
    assert error.code == errors.CONNECTION_ERROR
    assert describe(error, lang) == USER_MESSAGES[errors.CONNECTION_ERROR][lang]


@pytest.mark.parametrize("timeout", [None, 0.3])
async def test_end_call_gives_up_quickly(wespoke_server: TestWespokeServer, timeout: float | None) -> None:
    """The whole `/end` request is bounded (default END_CALL_TIMEOUT, 2 s): a hang-up never waits longer."""
    bound = END_CALL_TIMEOUT if timeout is None else timeout
    assert END_CALL_TIMEOUT <= 2.0
    async with client(wespoke_server) as api:
        token = await api.create_token(TEST_ASSISTANT_ID)
        wespoke_server.fail_next("end", delay_s=5)
        started = time.monotonic()
        if timeout is None:
            error = await fails(api.end_call(token.call_id or ""))
        else:
            error = await fails(api.end_call(token.call_id or "", timeout=timeout))
        elapsed = time.monotonic() - started
    assert error.code == errors.CONNECTION_ERROR
    assert bound * 0.9 <= elapsed < bound + 0.5


@pytest.mark.parametrize("lang", LANGS)
async def test_refused_connection(lang: str) -> None:
    port = free_port()  # bound then closed: nothing listens there
    async with WespokeClient(f"http://127.0.0.1:{port}", TEST_API_KEY) as api:
        error = await fails(api.create_token(TEST_ASSISTANT_ID))
    assert error.code == errors.CONNECTION_ERROR
    assert describe(error, lang) == USER_MESSAGES[errors.CONNECTION_ERROR][lang]


@pytest.mark.parametrize("lang", LANGS)
async def test_dropped_connection(wespoke_server: TestWespokeServer, lang: str) -> None:
    wespoke_server.fail_next("token", drop=True)
    async with client(wespoke_server) as api:
        error = await fails(api.create_token(TEST_ASSISTANT_ID))
    assert error.code == errors.CONNECTION_ERROR
    assert describe(error, lang) == USER_MESSAGES[errors.CONNECTION_ERROR][lang]


async def test_dns_failure() -> None:
    async with WespokeClient("http://no-such-host.invalid", TEST_API_KEY, timeout=3) as api:
        error = await fails(api.create_token(TEST_ASSISTANT_ID))
    assert error.code == errors.CONNECTION_ERROR


@pytest.mark.parametrize("url", ["::::", "ftp://127.0.0.1", ""])
async def test_unusable_api_url_is_a_call_error_not_a_crash(url: str) -> None:
    with pytest.raises(CallError) as info:
        async with WespokeClient(url, TEST_API_KEY) as api:
            await api.create_token(TEST_ASSISTANT_ID)
    assert info.value.code == errors.CONNECTION_ERROR
    assert describe(info.value, "tr") == USER_MESSAGES[errors.CONNECTION_ERROR]["tr"]


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def test_tls_is_verified(tmp_path: Path) -> None:
    server = WespokeServer(ssl_context=_self_signed(tmp_path)).start()
    try:
        assert server.url.startswith("https://")
        async with WespokeClient(server.url, TEST_API_KEY) as api:
            error = await fails(api.create_token(TEST_ASSISTANT_ID))
    finally:
        server.stop()
    assert error.code == errors.CONNECTION_ERROR and "CERTIFICATE_VERIFY_FAILED" in error.message


# ----------------------------------------------------------------------- secrets stay secret


async def test_key_and_token_never_leak(wespoke_server: TestWespokeServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bare = TEST_API_KEY.removeprefix("pk_test_")
    echo = {"success": False, "error": {"message": f"key {TEST_API_KEY} is bad ({bare})", "code": TEST_API_KEY}}
    raised: list[CallError] = []
    async with client(wespoke_server, origin=ORIGIN) as api:
        token = await api.create_token(TEST_ASSISTANT_ID)
        for status in (400, 401, 403, 429, 500, 418):
            wespoke_server.fail_next("token", status=status, body=echo)
            raised.append(await fails(api.create_token(TEST_ASSISTANT_ID)))
        wespoke_server.fail_next("token", drop=True)
        raised.append(await fails(api.create_token(TEST_ASSISTANT_ID)))
        wespoke_server.fail_next("token", status=200, body=echo)
        raised.append(await fails(api.create_token(TEST_ASSISTANT_ID)))
        wespoke_server.fail_next("chat_message", status=400, body=echo)
        raised.append(await fails(api.send_chat_message("c", "x").__anext__()))
        assert TEST_API_KEY not in repr(api)
    async with WespokeClient(f"http://127.0.0.1:{free_port()}/{TEST_API_KEY}", TEST_API_KEY) as api:
        raised.append(await fails(api.create_token(TEST_ASSISTANT_ID)))

    for error in raised:
        texts = [str(error), repr(error), error.message, describe(error, "en"), repr(error.details),
                 describe(error, "tr")]
        assert not any(TEST_API_KEY in t or bare in t for t in texts), error
    api_records = [r for r in caplog.records if r.name == "wespoke_tui.api"]
    assert any(r.levelno == logging.DEBUG and "POST /api/v1/embed/token" in r.getMessage() for r in api_records)
    assert any("pk_test_…" in r.getMessage() for r in api_records)  # the key is logged masked only
    for record in caplog.records:
        message = record.getMessage()
        assert TEST_API_KEY not in message and bare not in message
        assert token.token not in message
        assert record.exc_info is None


# ---------------------------------------------------------------------- real LiveKit server


@pytest.fixture
def livekit_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The shared `livekit_server` fixture's URL; until that fixture exists, a server of our own.

    Never a skip: a missing `livekit-server` binary fails the test.
    """
    try:
        yield request.getfixturevalue("livekit_server").url
        return
    except pytest.FixtureLookupError:
        pass
    from tests.stack.livekit_server import LiveKitServer

    server = LiveKitServer(log_dir=tmp_path)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


async def test_token_is_accepted_by_a_real_livekit_server(livekit_url: str) -> None:
    from livekit import rtc

    server = start_wespoke_server(livekit_url=livekit_url)
    room = rtc.Room()
    try:
        async with client(server) as api:
            token = await api.create_token(TEST_ASSISTANT_ID)
        await asyncio.wait_for(room.connect(token.url, token.token), timeout=15)
        assert room.isconnected()
        assert room.name == token.room_name
        assert room.local_participant.identity == f"user-{token.call_id}"
    finally:
        await room.disconnect()
        server.stop()


async def test_livekit_refuses_a_token_signed_with_another_secret(livekit_url: str) -> None:
    """The check above can fail: the same server signing with a wrong secret is turned away."""
    from livekit import rtc

    server = start_wespoke_server(livekit_url=livekit_url, livekit_api_secret="not-the-dev-secret")
    room = rtc.Room()
    try:
        async with client(server) as api:
            token = await api.create_token(TEST_ASSISTANT_ID)
        with pytest.raises(rtc.ConnectError):
            await asyncio.wait_for(room.connect(token.url, token.token), timeout=15)
        assert not room.isconnected()
    finally:
        await room.disconnect()
        server.stop()
