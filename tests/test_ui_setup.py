"""First run: the setup screen, saving to the real config file, and the way to the demo."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

from tests.ui_support import FIXED_DEVICES, RecordingController, screen_text, settings_for, type_text, until
from wespoke_tui.events import CallState
from wespoke_tui.settings import Settings
from wespoke_tui.ui.app import build_app
from wespoke_tui.ui.screens.setup import SetupScreen

KEY = "pk_test_" + "s3cr3tK3y" * 3


def first_run_app(tmp_path: Path, lang: str = "en"):
    made: list[Settings] = []
    controller = RecordingController()

    def factory(settings: Settings) -> RecordingController:
        made.append(settings)
        return controller

    settings = settings_for(lang, api_key=None, assistant_id=None, config_path=tmp_path / "wespoke" / "config.toml")
    app = build_app(settings, factory, devices_provider=lambda: FIXED_DEVICES, cursor_blink=False)
    return app, made, controller


async def test_bad_key_is_refused_and_never_shown(tmp_path: Path) -> None:
    app, made, _ = first_run_app(tmp_path)
    async with app.run_test(size=(100, 36)) as pilot:
        assert isinstance(app.screen, SetupScreen)
        assert "--demo" in screen_text(app)
        await type_text(pilot, "sk_live_topsecret")
        await pilot.press("enter")
        await type_text(pilot, "asst_1")
        await pilot.press("enter")
        await pilot.pause()
        text = screen_text(app)
        assert "The key must start with pk_live_ or pk_test_." in text
        assert "topsecret" not in text  # masked while typing, not echoed in the error
        assert isinstance(app.screen, SetupScreen) and made == []


async def test_missing_assistant_is_refused_in_turkish(tmp_path: Path) -> None:
    app, made, _ = first_run_app(tmp_path, "tr")
    async with app.run_test(size=(100, 36)) as pilot:
        await type_text(pilot, KEY)
        await pilot.press("enter", "enter")
        await pilot.pause()
        assert "Asistan kimliği gerekli." in screen_text(app)
        assert made == []


async def test_valid_setup_saves_0600_config_and_calls(tmp_path: Path) -> None:
    app, made, controller = first_run_app(tmp_path)
    async with app.run_test(size=(100, 36)) as pilot:
        await type_text(pilot, KEY)
        await pilot.press("enter")
        await type_text(pilot, "asst_xyz789")
        await pilot.press("enter")
        await until(pilot, lambda: made != [])
        assert (made[0].api_key, made[0].assistant_id) == (KEY, "asst_xyz789")
        config = tmp_path / "wespoke" / "config.toml"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        saved = tomllib.loads(config.read_text())
        assert saved["api_key"] == KEY and saved["assistant_id"] == "asst_xyz789"
        assert KEY not in screen_text(app)
        await pilot.press("c")
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        assert controller.names() == ["start"]
        # The consent given before the first call is remembered in the same file.
        assert tomllib.loads(config.read_text())["api_key"] == KEY


async def test_unchecking_save_writes_nothing(tmp_path: Path) -> None:
    app, made, _ = first_run_app(tmp_path)
    async with app.run_test(size=(100, 36)) as pilot:
        await type_text(pilot, KEY)
        await pilot.press("enter")
        await type_text(pilot, "asst_xyz789")
        await pilot.click("#setup-save")
        await pilot.click("#setup-continue")
        await until(pilot, lambda: made != [])
    assert not (tmp_path / "wespoke" / "config.toml").exists()


async def test_try_the_demo_from_setup(tmp_path: Path) -> None:
    app, made, _ = first_run_app(tmp_path)
    async with app.run_test(size=(100, 36)) as pilot:
        await pilot.click("#setup-demo")
        await until(pilot, lambda: made != [])
        assert made[0].demo
        assert "DEMO: no network, echo assistant" in screen_text(app)


async def test_escape_quits_setup(tmp_path: Path) -> None:
    app, made, _ = first_run_app(tmp_path)
    async with app.run_test(size=(100, 36)) as pilot:
        await pilot.press("escape")
        await until(pilot, lambda: app.return_code is not None)
    assert made == [] and app.return_code == 0


async def test_consent_is_saved_to_the_real_config_file(tmp_path: Path) -> None:
    controller = RecordingController()
    config = tmp_path / "config.toml"
    settings = settings_for(mic_consent_given=False, config_path=config)
    app = build_app(settings, lambda _s: controller, cursor_blink=False)
    async with app.run_test(size=(100, 36)) as pilot:
        await pilot.press("c", "y")
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
    assert tomllib.loads(config.read_text())["mic_consent_given"] is True
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
