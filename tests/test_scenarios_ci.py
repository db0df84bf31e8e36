"""`wespoke-tui test` as a CI job runs it: the command line against the local stack, under the
environment GitHub Actions sets, read back as the runner reads it — the workflow commands on
stdout (`::error file=…,line=…::…`), the job summary file, the JSON lines of each run, and the exit
status: 1 for a missed gate and a flaky turn, 3 when the service refuses the call, 2 for a bad file.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.stack.agents_control import AgentControl
from tests.stack.agents_fixtures import AgentsStack
from tests.stack.wespoke_fixtures import TestWespokeServer

pytestmark = pytest.mark.timeout(300)

SCRIPT = Path(sys.executable).parent / "wespoke-tui"
# What GitHub's runner reads of a line on stdout: `::level key=value,key=value::message`.
COMMAND = re.compile(r"^::(?P<level>error|warning|notice)(?: (?P<props>[^:]*))?::(?P<message>.*)$")


@dataclass(frozen=True)
class Annotation:
    level: str
    file: str | None
    line: int | None
    title: str | None
    message: str


def unescape(text: str, *, prop: bool = False) -> str:
    """The workflow-command escapes undone, in the order the runner undoes them."""
    pairs = [("%0D", "\r"), ("%0A", "\n")] + ([("%3A", ":"), ("%2C", ",")] if prop else []) + [("%25", "%")]
    for escaped, plain in pairs:
        text = text.replace(escaped, plain)
    return text


def annotations(stdout: str) -> list[Annotation]:
    found = []
    for raw in stdout.splitlines():
        match = COMMAND.match(raw)
        if not match:
            continue
        props: dict[str, str] = {}
        for part in filter(None, (match.group("props") or "").split(",")):
            key, _, value = part.partition("=")
            props[key] = unescape(value, prop=True)
        found.append(Annotation(match.group("level"), props.get("file"), int(props["line"]) if "line" in props else None,
                                props.get("title"), unescape(match.group("message"))))
    return found


def github_env(tmp_path: Path, key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WESPOKE_", "GITHUB_"))}
    env.update({"WESPOKE_API_KEY": key, "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path),
                "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")})
    return env


def run_cli(api: TestWespokeServer, assistant_id: str, scenario: Path, env: dict[str, str], *extra: str,
            timeout: float = 240) -> subprocess.CompletedProcess[str]:
    args = [str(SCRIPT), "test", str(scenario), "--api-url", api.url, "--assistant-id", assistant_id, "--lang", "en",
            *extra]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)


def line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


async def test_a_missed_latency_gate_and_a_flaky_turn_fail_the_job_at_their_lines(
    agents_stack: AgentsStack, tmp_path: Path
) -> None:
    control = AgentControl(wrong_every=3, counter=f"ci-{uuid.uuid4().hex}")
    text = f"""name = "CI gates"
greeting_timeout = 30

[assistant]
first_message = "Welcome."
metadata = {control.toml()}

[gates]
p90_response_ms = 1
min_pass_rate = 0.5

