"""Roles and tool phases: what each wire says maps onto `Role` and `ToolPhase`, anything else is
ignored as before, every one has its words in both languages, and the JSON written of them
is the same as the plain strings'."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from wespoke_tui.api import ChatToolEvent, chat_event
from wespoke_tui.controllers.chat import TOOL_PHASE_OF_CHAT_EVENT, ChatController, _Reply
from wespoke_tui.events import Role, ToolEvent, ToolPhase, TranscriptItem
from wespoke_tui.headless_report import Reporter
from wespoke_tui.i18n import Texts
from wespoke_tui.presenter import role_words, tool_words
from wespoke_tui.session.agent_events import TOOL_PHASE_OF_TYPE, TranscriptAssembler, parse_data_message
from wespoke_tui.settings import Settings


def _data(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("wire", "phase"),
    [("tool_start", ToolPhase.START), ("tool_complete", ToolPhase.COMPLETE),
     ("tool_failed", ToolPhase.FAILED), ("tool_delayed", ToolPhase.DELAYED)],
)
def test_each_room_tool_type_tells_its_phase(wire: str, phase: ToolPhase) -> None:
    (event,) = parse_data_message(_data({"type": wire, "toolName": "lookup"}))
    assert event == ToolEvent(phase, "lookup", None, None, None)
    assert type(event.phase) is ToolPhase


def test_every_phase_comes_from_the_room_and_the_chat_says_three() -> None:
    assert set(TOOL_PHASE_OF_TYPE.values()) == set(ToolPhase)
    assert set(TOOL_PHASE_OF_CHAT_EVENT.values()) == {ToolPhase.START, ToolPhase.COMPLETE, ToolPhase.FAILED}


def test_an_unknown_room_tool_type_is_ignored_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wespoke_tui.session.agent_events")
    for wire in ("tool_paused", "start", "TOOL_START"):
        assert parse_data_message(_data({"type": wire, "toolName": "lookup"})) == []
    assert "unknown type 'tool_paused'" in caplog.text


@pytest.mark.parametrize(
    ("name", "phase"),
    [("tool:started", ToolPhase.START), ("tool:completed", ToolPhase.COMPLETE), ("tool:failed", ToolPhase.FAILED)],
)
def test_each_chat_tool_event_tells_its_phase(name: str, phase: ToolPhase) -> None:
    event = chat_event(name, '{"toolName": "lookup"}')
    assert isinstance(event, ChatToolEvent)
    assert TOOL_PHASE_OF_CHAT_EVENT[event.phase] is phase


def test_an_unknown_chat_tool_phase_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    assert chat_event("tool:paused", "{}") is None  # the stream's parser knows three
    chat = ChatController(Settings(lang="en"))
    emitted: list[Any] = []
    chat._emit = emitted.append  # type: ignore[method-assign]
    caplog.set_level(logging.DEBUG, logger="wespoke_tui.controllers.chat")
    chat._on_chat_event(_Reply("r"), ChatToolEvent(phase="paused", tool_name="lookup"))
    chat._on_chat_event(_Reply("r"), ChatToolEvent(phase="started", tool_name="lookup"))
    assert [(e.phase, e.tool_name) for e in emitted] == [(ToolPhase.START, "lookup")]
    assert "unknown phase 'paused'" in caplog.text


@pytest.mark.parametrize(
    ("wire", "default", "role"),
    [("human", Role.USER, Role.USER), ("Agent", Role.USER, Role.ASSISTANT), ("function", Role.USER, Role.TOOL),
     ("robot", Role.ASSISTANT, Role.ASSISTANT), (None, Role.USER, Role.USER), (3, Role.ASSISTANT, Role.ASSISTANT)],
)
def test_a_role_maps_onto_its_role_and_an_unknown_one_gets_the_default(wire: Any, default: Role, role: Role) -> None:
    kind = "message" if default is Role.ASSISTANT else "transcription_stream"
    text_field = "content" if kind == "message" else "text"
    (item,) = parse_data_message(_data({"type": kind, "role": wire, text_field: "hi", "isComplete": True}),
                                 None, TranscriptAssembler())
    assert isinstance(item, TranscriptItem) and item.role is role


@pytest.mark.parametrize("lang", ["tr", "en"])
def test_every_role_and_phase_has_its_words(lang: str) -> None:
    t = Texts(lang)  # type: ignore[arg-type]
    assert all(role_words(role, t) for role in Role)
    assert all("lookup" in tool_words(phase, "lookup", t) for phase in ToolPhase)


def _report(events: list[Any]) -> tuple[str, str]:
    lines, records = io.StringIO(), io.StringIO()
    reporter = Reporter("en", lines=lines, records=[records], errors=io.StringIO(),
                        clock=_StillClock(), wall=lambda: 1_750_000_000.0)
    for event in events:
        reporter.handle(event)
    return lines.getvalue(), records.getvalue()


class _StillClock:
    def time(self) -> float:
        return 0.0

    def call_later(self, delay: float, callback: Any) -> Any:
        raise AssertionError("no timer for these events")


def test_the_reporter_writes_the_enums_as_the_strings_they_replace() -> None:
    typed = [TranscriptItem("1", Role.USER, "merhaba", True, True, 1.0),
             ToolEvent(ToolPhase.DELAYED, "lookup", "function", {"id": 7}, 2.0)]
    plain = [TranscriptItem("1", "user", "merhaba", True, True, 1.0),  # type: ignore[arg-type]
             ToolEvent("delayed", "lookup", "function", {"id": 7}, 2.0)]  # type: ignore[arg-type]
    assert _report(typed) == _report(plain)
    lines, records = _report(typed)
    assert lines == "You: merhaba\ntool delayed: lookup\n"
    assert records.splitlines()[0] == (
        '{"type": "transcript", "id": "1", "role": "user", "text": "merhaba", "final": true, "timestamp": 1.0}'
    )
    assert json.dumps([Role.ASSISTANT, ToolPhase.COMPLETE]) == '["assistant", "complete"]'
