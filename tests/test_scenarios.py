"""`wespoke-tui test SCENARIO.toml`: the file checked with line numbers before any call; scripted
calls against the local stack's echo assistant and its LiveKit Agents assistant; the reports."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import junitparser
import numpy as np
import pytest

from tests.stack.agents_control import REPLY_TAIL
from tests.stack.agents_fixtures import AgentsStack
from tests.stack.wespoke_fixtures import TestWespokeServer
from tests.support.signals import tone_wav
from wespoke_tui.audio.wav import write_wav_48k_mono
from wespoke_tui.scenario.model import ScenarioError, load_scenario

SCRIPT = Path(sys.executable).parent / "wespoke-tui"


def write(tmp_path: Path, text: str, name: str = "scenario.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run_test(api: TestWespokeServer, assistant_id: str, scenario: Path, *extra: str,
             timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WESPOKE_")}
    env["WESPOKE_API_KEY"] = api.api_key
    args = [str(SCRIPT), "test", str(scenario), "--api-url", api.url, "--assistant-id", assistant_id, "--lang", "en",
            *extra]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)


# ------------------------------------------------------------------------------ the file


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[[turns]]\nsay = "hi"\nexpect.contain = "x"\n', 3, "unknown key 'expect.contain'"),
        ('name = "n"\n\n[[turns]]\nsay = "a"\n\n[[turns]]\ntype = "b"\nsay = "c"\n', 6, "exactly one of say, say_wav, type"),
        ('[[turns]]\nsay_wav = "missing.wav"\n', 2, "no such WAV file"),
        ('[[turns]]\ntype = "x"\ntimeout = -1\n', 3, "'timeout' must be a number of seconds"),
        ('[[turns]]\ntype = "x"\nexpect.regex = "(unclosed"\n', 3, "not a regular expression"),
        ('[[turns]]\ntype = "x"\nexpect.call_ends = "yes"\n', 3, "must be true or false"),
        ('[assistant]\nvariables = { name = 3 }\n[[turns]]\ntype = "x"\n', 2, "values must be strings"),
        ('colour = "red"\n[[turns]]\ntype = "x"\n', 1, "unknown key 'colour'"),
        ('[[turns]]\ntype = "x"\nexpect = { contains = ["a", 2] }\n', 3, "string or a list of strings"),
        ('name = "n"\n', None, "no turns"),
        ('[[turns]\n', 1, "invalid TOML"),
        ('[[turns]]\nwait = 0\n', 2, "'wait' must be a number of seconds"),
        ('[[turns]]\ntype = "x"\ninterrupt_after_ms = 300\n', 3, "is for spoken turns"),
        ('[[turns]]\nsay = "x"\nexpect.stops_within_ms = 500\n', 3, "add 'interrupt_after_ms'"),
        ('[[turns]]\nsay = "x"\ninterrupt_after_ms = 1\nexpect.stops_within_ms = 5\nexpect.keeps_talking = true\n', 5,
         "contradict"),
        ('[[turns]]\ntype = "x"\nexpect.max_wer = 0.2\n', 3, "compares what a 'say' turn said"),
        ('[[turns]]\nsay = "x"\nexpect.max_wer = 1.5\n', 3, "from 0 to 1"),
        ('[[turns]]\ntype = "x"\nexpect.speaks = true\n', 3, "is for wait turns"),
        ('[[turns]]\ntype = "x"\nexpect.max_response_ms = "fast"\n', 3, "number of milliseconds"),
        ('lang = "de"\n[[turns]]\ntype = "x"\n', 1, "'lang' must be one of en, tr"),
        ('[gates]\np90_response_ms = 0\n[[turns]]\ntype = "x"\n', 2, "'gates.p90_response_ms' must be"),
        ('[gates]\nmin_pass_rate = 2\n[[turns]]\ntype = "x"\n', 2, "'gates.min_pass_rate' must be a number from 0 to 1"),
        ('[gates]\naudio = ["loud"]\n[[turns]]\ntype = "x"\n', 2, "list of audio checks"),
        ('[gates]\np99 = 3\n[[turns]]\ntype = "x"\n', 2, "unknown key 'gates.p99'"),
        ('greeting_timeout = 0\n[[turns]]\nsay = "x"\ninterrupt_after_ms = 500\n', 4, "waits for none"),
    ],
)
def test_a_wrong_scenario_is_refused_with_its_line(tmp_path: Path, text: str, line: int | None, message: str) -> None:
    with pytest.raises(ScenarioError) as refused:
        load_scenario(write(tmp_path, text))
    assert refused.value.line == line and message in refused.value.message, refused.value


def test_a_wrong_scenario_makes_no_call(wespoke_server: TestWespokeServer, tmp_path: Path) -> None:
    bad = write(tmp_path, '[[turns]]\nsay = "hello"\n\n[[turns]]\nsay = "again"\nexpect.tool = 7\n')
    done = run_test(wespoke_server, wespoke_server.assistant_id, bad)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"wespoke-tui: error: {bad}:6: turn 2: 'expect.tool' must be a string or a list "
                                   "of strings")
    assert wespoke_server.requests == []


def test_a_good_scenario_reads_whole(tmp_path: Path) -> None:
    write_wav_48k_mono(tmp_path / "hello.wav", np.zeros(4800, np.int16))
    scenario = load_scenario(write(tmp_path, """
