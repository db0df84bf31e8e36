"""Pytest fixtures for the local Wespoke-compatible API server.

`wespoke_server`: a started server with one key (`TEST_API_KEY`) and one assistant
(`TEST_ASSISTANT_ID`, "Test Assistant"); `server.api_key` / `server.assistant_id` name them.
A fixture that needs the server wired to a LiveKit server and a test assistant builds it with
`start_wespoke_server(livekit_url=..., dispatch=...)`, then stops it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack.wespoke_server import Dispatch, WespokeServer

TEST_API_KEY = "pk_test_" + "t3stK3y0123456789abcdefX"  # prefix + 24 characters
TEST_ASSISTANT_ID = "asst_test"
TEST_ASSISTANT_NAME = "Test Assistant"


class TestWespokeServer(WespokeServer):
    """A WespokeServer that knows the key and assistant it was set up with."""

    __test__ = False  # not a test class, whatever its name says
    api_key: str = TEST_API_KEY
    assistant_id: str = TEST_ASSISTANT_ID


def start_wespoke_server(
    *,
    livekit_url: str = "ws://127.0.0.1:7880",
    livekit_api_key: str = "devkey",
    livekit_api_secret: str = "secret",
    dispatch: Dispatch | None = None,
    **key_options: Any,
) -> TestWespokeServer:
    """A started server with the default key and assistant. `key_options` go to `add_key`."""
    server = TestWespokeServer(livekit_url, livekit_api_key, livekit_api_secret, dispatch=dispatch)
    server.add_key(TEST_API_KEY, **key_options)
    server.add_assistant(TEST_ASSISTANT_ID, TEST_ASSISTANT_NAME, version=3)
    return server.start()


@pytest.fixture
def wespoke_server() -> Iterator[TestWespokeServer]:
    server = start_wespoke_server()
    try:
        yield server
    finally:
        server.stop()
