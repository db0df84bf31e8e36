"""Fixtures: the real LiveKit server, and `wespoke_stack` (LiveKit + local API + test assistants).

`livekit_server`        a started `LiveKitServer` for one test (function scope; startup ~0.1 s).
`livekit_server_module` the same, shared by a module's tests (for tests that only join rooms).
`wespoke_stack`         a `Stack`: the API server dispatches a test assistant for every token.
    stack.assistant_options = {"report_frames": True}   # before the call starts
    settings = stack.settings()                          # a Settings for this stack
    ... start a call ...
    assistant = stack.assistant_for(call_id)             # or stack.assistants[-1]
    assistant.wait_for("greeting_done"); assistant.send({"cmd": "barge_in"})
Teardown stops every assistant and both servers, always.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack.assistant_control import AssistantPool, AssistantProcess, make_dispatcher
from tests.stack.livekit_server import LiveKitServer
from tests.stack.wespoke_fixtures import TestWespokeServer, start_wespoke_server
from wespoke_tui.settings import Settings


@pytest.fixture
def livekit_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LiveKitServer]:
    server = LiveKitServer(log_dir=tmp_path)
    try:
        server.start()
        request.node.user_properties.append(("livekit_startup_s", server.startup_seconds))
        yield server
    finally:
        server.stop()


def running(server: LiveKitServer) -> Iterator[LiveKitServer]:
    """A fixture's body for a shared server: started, yielded, always stopped."""
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def livekit_server_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKitServer]:
    yield from running(LiveKitServer(log_dir=tmp_path_factory.mktemp("livekit")))


class Stack:
    """The local stack of one test: LiveKit server, API server, and the assistants it dispatched."""

    def __init__(self, livekit: LiveKitServer, api: TestWespokeServer, pool: AssistantPool) -> None:
        self.livekit = livekit
        self.api = api
        self._pool = pool

    @property
    def api_url(self) -> str:
        return self.api.url

    @property
    def api_key(self) -> str:
        return self.api.api_key

    @property
    def assistant_id(self) -> str:
        return self.api.assistant_id

    @property
    def assistants(self) -> list[AssistantProcess]:
        return self._pool.assistants

    @property
    def assistant_options(self) -> dict[str, Any]:
        """Options (argv flags of `tests.stack.assistant`) for the assistants started from now on."""
        return self._pool.options

    @assistant_options.setter
    def assistant_options(self, options: dict[str, Any]) -> None:
        self._pool.options = dict(options)

    def assistant_for(self, call_id: str, timeout: float = 10.0) -> AssistantProcess:
        return self._pool.assistant_for(call_id, timeout)

    def settings(self, **overrides: Any) -> Settings:
        base = Settings(
            api_key=self.api_key,
            assistant_id=self.assistant_id,
            api_url=self.api_url,
            lang="en",
            mic_consent_given=True,
        )
        return dataclasses.replace(base, **overrides)

    def close(self) -> None:
        try:
            self._pool.stop_all()
        finally:
            try:
                self.api.stop()
            finally:
                self.livekit.stop()


@pytest.fixture
def wespoke_stack(livekit_server: LiveKitServer, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Options for the assistants can also come from `@pytest.mark.assistant_options(report_frames=True)`."""
    dispatch, pool = make_dispatcher(livekit_server, log_dir=tmp_path)
    marker = request.node.get_closest_marker("assistant_options")
    if marker is not None:
        pool.options = dict(marker.kwargs)
    api = start_wespoke_server(
        livekit_url=livekit_server.url,
        livekit_api_key=livekit_server.api_key,
        livekit_api_secret=livekit_server.api_secret,
        dispatch=dispatch,
    )
    stack = Stack(livekit_server, api, pool)
    try:
        yield stack
    finally:
        stack.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "assistant_options(**flags): argv options of the test assistants of `wespoke_stack`"
    )
