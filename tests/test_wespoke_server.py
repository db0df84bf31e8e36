"""The local Wespoke-compatible server itself: its contract checks, failure injection and CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from livekit import api, rtc

from tests.stack.livekit_server import LiveKitServer, _short_secret_ok
from tests.stack.wespoke_fixtures import TEST_API_KEY, TEST_ASSISTANT_ID, TestWespokeServer, start_wespoke_server
from tests.stack.wespoke_server import WespokeServer

AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}
TOKEN = "/api/v1/embed/token"


def post_token(server: WespokeServer, body: object = None, headers: dict[str, str] | None = None, **kw: object) -> httpx.Response:
    body = {"assistantId": TEST_ASSISTANT_ID} if body is None else body
    return httpx.post(server.url + TOKEN, json=body, headers=headers if headers is not None else AUTH, **kw)  # type: ignore[arg-type]


def test_bearer_is_required(wespoke_server: TestWespokeServer) -> None:
    for headers in ({}, {"Authorization": TEST_API_KEY}, {"Authorization": "Basic " + TEST_API_KEY}):
        answer = post_token(wespoke_server, headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {"success": False, "error": {"message": "Invalid API key", "code": "UNAUTHORIZED"}}


def test_origin_allow_list(wespoke_server: TestWespokeServer) -> None:
    wespoke_server.add_key(TEST_API_KEY, origins=["https://a.example"])
    assert post_token(wespoke_server).status_code == 403  # no Origin at all
    assert post_token(wespoke_server, headers={**AUTH, "Origin": "https://b.example"}).json()["error"]["code"] == "DOMAIN_NOT_ALLOWED"
    assert post_token(wespoke_server, headers={**AUTH, "Origin": "https://a.example"}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"assistantId": 5}', b'{"assistantId": "asst_test", "metadata": []}',
     b'{"assistantId": "asst_test", "assistantOverrides": "x"}'],
)
def test_body_validation(wespoke_server: TestWespokeServer, body: bytes) -> None:
    answer = httpx.post(wespoke_server.url + TOKEN, content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "INVALID_REQUEST"


def test_credits_run_out(wespoke_server: TestWespokeServer) -> None:
    wespoke_server.set_credits(TEST_API_KEY, 1)
    assert post_token(wespoke_server).status_code == 200
    answer = post_token(wespoke_server)
    assert answer.status_code == 402 and answer.json()["error"]["code"] == "INSUFFICIENT_CREDITS"


def test_rate_limit_window_passes(wespoke_server: TestWespokeServer) -> None:
    wespoke_server.set_rate_limit(TEST_API_KEY, limit=1, window_s=0.5)
    assert post_token(wespoke_server).json()["data"]["rateLimit"]["remaining"] == 0
    limited = post_token(wespoke_server)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert limited.json()["error"]["retryAfter"] == 1 and limited.json()["error"]["resetAt"]
    time.sleep(0.6)  # scenario: the rate limit's window passes
    assert post_token(wespoke_server).status_code == 200


def test_unknown_path_and_wrong_method(wespoke_server: TestWespokeServer) -> None:
    assert httpx.get(wespoke_server.url + "/nope", headers=AUTH).status_code == 404
    assert httpx.get(wespoke_server.url + TOKEN, headers=AUTH).status_code == 405


def test_fail_next_counts_globs_and_forever(wespoke_server: TestWespokeServer) -> None:
    wespoke_server.fail_next("token", status=503, count=2)
    assert [post_token(wespoke_server).status_code for _ in range(3)] == [503, 503, 200]
    wespoke_server.fail_next("/api/v1/embed/calls/*", status=500, body=b"<html>boom</html>", count=None)
    for _ in range(3):
        answer = httpx.post(wespoke_server.url + "/api/v1/embed/calls/c1/end", headers=AUTH)
        assert (answer.status_code, answer.text) == (500, "<html>boom</html>")
    wespoke_server.clear_failures()
    assert httpx.post(wespoke_server.url + "/api/v1/embed/calls/c1/end", headers=AUTH).status_code == 404
    with pytest.raises(ValueError):
        wespoke_server.fail_next("tokn", status=500)


def test_fail_next_drop_and_delay(wespoke_server: TestWespokeServer) -> None:
    wespoke_server.fail_next("token", drop=True)
    with pytest.raises(httpx.RemoteProtocolError):
        post_token(wespoke_server)
    wespoke_server.fail_next("token", delay_s=0.4)
    started = time.monotonic()
    assert post_token(wespoke_server).status_code == 200
    assert time.monotonic() - started >= 0.4


def test_deleted_call_is_gone_and_other_keys_see_nothing(wespoke_server: TestWespokeServer) -> None:
    other = "pk_test_" + "z" * 24
    wespoke_server.add_key(other)
    call_id = post_token(wespoke_server).json()["data"]["callId"]
    path = f"/api/v1/embed/calls/{call_id}/messages"
    assert httpx.get(wespoke_server.url + path, headers={"Authorization": f"Bearer {other}"}).status_code == 404
    assert httpx.get(wespoke_server.url + path + "?limit=abc", headers=AUTH).status_code == 400
    assert httpx.delete(wespoke_server.url + f"/api/v1/calls/{call_id}", headers=AUTH).status_code == 200
    assert httpx.get(wespoke_server.url + path, headers=AUTH).status_code == 404
    assert wespoke_server.calls[call_id].deleted


def test_dispatch_errors_are_recorded() -> None:
    def broken(record: object, server: object) -> None:
        raise RuntimeError("assistant failed to start")

    server = start_wespoke_server(dispatch=broken)
    try:
        assert post_token(server).status_code == 200
        deadline = time.monotonic() + 3
        while not server.dispatch_errors and time.monotonic() < deadline:
            time.sleep(0.02)  # poll
        assert [str(e) for e in server.dispatch_errors] == ["assistant failed to start"]
    finally:
        server.stop()


def test_runs_by_hand_from_the_command_line() -> None:
    key = "pk_test_" + "h" * 24
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.stack.wespoke_server", "--port", "0", "--key", key,
         "--assistant", "asst_demo=Demo", "--livekit-url", "ws://127.0.0.1:7999"],
        cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        answer = httpx.post(url + TOKEN, json={"assistantId": "asst_demo"}, headers={"Authorization": f"Bearer {key}"})
        data = answer.json()["data"]
        assert data["url"] == "ws://127.0.0.1:7999" and data["assistant"]["name"] == "Demo"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_answers_without_the_nagle_delay(wespoke_server: TestWespokeServer) -> None:
    """Headers and body are two writes: with Nagle on, every answer waited ~40 ms (delayed ACK)."""
    with httpx.Client(base_url=wespoke_server.url, headers=AUTH) as http:
        call_id = http.post(TOKEN, json={"assistantId": TEST_ASSISTANT_ID}).json()["data"]["callId"]
        times = []
        for _ in range(15):
            started = time.perf_counter()
            assert http.post(f"/api/v1/embed/calls/{call_id}/mute", json={"muted": True}).status_code == 200
            times.append(time.perf_counter() - started)
    assert sorted(times)[len(times) // 2] < 0.025


def test_browser_pages_pass_cors(wespoke_server: TestWespokeServer) -> None:
    """A page on another origin (the web embed) is preflighted, then reads answers and errors alike."""
    page = "http://127.0.0.1:9999"
    preflight = httpx.options(wespoke_server.url + TOKEN, headers={
        "Origin": page, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    })
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == page
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert {"authorization", "content-type"} <= {
        h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert wespoke_server.requests == []  # the browser's, not a client request

    answer = post_token(wespoke_server, headers={**AUTH, "Origin": page})
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == page
    assert answer.headers["Vary"] == "Origin"

    wespoke_server.add_key(TEST_API_KEY, origins=["https://a.example"])
    refused = post_token(wespoke_server, headers={**AUTH, "Origin": page})
    assert refused.status_code == 403 and refused.headers["Access-Control-Allow-Origin"] == page
    assert "Access-Control-Allow-Origin" not in post_token(wespoke_server).headers  # no Origin: not a browser


async def test_agent_assistant_tokens_dispatch_by_room_configuration(livekit_server: LiveKitServer) -> None:
    """An assistant set up with an agent name: its token's room configuration dispatches that
    LiveKit Agents worker (LiveKit records the dispatch when the caller's join creates the room),
    with the call in the dispatch metadata; the `dispatch` hook is left to the other assistants."""
    hooked: list[str] = []
    server = start_wespoke_server(livekit_url=livekit_server.url, dispatch=lambda record, _server: hooked.append(record.assistant_id))
    server.add_assistant("asst_agents", "Agents", agent_name="the-agent")
    room = rtc.Room()
    try:
        body = {"assistantId": "asst_agents", "metadata": {"userId": "u1"}, "assistantOverrides": {"firstMessage": "Hi"}}
        data = post_token(server, body).json()["data"]
        assert data["assistant"] == {"id": "asst_agents", "name": "Agents", "version": 1}  # no agent name leaks
        with _short_secret_ok():
            claims = api.TokenVerifier("devkey", "secret").verify(data["token"])
            plain = api.TokenVerifier("devkey", "secret").verify(post_token(server).json()["data"]["token"])
        (dispatch,) = claims.room_config.agents
        assert dispatch.agent_name == "the-agent"
        assert json.loads(dispatch.metadata) == {"callId": data["callId"], "assistantId": "asst_agents",
                                                 "metadata": {"userId": "u1"}, "assistantOverrides": {"firstMessage": "Hi"}}
        assert plain.room_config is None or not plain.room_config.agents
        # The hook runs on a thread of its own, started before the token's answer: the agents
        # call's thread, had there been one, started before the plain call's.
        deadline = time.monotonic() + 3
        while not hooked and time.monotonic() < deadline:
            time.sleep(0.02)  # poll
        assert hooked == [TEST_ASSISTANT_ID]

        await room.connect(data["url"], data["token"])
        with _short_secret_ok():
            async with livekit_server.room_api() as lk:
                dispatches = await lk.agent_dispatch.list_dispatch(data["roomName"])
        assert [(d.agent_name, json.loads(d.metadata)["callId"]) for d in dispatches] == [("the-agent", data["callId"])]
    finally:
        await room.disconnect()
        server.stop()
