"""Fault drill: the token API answers anything at all; every case ends in the right code.

Property-based (hypothesis) over status codes × body shapes (valid, empty, non-JSON, wrong
types, arbitrary JSON, huge, slow, dropped), injected with the local API server's `fail_next`
and fetched by the real client over real HTTP. The oracle is the contract: a 2xx with a usable
body is a token, any other 2xx is INVALID_RESPONSE, a non-2xx maps by its status whatever its
body, and no answer in time (slow, dropped) is CONNECTION_ERROR. Nothing else may escape, no
log line carries a traceback, and neither the key nor the minted token is ever logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.stack.wespoke_fixtures import TEST_API_KEY, TEST_ASSISTANT_ID, TestWespokeServer, start_wespoke_server
from wespoke_tui.api import WespokeClient
from wespoke_tui.errors import CONNECTION_ERROR, INVALID_RESPONSE, RATE_LIMITED, CallError, code_for_status, describe

CLIENT_TIMEOUT_S = 1.0
SLOW_S = 1.6  # longer than the client's whole-request bound (connect + read), so it must give up
FAKE_LIVEKIT_TOKEN = "eyJhbGciOiJIUzI1NiJ9.ZnV6ei10b2tlbi1wYXlsb2Fk.c2lnbmF0dXJlLW9mLWZ1enotdG9rZW4"

# Statuses a server or a proxy in front of it can answer with a body (no 1xx, 204 or 304).
STATUSES = [200, 201, 202, 301, 302, 307, 400, 401, 402, 403, 404, 405, 408, 409, 413, 418, 422, 429, 451,
            500, 501, 502, 503, 504, 520]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@dataclass(frozen=True)
class Body:
    """One shape of answer body; `usable` when a 2xx with it must give a token."""

    kind: str
    payload: bytes | dict[str, Any]
    usable: bool = False

    def __repr__(self) -> str:  # hypothesis prints failing examples: keep huge bodies short
        return f"Body({self.kind!r}, {repr(self.payload)[:120]}, usable={self.usable})"


def _valid() -> dict[str, Any]:
    return {
        "success": True,
        "data": {"callId": "call_fuzz", "token": FAKE_LIVEKIT_TOKEN, "url": "ws://127.0.0.1:7880", "roomName": "r"},
    }


bodies = st.one_of(
    st.just(Body("valid", _valid(), usable=True)),
    st.just(Body("valid, only url and token", {"data": {"url": "ws://127.0.0.1:7880", "token": FAKE_LIVEKIT_TOKEN}}, usable=True)),
    st.just(Body("empty", b"")),
    st.just(Body("whitespace", b"  \r\n ")),
    st.just(Body("html", b"<html><body><h1>502 Bad Gateway</h1></body></html>")),
    st.binary(max_size=64).map(lambda raw: Body("random bytes", b"\xff" + raw)),
    st.text(max_size=40).map(lambda text: Body("plain text", ("not json: " + text).encode())),
    st.just(Body("json null", b"null")),
    st.just(Body("json list", b"[1, 2, 3]")),
    st.sampled_from(
        [
            {"success": True, "data": {"url": 5, "token": ["x"]}},
            {"success": True, "data": {"url": "ws://127.0.0.1:7880", "token": None}},
            {"success": True, "data": {"url": "", "token": FAKE_LIVEKIT_TOKEN}},
            {"success": True, "data": "url and token"},
            {"success": "yes", "error": {"message": 42, "code": ["x"], "retryAfter": "soon"}},
            {"success": False, "error": "Bad Gateway"},
            {"success": False, "error": {"message": "x" * 5000, "code": "RATE_LIMITED", "retryAfter": -3}},
        ]
    ).map(lambda doc: Body("wrong types", doc)),
    json_values.map(lambda doc: Body("arbitrary json", json.dumps(doc).encode())),
    st.just(Body("huge non-json", b"A" * (3 * 1024 * 1024))),
    st.just(Body("huge json", json.dumps({"success": True, "data": {"pad": "x" * (2 * 1024 * 1024)}}).encode())),
)

timings = st.sampled_from(["prompt", "prompt", "prompt", "a little late", "slow", "dropped"])


def expected_code(status: int, body: Body, timing: str) -> str | None:
    """The contract's answer; None means a token."""
    if timing in ("slow", "dropped"):
        return CONNECTION_ERROR
    if 200 <= status < 300:
        return None if body.usable else INVALID_RESPONSE
    return code_for_status(status)


class RecordAll(logging.Handler):
    """Every record of the app's own loggers (the test server's are its own business)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("wespoke_tui"):
            self.records.append(record)


@pytest.fixture(scope="module")
def api_server() -> Iterator[TestWespokeServer]:
    server = start_wespoke_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def log_records() -> Iterator[RecordAll]:
    handler = RecordAll()
    app_logger = logging.getLogger("wespoke_tui")
    old_level = app_logger.level
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        app_logger.removeHandler(handler)
        app_logger.setLevel(old_level)


async def fetch(server: TestWespokeServer) -> Any:
    async with WespokeClient(server.url, TEST_API_KEY, timeout=CLIENT_TIMEOUT_S) as api:
        return await api.create_token(TEST_ASSISTANT_ID, {"userId": "fuzz"})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(status=st.sampled_from(STATUSES), body=bodies, timing=timings, lang=st.sampled_from(["tr", "en"]))
def test_token_answer_fuzz_ends_in_the_right_code(
    api_server: TestWespokeServer, log_records: RecordAll, status: int, body: Body, timing: str, lang: str
) -> None:
    api_server.clear_failures()
    headers = {"Retry-After": "7"} if status == 429 else {}
    api_server.fail_next(
        "token",
        status=status,
        body=body.payload,
        headers=headers,
        delay_s={"prompt": 0.0, "a little late": 0.3, "slow": SLOW_S, "dropped": 0.0}[timing],
        drop=timing == "dropped",
    )
    first_record = len(log_records.records)
    want = expected_code(status, body, timing)

    try:
        token = asyncio.run(fetch(api_server))
    except CallError as error:
        assert want is not None, f"{status} {body.kind} {timing}: expected a token, got {error.code}: {error.message}"
        assert error.code == want, f"{status} {body.kind} {timing}: {error.code} != {want} ({error.message})"
        assert describe(error, lang).strip(), "every error has a message for the user"  # type: ignore[arg-type]
        assert TEST_API_KEY not in describe(error, lang) + error.message  # type: ignore[arg-type]
        if error.code == RATE_LIMITED:
            assert error.retry_after is not None and error.retry_after >= 0
        if error.code not in (CONNECTION_ERROR, INVALID_RESPONSE):
            assert error.status == status
    else:
        assert want is None, f"{status} {body.kind} {timing}: expected {want}, got a token"
        assert token.token == FAKE_LIVEKIT_TOKEN and token.url.startswith("ws://")

    new_records = log_records.records[first_record:]
    for record in new_records:
        text = record.getMessage()
        assert record.exc_info is None, f"a traceback was logged: {text}"
        assert TEST_API_KEY not in text and FAKE_LIVEKIT_TOKEN not in text, f"a secret was logged: {text}"
