"""`wespoke-tui chat --no-tui`: a text chat on stdin and stdout, as a script uses it, against the
local API server over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.stack.wespoke_fixtures import TestWespokeServer
from wespoke_tui.config import ConfigError, load_settings
from wespoke_tui.errors import CONNECTION_ERROR, SERVER_ERROR, UNAUTHORIZED, user_message

pytestmark = pytest.mark.timeout(60)

SCRIPT = Path(sys.executable).parent / "wespoke-tui"


def chat(server: TestWespokeServer, *extra: str, lang: str = "en", api_key: str | None = None) -> subprocess.Popen[str]:
    args = [str(SCRIPT), "chat", "--no-tui", "--api-url", server.url, "--assistant-id", server.assistant_id,
            "--lang", lang, *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WESPOKE_")}
    env["WESPOKE_API_KEY"] = api_key or server.api_key
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_line_is_a_message_each_reply_is_printed_and_the_chat_ends_at_eof(
    wespoke_server: TestWespokeServer, tmp_path: Path
) -> None:
    transcript = tmp_path / "chat.jsonl"
    proc = chat(wespoke_server, "--transcript", str(transcript), "--first-message", "Welcome!")
    out, err = proc.communicate("Hello\n\nWhat is the weather?\n", timeout=30)
    assert proc.returncode == 0, err
    assert err == ""
    assert out.splitlines() == [
        "Starting the chat…", "Chat open", "Assistant: Welcome!",
        "You: Hello", "Assistant: You said: Hello",
        "You: What is the weather?",
        "tool running: lookup_weather", "tool done: lookup_weather", "knowledge used: Weather FAQ, kb_2",
        "Assistant: You said: What is the weather?",
        "Ending…", "Chat ended",
    ]
    (record,) = wespoke_server.chats.values()
    assert record.ended
    assert [m["content"] for m in record.messages if m["role"] == "user"] == ["Hello", "What is the weather?"]
    written = records(transcript)
    assert all(isinstance(r["timestamp"], float) for r in written)
    assert [r["state"] for r in written if r["type"] == "state" and r["of"] == "call"] == [
        "connecting", "connected", "ending", "ended"
    ]
    assert [r["text"] for r in written if r["type"] == "transcript"] == [
        "Welcome!", "Hello", "You said: Hello", "What is the weather?", "You said: What is the weather?"
    ]
    assert [r["sources"] for r in written if r["type"] == "knowledge"] == [["Weather FAQ", "kb_2"]]
    assert [r["phase"] for r in written if r["type"] == "tool"] == ["start", "complete"]


def test_json_prints_the_records_in_turkish_runs_too(wespoke_server: TestWespokeServer) -> None:
    proc = chat(wespoke_server, "--json", lang="tr")
    out, err = proc.communicate("Merhaba\n", timeout=30)
    assert proc.returncode == 0, err
    printed = [json.loads(line) for line in out.splitlines()]
    assert [(r["role"], r["text"]) for r in printed if r["type"] == "transcript"][-2:] == [
        ("user", "Merhaba"), ("assistant", "You said: Merhaba")
    ]
    assert {r["type"] for r in printed} >= {"state", "transcript"}


@pytest.mark.parametrize(("cut", "code"), [("error", SERVER_ERROR), ("drop", CONNECTION_ERROR)])
def test_a_failed_reply_is_said_on_stderr_the_chat_goes_on_and_the_exit_status_is_1(
    wespoke_server: TestWespokeServer, cut: str, code: str
) -> None:
    wespoke_server.cut_next_chat_reply(cut)
    proc = chat(wespoke_server)
    out, err = proc.communicate("one\ntwo\n", timeout=30)
    assert proc.returncode == 1
    assert err.splitlines() == [user_message(code, "en")]
    lines = out.splitlines()
    assert lines[3] == "You: one" and lines[4].endswith("[reply cut off]")
    assert "Assistant: You said: two" in lines and lines[-1] == "Chat ended"
    assert all(r.ended for r in wespoke_server.chats.values())


def test_a_chat_that_cannot_start_says_why_and_exits_1(wespoke_server: TestWespokeServer) -> None:
    proc = chat(wespoke_server, api_key="pk_test_" + "x" * 24, lang="tr")
    out, err = proc.communicate("merhaba\n", timeout=30)
    assert proc.returncode == 1
    assert err.splitlines() == [user_message(UNAUTHORIZED, "tr")]
    assert "Traceback" not in out + err and "x" * 24 not in out + err
    assert out.splitlines() == ["Sohbet başlatılıyor…", "Başarısız"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_while_waiting_for_input_ends_the_chat_on_the_server(
    wespoke_server: TestWespokeServer, sig: signal.Signals
) -> None:
    proc = chat(wespoke_server)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("hi\n")
    proc.stdin.flush()
    seen = []
    deadline = time.monotonic() + 20
    while "Assistant: You said: hi" not in seen and time.monotonic() < deadline:
        seen.append(proc.stdout.readline().rstrip("\n"))
    proc.send_signal(sig)  # stdin stays open: the chat is waiting for the next line
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert out.splitlines()[-2:] == ["Ending…", "Chat ended"]
    (record,) = wespoke_server.chats.values()
    assert record.ended


def test_a_chat_has_no_audio_options(tmp_path: Path) -> None:
    wav = tmp_path / "in.wav"
    wav.write_bytes(b"RIFF")
    with pytest.raises(ConfigError) as refused:
        load_settings(["call", "--no-tui", "--chat", "--demo", "--input-wav", str(wav)], {})
    assert refused.value.option == "--input-wav" and "text chat" in refused.value.message
    with pytest.raises(ConfigError) as unknown:
        load_settings(["chat", "--no-tui", "--demo", "--input-wav", str(wav)], {})
    assert unknown.value.option == "--input-wav" and "unknown argument" in unknown.value.message
    with pytest.raises(ConfigError) as no_key:
        load_settings(["chat", "--no-tui", "--assistant-id", "a"], {})
    assert no_key.value.option == "--api-key" and "a chat needs" in no_key.value.message
    command, settings, _ = load_settings(["--chat", "--demo"], {})
    assert command == "tui" and settings.chat and not settings.call_on_start
    command, settings, _ = load_settings(["chat", "--demo"], {"WESPOKE_CHAT": "0"})
    assert command == "tui" and settings.chat and settings.call_on_start


def test_the_demo_chats_headless_without_any_server() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WESPOKE_")}
    proc = subprocess.run([str(SCRIPT), "chat", "--no-tui", "--demo", "--lang", "en"], input="ping\n",
                          capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[3:5] == ["You: ping", "Assistant: You wrote: ping"]