[[turns]]
type = "How are you?"
timeout = 30
expect.contains = "You said: How are you"
"""
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(text, encoding="utf-8")
    jsonl, report = tmp_path / "runs.jsonl", tmp_path / "report.json"
    done = await asyncio.to_thread(run_cli, agents_stack.api, agents_stack.assistant_id, scenario,
                                   github_env(tmp_path, agents_stack.api.api_key), "--repeat", "3",
                                   "--jsonl", str(jsonl), "--json", str(report))
    print(done.stdout)
    assert done.returncode == 1, done.stdout + done.stderr

    # Runs 1 and 2 answer right, run 3 wrong (the assistant's every third answer): 2 of 3 passed,
    # the turn is flaky, and min_pass_rate 0.5 holds; the latency gate of 1 ms cannot.
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [(r["run"], r["passed"]) for r in lines] == [(1, True), (2, True), (3, False)]
    found = annotations(done.stdout)
    gate = [a for a in found if a.line == line_of(text, "p90_response_ms")]
    assert gate and gate[0].level == "error" and gate[0].file == "scenario.toml", found
    assert "p90" in gate[0].message
    turn = [a for a in found if a.line == line_of(text, "expect.contains")]
    assert turn and turn[0].file == "scenario.toml", found
    assert turn[0].title is not None and "1 of 3" in turn[0].title and "flaky" in turn[0].title, turn[0]
    assert 'run 3: expected "You said: How are you"' in turn[0].message, turn[0].message
    assert not [a for a in found if a.line == line_of(text, "min_pass_rate") and a.level == "error"], found

    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "CI gates" in summary and "67%" in summary and "FLAKY" in summary, summary
    doc = json.loads(report.read_text())
    assert doc["outcome"] == "failed", doc.keys()
    assert "flaky" in done.stdout.lower() and "p90" in done.stdout


async def test_a_refused_key_is_infrastructure_exit_3_not_a_failed_assistant(
    wespoke_server: TestWespokeServer, tmp_path: Path
) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text('[[turns]]\ntype = "hello"\n', encoding="utf-8")
    wrong_key = "pk_test_" + "0" * 32
    done = await asyncio.to_thread(run_cli, wespoke_server, "asst_test", scenario, github_env(tmp_path, wrong_key),
                                   "--json", str(tmp_path / "report.json"))
    assert done.returncode == 3, done.stdout + done.stderr
    assert json.loads((tmp_path / "report.json").read_text())["outcome"] == "infrastructure"
    assert wrong_key not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_file_is_exit_2_with_an_annotation_at_its_line(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text('[[turns]]\nsay = "hi"\ninterrupt_after_ms = -5\n', encoding="utf-8")
    env = github_env(tmp_path, "pk_test_" + "1" * 32)
    done = subprocess.run([str(SCRIPT), "test", str(scenario), "--assistant-id", "a"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    (found,) = annotations(done.stdout)
    assert (found.level, found.file, found.line) == ("error", "scenario.toml", 3)
    assert "interrupt_after_ms" in found.message


# ------------------------------------------------------------------------------ --chat


CHAT_SCENARIO = """name = "Over the chat"
greeting_timeout = 10

[[turns]]
say = "Where is my order?"
timeout = 10
expect.contains = "You said: Where is my order"
expect.max_wer = 0.2

[[turns]]
type = "What is the weather like?"
timeout = 10
expect.tool = "lookup_weather"
expect.max_response_ms = 5000

[[turns]]
say = "Stop, please."
interrupt_after_ms = 300
timeout = 10
expect.stops_within_ms = 800
expect.contains = "You said: Stop, please"
"""


def test_chat_mode_types_spoken_turns_and_names_what_it_does_not_check(tmp_path: Path) -> None:
    from wespoke_tui.scenario.chat_mode import typed
    from wespoke_tui.scenario.model import Action, ScenarioError, load_scenario

    path = tmp_path / "scenario.toml"
    path.write_text(CHAT_SCENARIO, encoding="utf-8")
    scenario, dropped = typed(load_scenario(path))
    assert [t.action for t in scenario.turns] == [Action.TYPE] * 3
    assert [t.text for t in scenario.turns] == ["Where is my order?", "What is the weather like?", "Stop, please."]
    assert dropped == ["expect.max_wer", "interrupt_after_ms", "expect.stops_within_ms"]
    assert scenario.turns[1].expect.max_response_ms == 5000  # what a chat can time stays
    (tmp_path / "hello.wav").write_bytes(b"")
    path.write_text('[[turns]]\ntype = "a"\n\n[[turns]]\nsay_wav = "hello.wav"\n', encoding="utf-8")
    with pytest.raises(ScenarioError) as refused:
        typed(load_scenario(path))
    assert refused.value.line == 5 and "no text to type" in refused.value.message


async def test_a_scenario_runs_over_the_text_chat_with_chat(wespoke_server: TestWespokeServer, tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(CHAT_SCENARIO, encoding="utf-8")
    report = tmp_path / "report.json"
    done = await asyncio.to_thread(run_cli, wespoke_server, "asst_test", scenario,
                                   github_env(tmp_path, wespoke_server.api_key), "--chat", "--json", str(report),
                                   timeout=120)
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "over the text chat" in done.stderr and "expect.stops_within_ms" in done.stderr
    (run,) = json.loads(report.read_text())["runs"]
    assert [t["passed"] for t in run["turns"]] == [True, True, True]
    assert all(t["response_ms"] is not None and 0 < t["response_ms"] < 5000 for t in run["turns"]), run["turns"]
    assert run["turns"][1]["tools"] == ["lookup_weather"]
    assert wespoke_server.calls == {}  # no voice call was made
    (chat,) = wespoke_server.chats.values()
    assert [m["content"] for m in chat.messages if m["role"] == "user"] == [
        "Where is my order?", "What is the weather like?", "Stop, please."]
