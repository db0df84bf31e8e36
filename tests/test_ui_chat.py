"""Text chat in the app: Pilot runs and snapshots of the real `ChatController` over real HTTP
against the local API server (and the demo's offline chat for switching modes)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests.stack.wespoke_fixtures import TEST_API_KEY, TEST_ASSISTANT_ID, TestWespokeServer
from tests.ui_support import FIXED_DEVICES, FrozenClock, NullBackend, screen_text, settings_for, until
from wespoke_tui.controllers import make_controller
from wespoke_tui.controllers.chat import ChatController
from wespoke_tui.controllers.demo import DemoController
from wespoke_tui.events import CallState
from wespoke_tui.ui.app import WespokeApp, build_app
from wespoke_tui.ui.screens.confirm_hang_up import ConfirmHangUp
from wespoke_tui.ui.widgets.message_input import MessageInput
from wespoke_tui.ui.widgets.transcript import TranscriptLine

SIZE = (100, 32)
LANGS = pytest.mark.parametrize("lang", ["en", "tr"])
# The server's key and assistant, at an address where nothing listens (the discard port).
NO_SERVER = SimpleNamespace(url="http://127.0.0.1:9", api_key=TEST_API_KEY, assistant_id=TEST_ASSISTANT_ID)


def chat_app(server: TestWespokeServer, lang: str = "en", **changes: Any) -> tuple[WespokeApp, list[Any]]:
    """The app in chat mode on the real chat controller; the list gets every controller made."""
    settings = settings_for(lang, api_url=server.url, api_key=server.api_key, assistant_id=server.assistant_id,
                            chat=True, mic_consent_given=False, **changes)
    made: list[Any] = []

    def factory(current: Any) -> Any:
        made.append(make_controller(current, NullBackend))
        return made[-1]

    return app_on(settings, factory), made


def app_on(settings: Any, factory: Any) -> WespokeApp:
    """`make_app`'s app (frozen clock, no cursor blink), with a controller made per conversation."""
    return build_app(settings, factory, clock=FrozenClock(), devices_provider=lambda: FIXED_DEVICES, cursor_blink=False)


def replies_done(app: WespokeApp, count: int) -> bool:
    lines = list(app.query(TranscriptLine))
    return len([line for line in lines if line.has_class("-assistant")]) >= count and not any(
        line.has_class("-streaming") for line in lines
    )


async def test_a_chat_in_the_app_from_start_to_end_on_the_server(wespoke_server: TestWespokeServer) -> None:
    app, made = chat_app(wespoke_server)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(made[0], ChatController)
        assert not app.query_one("#meters").display and not app.query_one("#mic-toggle").display
        await pilot.press("c")  # no microphone consent for a chat
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        assert not isinstance(app.screen, ConfirmHangUp) and app.focused is app.query_one(MessageInput)
        await pilot.press(*"kargo?", "enter")
        await until(pilot, lambda: replies_done(app, 2))
        text = screen_text(app)
        assert "Test Assistant: You said: kargo?" in text and "You: kargo?" in text
        assert "State: Chat open" in text and "Chat: chat_" in text and "Mic:" not in text
        # m and d are not offered in a chat; the input keeps its text keys.
        assert app.call_screen.check_action("toggle_mute", ()) is False and app.check_action("devices", ()) is False
        await pilot.press("escape", "h")
        assert isinstance(app.screen, ConfirmHangUp)
        assert "Are you sure you want to end the chat?" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: app.status.state is CallState.ENDED)
        assert "State: Chat ended" in screen_text(app)
    (record,) = wespoke_server.chats.values()
    assert record.ended and [m["content"] for m in record.messages if m["role"] == "user"] == ["kargo?"]


async def test_quitting_a_chat_asks_and_ends_it_on_the_server(wespoke_server: TestWespokeServer) -> None:
    app, _ = chat_app(wespoke_server, call_on_start=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        await pilot.press("escape", "q")
        assert "Quitting ends the chat. Are you sure?" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, timeout=10)
    (record,) = wespoke_server.chats.values()
    assert record.ended


async def test_a_cut_reply_shows_the_error_and_the_chat_goes_on(wespoke_server: TestWespokeServer) -> None:
    app, _ = chat_app(wespoke_server, call_on_start=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        wespoke_server.cut_next_chat_reply("drop")
        await pilot.press(*"one", "enter")
        await until(pilot, lambda: app.status.error is not None and replies_done(app, 2))
        assert "[reply cut off]" in screen_text(app)
        assert app.status.error == "Could not connect. Check your internet connection."
        await pilot.press(*"two", "enter")
        await until(pilot, lambda: replies_done(app, 3))
        assert "You said: two" in screen_text(app) and app.status.state is CallState.CONNECTED


async def test_t_switches_an_idle_app_between_voice_and_chat() -> None:
    made: list[Any] = []

    def factory(settings: Any) -> Any:
        made.append(make_controller(settings, NullBackend))
        return made[-1]

    settings = settings_for("en", demo=True, api_key=None, assistant_id=None)
    app = app_on(settings, factory)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(made[-1], DemoController) and app.query_one("#meters").display
        await pilot.press("t")
        await until(pilot, lambda: len(made) == 2 and app.chat_mode)
        assert isinstance(made[-1], ChatController) and settings.chat
        assert not app.query_one("#meters").display and app.focused is app.query_one(MessageInput)
        assert "Start chat" in screen_text(app) and "Press c or Enter to start it" in screen_text(app)
        await pilot.press("escape", "c")
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        assert app.call_screen.check_action("switch_mode", ()) is None  # not during a chat
        await pilot.press(*"hi", "enter")
        await until(pilot, lambda: replies_done(app, 2))
        assert "You wrote: hi" in screen_text(app)
        await pilot.press("escape", "h", "y")
        await until(pilot, lambda: app.status.state is CallState.ENDED)
        await pilot.press("t")
        await until(pilot, lambda: len(made) == 3 and not app.chat_mode)
        assert isinstance(made[-1], DemoController) and not settings.chat
        assert app.query_one("#meters").display and app.status.state is CallState.IDLE
        assert "Press c or Enter to call" in screen_text(app)


# ------------------------------------------------------------------------------ snapshots


@LANGS
def test_snapshot_chat_idle(snap_compare, lang: str) -> None:
    # A chat not yet started asks nothing of the server: this one needs none (and so no stack).
    app, _ = chat_app(NO_SERVER, lang)
    assert snap_compare(app, terminal_size=SIZE)


@LANGS
def test_snapshot_chat_conversation(snap_compare, wespoke_server: TestWespokeServer, lang: str) -> None:
    wespoke_server.chat_ids = iter(["chat_snapshot"])
    app, _ = chat_app(wespoke_server, lang, call_on_start=True,
                      first_message="Merhaba! Size nasıl yardımcı olabilirim?" if lang == "tr" else "Hi! How can I help?")

    async def run_before(pilot) -> None:
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        await pilot.press(*"What is the weather?", "enter")
        await until(pilot, lambda: replies_done(app, 2))
        await pilot.press(*"next question")
        await pilot.pause(0.05)

    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)


def test_snapshot_chat_reply_cut(snap_compare, wespoke_server: TestWespokeServer) -> None:
    wespoke_server.chat_ids = iter(["chat_snapshot"])
    app, _ = chat_app(wespoke_server, "en", call_on_start=True, first_message="Hi!")

    async def run_before(pilot) -> None:
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        wespoke_server.cut_next_chat_reply("error")
        await pilot.press(*"Tell me a long story", "enter")
        await until(pilot, lambda: app.status.error is not None and replies_done(app, 2))

    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)
