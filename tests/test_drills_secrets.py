"""Fault drill: the API key and the LiveKit token never show up anywhere a user or a log can see.

A full call in the TUI (tmux, PulseAudio rig) and one headless, each with `--log-file` at debug
level: first run of the TUI (the microphone consent is asked and saved to the config file),
call, hang up through the confirmation, quit. Then every log file, every screen (tmux scrollback
included), the headless output and the config file are searched for the key (whole, and its
part after `pk_test_`) and for every LiveKit token the API minted (whole, and its signature):
none may be found, and the config file must be private (0600).
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack.pulse_rig import PulseRig
from tests.support.signals import tone_wav
from tests.test_drills import DRILL_TONE_AMPLITUDE, Stack, no_call_left_open, stack  # noqa: F401 (fixture)
from tests.test_drills_signals import SCRIPT, TuiInTmux, wait_joined

pytestmark = pytest.mark.timeout(120)


class MintedTokens:
    """Every LiveKit token the API server hands out during the drill."""

    def __init__(self, stack: Stack) -> None:
        self.tokens: list[str] = []
        original: Callable[..., dict[str, Any]] = stack.api.handle_token

        def recording(body: Any, headers: dict[str, str]) -> dict[str, Any]:
            data = original(body, headers)
            self.tokens.append(data["token"])
            return data

        stack.api.handle_token = recording  # type: ignore[method-assign]


@pytest.fixture
def minted(stack: Stack) -> Iterator[MintedTokens]:
    yield MintedTokens(stack)


def secrets_of(stack: Stack, minted: MintedTokens) -> dict[str, str]:
    key = stack.api.api_key
    found = {"API key": key, "API key without prefix": key.split("_", 2)[2]}
    for n, token in enumerate(minted.tokens):
        found[f"LiveKit token {n}"] = token
        found[f"LiveKit token {n} signature"] = token.rsplit(".", 1)[1]
    return found


def leaks(texts: dict[str, str], secrets: dict[str, str]) -> list[str]:
    return [f"{what} in {where}" for where, text in texts.items() for what, secret in secrets.items() if secret in text]


async def test_tui_call_leaks_no_secret_and_keeps_the_config_private(
    stack: Stack, pulse_rig: PulseRig, minted: MintedTokens, tmp_path: Path
) -> None:
    tui = TuiInTmux(stack, pulse_rig, tmp_path, consent_given=False, call_on_start=False)
    screens: dict[str, str] = {}
    try:
        await asyncio.to_thread(tui.wait_screen, "Call")
        tui.keys("c")
        screens["consent"] = await asyncio.to_thread(tui.wait_screen, "Allow (y)")
        tui.keys("y")
        await wait_joined(stack)
        screens["connected"] = await asyncio.to_thread(tui.wait_screen, "Connected")
        # The greeting, the transcript (to the assistant's last scripted line), the meters.
        screens["in call"] = await asyncio.to_thread(tui.wait_screen, "standard transcription")
        tui.keys("h")
        screens["confirm"] = await asyncio.to_thread(tui.wait_screen, "Yes, end it (y)")
        tui.keys("y")
        screens["ended"] = await asyncio.to_thread(tui.wait_screen, "Call ended")
        await no_call_left_open(stack)
        tui.keys("q")
        await asyncio.to_thread(tui.wait_screen, "EXIT=", 15.0)
        screens["scrollback"] = tui.history()
    finally:
        tui.close()

    assert minted.tokens, "the call minted a LiveKit token"
    assert tui.config.exists(), "the consent was saved to the config file"
    mode = stat.S_IMODE(os.stat(tui.config).st_mode)
    assert mode == 0o600, f"config file mode {oct(mode)}"
    log = tui.log_file.read_text(errors="replace")
    assert "DEBUG" in log and len(log) > 1000, "the debug log was written"
    texts = {f"screen ({name})": text for name, text in screens.items()}
    texts["log file"] = log
    texts["config file"] = tui.config.read_text()
    assert leaks(texts, secrets_of(stack, minted)) == []


async def test_headless_call_leaks_no_secret(stack: Stack, minted: MintedTokens, tmp_path: Path) -> None:
    log_file = tmp_path / "headless.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WESPOKE_")}
    env["WESPOKE_API_KEY"] = stack.api.api_key
    args = [str(SCRIPT), "call", "--no-tui", "--assistant-id", stack.api.assistant_id, "--api-url", stack.api.url,
            "--lang", "en", "--input-wav", str(tone_wav(tmp_path / "in.wav", 4, amplitude=DRILL_TONE_AMPLITUDE)), "--output-wav",
            str(tmp_path / "out.wav"), "--transcript", str(tmp_path / "t.jsonl"), "--duration", "4",
            "--log-file", str(log_file), "--log-level", "DEBUG"]
    started = time.monotonic()
    result = await asyncio.to_thread(subprocess.run, args, env=env, capture_output=True, text=True, timeout=60)
    print(f"headless call with a debug log: {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, result.stderr
    assert "Connected" in result.stdout.splitlines()
    log = log_file.read_text(errors="replace")
    assert "DEBUG" in log
    texts = {"stdout": result.stdout, "stderr": result.stderr, "log file": log,
             "transcript": (tmp_path / "t.jsonl").read_text()}
    assert minted.tokens
    assert leaks(texts, secrets_of(stack, minted)) == []
    await no_call_left_open(stack)