name = "Order status"
greeting_timeout = 5
[assistant]
first_message = "Hi!"
variables = { name = "Ayşe" }
[[turns]]
say_wav = "hello.wav"
expect.contains = ["order", "number"]
[[turns]]
type = "thanks"
timeout = 8
expect = { not_contains = "sorry", call_ends = true }
"""))
    assert scenario.name == "Order status" and scenario.greeting_timeout_s == 5
    assert scenario.first_message == "Hi!" and scenario.variables == {"name": "Ayşe"}
    first, second = scenario.turns
    assert first.wav == tmp_path / "hello.wav" and first.expect.contains == ("order", "number")
    assert second.action == "type" and second.timeout_s == 8 and second.expect.call_ends is True
    assert second.expect.not_contains == ("sorry",) and not scenario.speaks


# ------------------------------------------------------------------------------ real calls


ECHO_SCENARIO = """
name = "Echo assistant"
greeting_timeout = 15

[[turns]]
say = "Hello there, where is my order?"
timeout = 10

[[turns]]
say_wav = "tone.wav"
timeout = 10
expect.not_contains = "sorry"

[[turns]]
say = "Thank you, goodbye."
timeout = 10
"""


async def test_three_turns_with_the_echo_assistant_pass_with_times_and_reports(wespoke_stack, tmp_path: Path) -> None:
    tone_wav(tmp_path / "tone.wav", 1.2)
    scenario = write(tmp_path, ECHO_SCENARIO)
    junit, report = tmp_path / "report.xml", tmp_path / "report.json"
    done = await asyncio.to_thread(run_test, wespoke_stack.api, wespoke_stack.assistant_id, scenario,
                                   "--junit", str(junit), "--json", str(report), "--record", str(tmp_path / "rec"))
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = json.loads(report.read_text())["runs"]
    assert run["passed"] and [t["passed"] for t in run["turns"]] == [True, True, True]
    (record,) = wespoke_stack.api.calls.values()
    assert run["call_id"] == record.call_id and record.ended
    # Each spoken turn is echoed: its first sound comes back while the turn still plays, so the
    # answer after the end of the turn is heard at once (the rest of the echo).
    assert all(t["response_ms"] is not None and 0 <= t["response_ms"] < 1000 for t in run["turns"])
    assert run["recording"] and Path(run["recording"]).is_file()
    suites = junitparser.JUnitXml.fromfile(str(junit))
    (suite,) = list(suites)
    assert (suite.tests, suite.failures) == (3, 0)
    assert 'Scenario "Echo assistant", run 1: PASS' in done.stdout and "3 of 3 turns passed" in done.stdout


async def test_a_wrong_expectation_fails_and_the_report_says_which_turn_and_why(wespoke_stack, tmp_path: Path) -> None:
    scenario = write(tmp_path, """
name = "Wrong"
greeting_timeout = 15
[[turns]]
say = "I want a refund"
timeout = 6
expect.contains = "refund approved"
expect.tool = "issue_refund"
""")
    junit = tmp_path / "report.xml"
    done = await asyncio.to_thread(run_test, wespoke_stack.api, wespoke_stack.assistant_id, scenario,
                                   "--junit", str(junit))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "turn 1: say 'I want a refund': FAIL" in done.stdout
    # (The echo assistant's scripted messages after its greeting may fall in the turn: said and seen.)
    assert '- expected "refund approved" in the answer; the assistant said ' in done.stdout
    assert '- expected the tool "issue_refund" to run; tools seen: ' in done.stdout
    (suite,) = list(junitparser.JUnitXml.fromfile(str(junit)))
    (case,) = list(suite)
    assert suite.failures == 1 and case.name == "turn 1: say 'I want a refund'"
    assert "refund approved" in case.result[0].message


async def test_three_turns_with_the_livekit_agents_assistant(agents_stack: AgentsStack, tmp_path: Path) -> None:
    scenario = write(tmp_path, f"""
name = "LiveKit Agents"
greeting_timeout = 30

[assistant]
first_message = "Welcome to the scenario."

[[turns]]
say = "Hello there, how are you today?"
timeout = 30
expect.contains = "You said: heard"
expect.regex = 'heard \\d\\.\\d seconds of speech'

[[turns]]
type = "What is the weather like?"
timeout = 30
expect.contains = ["You said: What is the weather like", "{REPLY_TAIL.split(',')[0]}"]

[[turns]]
say = "Thank you."
timeout = 30
expect.not_contains = "weather"
""")
    report = tmp_path / "report.json"
    done = await asyncio.to_thread(run_test, agents_stack.api, agents_stack.assistant_id, scenario,
                                   "--json", str(report), timeout=240)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = json.loads(report.read_text())["runs"]
    turns = run["turns"]
    # The agent thinks 0.5 s before it answers: the first sound comes after that, and its words
    # reach the client as a transcript stream.
    assert all(t["response_ms"] is not None and t["response_ms"] > 400 for t in turns), turns
    assert turns[0]["transcript_ms"] is not None
    # Against the assistant's own log (one machine, one wall clock): the answer is heard after the
    # agent began to speak, by the way down to us and the onset of its first sound. The gap is
    # printed; it is no test of the client (issue 13 asks for 50 ms: 77 ms was seen while another
    # test run installed packages, 106-318 ms with both cores busy, where the agent itself runs
    # late), so the bound only ties each turn's time to that turn's answer.
    (call,) = agents_stack.api.calls.values()
    room = agents_stack.job_for(call.call_id)["room"]
    speaking = [r["wall"] for r in agents_stack.events(room, "agent_state", state="speaking")]
    for turn in turns:
        began = min(w for w in speaking if w >= turn["ended_at"])
        print(f"turn {turn['turn']}: agent speaking {(began - turn['ended_at']) * 1000:.0f} ms after the end, "
              f"heard {turn['response_ms']:.0f} ms after it (gap {(turn['answered_at'] - began) * 1000:.0f} ms)")
        assert 0 <= turn["answered_at"] - began < 1.0
