"""Fixtures: a real LiveKit Agents assistant on the local stack.

`agents_worker`  one `tests.stack.agents_assistant` worker for the whole run (session scope), on
                 its own LiveKit server; stopped (and reaped) at the end of the run.
`agents_stack`   per test: the local API server on that LiveKit server, with the `asst_agents`
                 assistant whose tokens dispatch the worker by agent name.
    settings = agents_stack.settings()              # a Settings for asst_agents
    ... start a call ...
    job = agents_stack.job_for(call_id)             # the worker's job_started report
    agents_stack.worker.log.wait_for("agent_state", lambda r: r["room"] == job["room"] ...)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack.agents_control import AGENT_NAME, ASSISTANT_ID, ASSISTANT_NAME, AgentsWorker
from tests.stack.livekit_fixtures import running
from tests.stack.livekit_server import LiveKitServer
from tests.stack.wespoke_fixtures import TestWespokeServer, start_wespoke_server
from wespoke_tui.settings import Settings


@pytest.fixture(scope="session")
def agents_livekit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKitServer]:
    yield from running(LiveKitServer(log_dir=tmp_path_factory.mktemp("agents-livekit")))


@pytest.fixture(scope="session")
def agents_worker(agents_livekit: LiveKitServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentsWorker]:
    log_path = tmp_path_factory.mktemp("agents-worker") / "worker.jsonl"
    worker = AgentsWorker(agents_livekit.url, log_path, api_key=agents_livekit.api_key,
                          api_secret=agents_livekit.api_secret)
    try:
        yield worker.start()
    finally:
        worker.stop()


@dataclasses.dataclass
class AgentsStack:
    livekit: LiveKitServer
    api: TestWespokeServer
    worker: AgentsWorker
    assistant_id: str = ASSISTANT_ID

    def settings(self, **overrides: Any) -> Settings:
        base = Settings(
            api_key=self.api.api_key,
            assistant_id=self.assistant_id,
            api_url=self.api.url,
            lang="en",
            mic_consent_given=True,
        )
        return dataclasses.replace(base, **overrides)

    def job_for(self, call_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The worker's `job_started` report for the call (the dispatch metadata names it)."""
        return self.worker.log.wait_for(
            "job_started", lambda r: json.loads(r["dispatch_metadata"] or "{}").get("callId") == call_id,
            timeout, alive=lambda: self.worker.running,
        )

    def events(self, room: str, name: str | None = None, **match: Any) -> list[dict[str, Any]]:
        """The worker's reports about one call (its room)."""
        return self.worker.log.events(name, room=room, **match)


@pytest.fixture
def agents_stack(agents_livekit: LiveKitServer, agents_worker: AgentsWorker) -> Iterator[AgentsStack]:
    assert agents_worker.running, f"the agents worker died; stderr:\n{agents_worker.stderr_tail()}"
    api = start_wespoke_server(
        livekit_url=agents_livekit.url,
        livekit_api_key=agents_livekit.api_key,
        livekit_api_secret=agents_livekit.api_secret,
    )
    api.add_assistant(ASSISTANT_ID, ASSISTANT_NAME, version=1, agent_name=AGENT_NAME)
    try:
        yield AgentsStack(agents_livekit, api, agents_worker)
    finally:
        api.stop()
