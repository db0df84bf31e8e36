"""The app on the real `CallSession` against the local Wespoke API server (real HTTP)."""

from __future__ import annotations

import time

import pytest

from tests.ui_support import NullBackend, screen_text, settings_for, until, widget_text
from wespoke_tui.events import CallState
from wespoke_tui.session import CallSession
from wespoke_tui.ui.app import build_app
from wespoke_tui.ui.widgets.status_bar import StatusBar


def session_app(server, lang: str):
    settings = settings_for(lang, api_url=server.url, api_key=server.api_key, assistant_id=server.assistant_id)
    sessions: list[CallSession] = []

    def factory(s):
        sessions.append(CallSession(s, NullBackend))
        return sessions[-1]

    return build_app(settings, factory, cursor_blink=False), sessions


@pytest.mark.parametrize(
    ("lang", "status", "message"),
    [
        ("en", 402, "Not enough credits to start a call."),
        ("tr", 402, "Arama başlatmak için yeterli krediniz yok."),
        ("en", 401, "Authentication failed. Check your API key."),
        ("tr", 401, "Kimlik doğrulama hatası. API anahtarınızı kontrol edin."),
    ],
)
async def test_failing_token_request_shows_its_user_message(wespoke_server, lang, status, message) -> None:
    wespoke_server.fail_next("token", status)
    app, sessions = session_app(wespoke_server, lang)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("c")
        await until(pilot, lambda: app.status.state is CallState.FAILED, timeout=10)
        await until(pilot, lambda: message in " ".join(widget_text(app.query_one(StatusBar)).replace("│", " ").split()))
        assert message in [str(n.message) for n in app._notifications]
        assert ("Başarısız" if lang == "tr" else "Failed") in screen_text(app)
        assert wespoke_server.api_key not in screen_text(app)
        assert str(app.query_one("#call-button").label) == ("Ara" if lang == "tr" else "Call")
    assert sessions[0].state is CallState.FAILED


async def test_ctrl_c_while_the_token_request_hangs_exits_at_once(wespoke_server) -> None:
    wespoke_server.fail_next("token", None, delay_s=8.0)
    app, sessions = session_app(wespoke_server, "en")
    async with app.run_test() as pilot:
        await pilot.press("c")
        await until(pilot, lambda: app.status.state is CallState.REQUESTING_TOKEN)
        pressed = time.monotonic()
        await pilot.press("ctrl+c")
        await until(pilot, lambda: app.return_code is not None, timeout=4)
        took = time.monotonic() - pressed
    assert app.return_code == 130
    assert took < 2.0, f"Ctrl+C took {took:.2f} s"
    assert sessions[0].state in (CallState.ENDED, CallState.IDLE)
