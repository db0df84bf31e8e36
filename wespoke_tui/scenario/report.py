"""What a scenario run reports: text for people, JSON for scripts, JUnit XML for CI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, TextIO

from wespoke_tui.scenario.runner import RunResult, TurnResult


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def write_text(results: list[RunResult], out: TextIO) -> None:
    for result in results:
        verdict = "PASS" if result.passed else "FAIL"
        out.write(f'Scenario "{result.scenario.name}", run {result.run}: {verdict} '
                  f"(call {result.call_id or '—'}, {result.seconds:.1f} s)\n")
        if result.error:
            out.write(f"  the call failed: {result.error}\n")
        for turn in result.turns:
            out.write(f"  {turn.turn.title}: {'PASS' if turn.passed else 'FAIL'}  "
                      f"answer heard after {_ms(turn.response_ms)}, text after {_ms(turn.transcript_ms)}\n")
            if turn.said:
                out.write(f"    assistant: {' '.join(turn.said.split())}\n")
            if turn.tools:
                out.write(f"    tools: {', '.join(turn.tools)}\n")
            for failure in turn.failures:
                out.write(f"    - {failure}\n")
        if result.recording:
            out.write(f"  recording: {result.recording}\n")
    passed = sum(r.passed for r in results)
    turns = [t for r in results for t in r.turns]
    failed = sum(not t.passed for t in turns)
    out.write(f"{passed} of {len(results)} runs passed; {len(turns) - failed} of {len(turns)} turns passed\n")
    out.flush()


def as_json(results: list[RunResult]) -> dict[str, Any]:
    def turn_json(turn: TurnResult) -> dict[str, Any]:
        return {
            "turn": turn.turn.number, "action": turn.turn.action, "input": turn.turn.text or str(turn.turn.wav),
            "passed": turn.passed, "failures": turn.failures, "said": turn.said, "tools": turn.tools,
            "response_ms": turn.response_ms, "transcript_ms": turn.transcript_ms, "metrics": turn.metrics,
            "ended_at": turn.ended_at, "answered_at": turn.answered_at,
            "seconds": round(turn.seconds, 3),
        }

    return {
        "passed": all(r.passed for r in results),
        "runs": [
            {"scenario": r.scenario.name, "file": str(r.scenario.path), "run": r.run, "passed": r.passed,
             "call_id": r.call_id, "error": r.error, "seconds": round(r.seconds, 3), "recording": r.recording,
             "turns": [turn_json(t) for t in r.turns]}
            for r in results
        ],
    }


def write_json(results: list[RunResult], path: Path) -> None:
    path.write_text(json.dumps(as_json(results), ensure_ascii=False, indent=2) + "\n", encoding="utf-8", newline="\n")


def write_junit(results: list[RunResult], path: Path) -> None:
    """One test suite per run, one test case per turn (a call that failed: one failed case)."""
    suites = ET.Element("testsuites")
    for result in results:
        cases = result.turns or []
        failures = sum(not t.passed for t in cases) + (1 if result.error else 0)
        suite = ET.SubElement(suites, "testsuite", name=f"{result.scenario.name} (run {result.run})",
                              tests=str(max(1, len(cases))), failures=str(failures), errors="0",
                              time=f"{result.seconds:.3f}")
        if result.error:
            case = ET.SubElement(suite, "testcase", classname=result.scenario.name, name="call", time="0")
            ET.SubElement(case, "failure", message=result.error).text = result.error
        for turn in cases:
            case = ET.SubElement(suite, "testcase", classname=result.scenario.name, name=turn.turn.title,
                                 time=f"{turn.seconds:.3f}")
            if not turn.passed:
                message = "; ".join(turn.failures)
                ET.SubElement(case, "failure", message=message).text = message
            ET.SubElement(case, "system-out").text = (
                f"assistant: {turn.said}\nresponse: {_ms(turn.response_ms)}; text: {_ms(turn.transcript_ms)}"
            )
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
