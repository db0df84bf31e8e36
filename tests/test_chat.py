"""The text chat controller over real HTTP against the local API server (its SSE chat endpoints),
and the demo's offline chat: what a user of `--chat` sees, as events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.stack.wespoke_fixtures import TestWespokeServer
from tests.support.events import EventRecorder
from wespoke_tui.controllers import make_controller
from wespoke_tui.controllers.chat import ChatController
from wespoke_tui.errors import (
    ASSISTANT_NOT_FOUND,
    CHAT_ENDED,
    CONNECTION_ERROR,
    INSUFFICIENT_CREDITS,
    RATE_LIMITED,
    SERVER_ERROR,
    UNAUTHORIZED,
    describe,
    user_message,
)
from wespoke_tui.events import (
    TEXT_ONLY,
    AgentState,
    AgentStateChanged,
    CallStarted,
    CallState,
    ErrorEvent,
    KnowledgeUsed,
    StateChanged,
    ToolEvent,
    TranscriptItem,
)
from wespoke_tui.settings import Settings

pytestmark = pytest.mark.timeout(60)


def chat_settings(server: TestWespokeServer, **changes: Any) -> Settings:
    settings = Settings(api_url=server.url, api_key=server.api_key, assistant_id=server.assistant_id, lang="en",
                        chat=True, user_id="u-42", first_message="Merhaba, yazın lütfen.")
    for name, value in changes.items():
        setattr(settings, name, value)
    return settings


async def open_chat(server: TestWespokeServer, **changes: Any) -> tuple[ChatController, EventRecorder]:
    controller = make_controller(chat_settings(server, **changes), lambda: pytest.fail("a chat opens no audio"))
    assert isinstance(controller, ChatController) and controller.capabilities == TEXT_ONLY
    events = EventRecorder(controller)
    await controller.start()
    return controller, events


async def test_a_chat_greets_streams_each_reply_in_place_and_ends_on_the_server(
    wespoke_server: TestWespokeServer,
) -> None:
    controller, events = await open_chat(wespoke_server)
    await events.wait_for(lambda e: isinstance(e, CallStarted))  # the recorder takes the events
    assert controller.state is CallState.CONNECTED
    (chat_id,) = wespoke_server.chats
    record = wespoke_server.chats[chat_id]
    assert record.metadata.get("userId") == "u-42" and record.overrides == {"firstMessage": "Merhaba, yazın lütfen."}
    assert events.of(CallStarted)[0].call_id == chat_id and events.of(CallStarted)[0].assistant_name == "Test Assistant"

    await controller.send_text("  kargom nerede?  ")
    await controller.send_text("   ")  # nothing to send
    # The recorder takes the events, up to the reply's last one.
    await events.wait_for(lambda e: isinstance(e, AgentStateChanged) and e.state is AgentState.LISTENING)
    assert events.finals() == [("assistant", "Merhaba, yazın lütfen."), ("user", "kargom nerede?"),
                               ("assistant", "You said: kargom nerede?")]
    reply = [e for e in events.of(TranscriptItem) if e.role == "assistant" and e.id != f"{chat_id}-greeting"]
    # Streamed: first added, then updated in place (one id), growing, and final last.
    assert len(reply) >= 3 and len({e.id for e in reply}) == 1
    assert [e.added for e in reply] == [True] + [False] * (len(reply) - 1)
    assert [e.final for e in reply] == [False] * (len(reply) - 1) + [True]
    assert all(len(a.text) <= len(b.text) for a, b in zip(reply, reply[1:]))
    assert all(e.timestamp is not None for e in events.of(TranscriptItem))
    assert [e.state for e in events.of(AgentStateChanged)] == [AgentState.THINKING, AgentState.LISTENING]
    assert [m["content"] for m in record.messages if m["role"] == "user"] == ["kargom nerede?"]

    await controller.aclose()
    await events.aclose()
    assert record.ended
    assert events.states() == [CallState.CONNECTING, CallState.CONNECTED, CallState.ENDING, CallState.ENDED]
    assert events.of(ErrorEvent) == []


async def test_tool_calls_and_knowledge_sources_come_before_the_answer(wespoke_server: TestWespokeServer) -> None:
    controller, events = await open_chat(wespoke_server)
    await controller.send_text("What is the weather in Izmir?")
    await controller.aclose()
    await events.aclose()
    tools = events.of(ToolEvent)
    assert [(t.phase, t.tool_name, t.tool_type) for t in tools] == [
        ("start", "lookup_weather", "function"), ("complete", "lookup_weather", "function")
    ]
    assert events.of(KnowledgeUsed)[0].sources == ("Weather FAQ", "kb_2")
    order = [type(e).__name__ for e in events.events if isinstance(e, (ToolEvent, KnowledgeUsed, TranscriptItem))]
    assert order.index("KnowledgeUsed") < max(i for i, name in enumerate(order) if name == "TranscriptItem")
    assert events.finals()[-1] == ("assistant", "You said: What is the weather in Izmir?")


@pytest.mark.parametrize(("cut", "code"), [("error", SERVER_ERROR), ("drop", CONNECTION_ERROR)])
async def test_a_reply_cut_mid_stream_is_said_marked_and_the_chat_goes_on(
    wespoke_server: TestWespokeServer, cut: str, code: str
) -> None:
    controller, events = await open_chat(wespoke_server)
    wespoke_server.cut_next_chat_reply(cut)
    await controller.send_text("first question")
    assert controller.state is CallState.CONNECTED
    (error,) = events.of(ErrorEvent)
    assert not error.fatal and error.error.code == code
    assert describe(error.error, "en") == user_message(code, "en")
    cut_reply = events.finals()[-1]
    assert cut_reply[0] == "assistant" and cut_reply[1].startswith("You said:") and cut_reply[1].endswith("[reply cut off]")
    # Nothing stays half-shown: every assistant line that was started is final.
    started = {e.id for e in events.of(TranscriptItem)}
    assert started == {e.id for e in events.of(TranscriptItem) if e.final}

    await controller.send_text("second question")
    assert events.finals()[-1] == ("assistant", "You said: second question")
    assert len(events.of(ErrorEvent)) == 1
    await controller.aclose()
    await events.aclose()


@pytest.mark.parametrize(
    ("status", "code"),
    [(401, UNAUTHORIZED), (402, INSUFFICIENT_CREDITS), (404, ASSISTANT_NOT_FOUND), (429, RATE_LIMITED),
     (500, SERVER_ERROR), (None, CONNECTION_ERROR)],
)
async def test_a_chat_that_cannot_start_fails_with_its_user_message(
    wespoke_server: TestWespokeServer, status: int | None, code: str
) -> None:
    wespoke_server.fail_next("chat_start", status=status, drop=status is None, headers={"Retry-After": "7"})
    controller, events = await open_chat(wespoke_server, lang="tr")
    await controller.aclose()
    await events.aclose()
    assert events.states() == [CallState.CONNECTING, CallState.FAILED]
    failed = events.of(StateChanged)[-1]
    assert failed.error is not None and failed.error.code == code
    assert describe(failed.error, "tr") == user_message(code, "tr", retry_after=7.0 if code == RATE_LIMITED else None)
    assert wespoke_server.api_key not in repr(events.events)
    assert wespoke_server.chats == {}


async def test_a_message_the_api_refuses_is_said_and_the_chat_goes_on(wespoke_server: TestWespokeServer) -> None:
    controller, events = await open_chat(wespoke_server)
    wespoke_server.fail_next("chat_message", status=500)
    await controller.send_text("hello?")
    (error,) = events.of(ErrorEvent)
    assert error.error.code == SERVER_ERROR and not error.fatal
    assert controller.state is CallState.CONNECTED
    await controller.send_text("hello again")
    assert events.finals()[-1] == ("assistant", "You said: hello again")
    await controller.aclose()
    await events.aclose()


async def test_a_chat_the_server_ended_fails_with_chat_ended(wespoke_server: TestWespokeServer) -> None:
    controller, events = await open_chat(wespoke_server)
    (record,) = wespoke_server.chats.values()
    record.ended = True  # e.g. closed by the backend after a timeout
    await controller.send_text("still there?")
    await events.state(CallState.FAILED)  # the recorder takes the events, up to the last one
    assert controller.state is CallState.FAILED
    assert events.of(StateChanged)[-1].error.code == CHAT_ENDED
    assert [e.error.code for e in events.of(ErrorEvent)] == [CHAT_ENDED]
    assert "sona erdi" in describe(events.of(ErrorEvent)[0].error, "tr")
    await controller.aclose()  # nothing left to end: no second /end, no error
    await events.aclose()
    assert not any(r.path.endswith("/end") for r in wespoke_server.requests)


async def test_hanging_up_while_the_chat_opens_still_ends_it_on_the_server(wespoke_server: TestWespokeServer) -> None:
    wespoke_server.fail_next("chat_start", delay_s=0.8)
    controller = make_controller(chat_settings(wespoke_server), lambda: pytest.fail("no audio"))
    events = EventRecorder(controller)  # type: ignore[arg-type]
    start = asyncio.get_running_loop().create_task(controller.start())
    await asyncio.sleep(0.2)  # scenario: hang up 0.2 s into the (held) chat start
    await controller.hang_up()
    await start
    await controller.aclose()
    await events.aclose()
    (record,) = wespoke_server.chats.values()
    assert record.ended  # opened after the hang-up began, and ended all the same
    assert events.states() == [CallState.CONNECTING, CallState.ENDING, CallState.ENDED]


async def test_hanging_up_during_a_reply_stops_it_and_ends_the_chat(wespoke_server: TestWespokeServer) -> None:
    controller, events = await open_chat(wespoke_server)
    wespoke_server.fail_next("chat_message", delay_s=5.0)  # the reply does not come
    send = asyncio.get_running_loop().create_task(controller.send_text("a slow one"))
    await asyncio.sleep(0.3)  # scenario: hang up 0.3 s into the reply that does not come
    await asyncio.wait_for(controller.hang_up(), 4.0)
    await asyncio.wait_for(send, 2.0)  # the sender is released, not left waiting
    await controller.aclose()
    await events.aclose()
    (record,) = wespoke_server.chats.values()
    assert record.ended
    assert events.states()[-1] is CallState.ENDED and events.of(ErrorEvent) == []


async def test_messages_sent_at_once_are_answered_one_at_a_time_in_order(wespoke_server: TestWespokeServer) -> None:
    controller, events = await open_chat(wespoke_server)
    await asyncio.gather(*(controller.send_text(f"message {n}") for n in range(1, 4)))
    await controller.aclose()
    await events.aclose()
    assert events.finals()[1:] == [
        ("user", "message 1"), ("assistant", "You said: message 1"),
        ("user", "message 2"), ("assistant", "You said: message 2"),
        ("user", "message 3"), ("assistant", "You said: message 3"),
    ]


async def test_a_chat_that_could_not_say_goodbye_tells_the_user(wespoke_server: TestWespokeServer) -> None:
    controller, events = await open_chat(wespoke_server)
    wespoke_server.fail_next("chat_end", status=500)
    await controller.aclose()
    await events.aclose()
    assert events.states()[-1] is CallState.ENDED
    assert [(e.error.code, e.fatal) for e in events.of(ErrorEvent)] == [(SERVER_ERROR, False)]


async def test_the_demo_chats_offline() -> None:
    settings = Settings(lang="tr", demo=True, chat=True)
    controller = make_controller(settings, lambda: pytest.fail("no audio"))
    events = EventRecorder(controller)  # type: ignore[arg-type]
    await controller.start()
    await controller.send_text("merhaba")
    await controller.aclose()
    await events.aclose()
    assert events.finals() == [("assistant", "Merhaba! Bir şey yazın, aynen geri yazayım."), ("user", "merhaba"),
                               ("assistant", "Şunu yazdınız: merhaba")]
    assert len([e for e in events.of(TranscriptItem) if not e.final]) >= 1  # it streamed
    assert events.states() == [CallState.CONNECTING, CallState.CONNECTED, CallState.ENDING, CallState.ENDED]
