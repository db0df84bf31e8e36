"""The installed `wespoke-tui` in a real terminal (tmux): send-keys in, capture-pane out."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.stack.pulse_rig import PulseRig, speech_wav

WESPOKE_TUI = Path(sys.executable).with_name("wespoke-tui")
COLUMNS, ROWS = 110, 34


class Terminal:
    """One tmux server of our own (its own socket), one window running one command."""

    def __init__(self, tmp: Path, command: list[str], env: dict[str, str]) -> None:
        tmux = shutil.which("tmux")
        assert tmux, "tmux is required (scripts/setup-and-test.sh installs it)"
        self._base = [tmux, "-S", str(tmp / "tmux.sock")]
        env_args = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        # The server's environment is os.environ as Python sees it, given explicitly: inherited, it
        # is the C one, where GNU readline (imported by some library in this process) has put
        # COLUMNS=80 and LINES=24, and the app in the 110×34 pane then lays itself out at 80×24.
        server_env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        subprocess.run([*self._base, "-f", "/dev/null", "new-session", "-d", "-s", "app",
                        "-x", str(COLUMNS), "-y", str(ROWS), *env_args, *command], check=True, timeout=10,
                       env=server_env)
        # Keep the pane after the command exits, so we can read its final screen.
        self.tmux("set-option", "-t", "app", "remain-on-exit", "on")

    def tmux(self, *args: str) -> str:
        return subprocess.run([*self._base, *args], check=True, capture_output=True, text=True, timeout=10).stdout

    def send(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", "app", key)
            time.sleep(0.15)  # pacing: one key at a time, as typed

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "app")

    def pane(self, fmt: str) -> str:
        return self.tmux("display-message", "-p", "-t", "app", fmt).strip()

    def wait_for(self, what: str | Callable[[str], bool], timeout: float = 15.0) -> str:
        check = what if callable(what) else (lambda text: what in text)
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if check(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what!r}; screen:\n{text}")
            time.sleep(0.1)  # poll

    def close(self) -> None:
        subprocess.run([*self._base, "kill-server"], capture_output=True, timeout=10)


def mic_dbfs(screen: str) -> float | None:
    match = re.search(r"You\s+[^\n]*?(-?\d+) dBFS", screen)
    return float(match.group(1)) if match else None


@pytest.fixture
def terminal_factory(tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    terminals: list[Terminal] = []

    def make(args: list[str], env: dict[str, str]) -> Terminal:
        assert WESPOKE_TUI.exists(), f"{WESPOKE_TUI} is not installed (pip install -e .)"
        # Through a shell that reports the exit status: tmux 3.3 sometimes leaves the exited app
        # unreaped (a zombie), so `pane_dead_status` cannot be relied on.
        # It then waits a little, so the pane (and what the app left on it) can be read.
        command = ["sh", "-c", '"$0" "$@"; echo "[exit status $?]"; sleep 5', str(WESPOKE_TUI), *args]
        terminals.append(Terminal(tmp_path, command, env))
        return terminals[-1]

    yield make
    for terminal in terminals:
        terminal.close()


def test_demo_on_the_sound_rig(sound_rig: PulseRig, terminal_factory, tmp_path: Path) -> None:
    env = {**sound_rig.env, "XDG_CONFIG_HOME": str(tmp_path / "config"), "TERM": "xterm-256color",
           "PATH": os.environ.get("PATH", "")}
    log = tmp_path / "wespoke.log"
    term = terminal_factory(["--demo", "--lang", "en", "--log-file", str(log), "--log-level", "debug"], env)
    term.wait_for("DEMO: no network, echo assistant")
    term.send("c")
    term.wait_for("uses your microphone")  # consent before the microphone opens the first time
    term.send("y")
    term.wait_for("Hi! Say something and I will repeat it.")
    term.wait_for("Assistant is: listening", timeout=10)
    assert (mic_dbfs(term.screen()) or -96) < -50  # the rig's mic is silent

    player = sound_rig.play_into_mic(speech_wav(tmp_path / "speech.wav", "Hello, this is a test of the microphone."))
    loud = term.wait_for(lambda s: (mic_dbfs(s) or -96) > -40, timeout=10)
    assert "You" in loud
    player.wait(timeout=20)
    term.wait_for("I repeated it back.", timeout=20)
    assert re.search(r"you spoke for \d\.\d s", term.screen())

    term.send("m")
    term.wait_for("Mic: muted")
    term.send("h")
    term.wait_for("Are you sure you want to end the call?")
    term.send("y")
    try:
        term.wait_for("State: Call ended")
    except AssertionError:
        raise AssertionError(log.read_text()[-3000:]) from None
    term.send("q")
    # The shell around the app prints its exit status on the restored (normal) screen.
    final = term.wait_for(lambda text: "[exit status" in text, timeout=10)
    assert "[exit status 0]" in final, final
    assert term.pane("#{alternate_on}") == "0", final  # the terminal is back from the app's screen
    assert "Traceback" not in term.screen()
    consent = (tmp_path / "config" / "wespoke-tui" / "config.toml").read_text()
    assert "mic_consent_given = true" in consent


def test_call_against_the_local_stack(wespoke_stack, sound_rig: PulseRig, terminal_factory, tmp_path: Path) -> None:
    env = {**sound_rig.env, "XDG_CONFIG_HOME": str(tmp_path / "config"), "TERM": "xterm-256color",
           "PATH": os.environ.get("PATH", "")}
    log = tmp_path / "wespoke.log"
    args = ["--api-url", wespoke_stack.api_url, "--api-key", wespoke_stack.api_key,
            "--assistant-id", wespoke_stack.assistant_id, "--lang", "en", "--log-file", str(log)]
    term = terminal_factory(args, env)
    term.wait_for("State: Ready")
    term.send("c", "y")  # call, and allow the microphone (asked once)
    try:
        term.wait_for("State: Connected", timeout=20)
    except AssertionError:
        raise AssertionError(term.screen() + log.read_text()[-3000:]) from None
    term.wait_for("Assistant: Test Assistant", timeout=10)  # one capture can catch a repaint half done
    assistant = wespoke_stack.assistants[-1]
    assistant.wait_for("user_track_subscribed", timeout=15)
    assistant.wait_for("greeting_start", timeout=15)
    # The greeting tone plays through the real speaker path, and the meter shows it.
    term.wait_for(lambda s: bool(re.search(r"Assistant\s+[^\n]*?-[1-3]\d dBFS", s)), timeout=10)
    # The scripted data messages: a streamed message on one line, a tool event, the latency.
    term.wait_for("Test Assistant: Merhaba, size nasıl yardımcı olabilirim?", timeout=15)
    # Both on one capture: under load tmux can be caught mid-repaint with part of the screen drawn.
    screen = term.wait_for(lambda s: "Latency: 420 ms" in s and "Merhaba, " in s, timeout=10)
    assert screen.count("Merhaba, ") == 1
    assert "lookup_weather" in screen
    term.send("h")
    term.wait_for("Are you sure you want to end the call?")
    term.send("y")
    term.wait_for("State: Call ended", timeout=10)
    assistant.wait_for("user_left", timeout=10)  # hanging up left the room
    term.send("q")
    final = term.wait_for(lambda text: "[exit status" in text, timeout=10)
    assert "[exit status 0]" in final, final
    assert wespoke_stack.api_key not in log.read_text()


def test_demo_without_any_sound_device_says_so(terminal_factory, tmp_path: Path) -> None:
    """No PulseAudio and no ALSA card: the call fails before it starts, saying what is missing and
    that the text chat works, in Turkish."""
    (tmp_path / "home").mkdir()
    env = {"HOME": str(tmp_path / "home"), "PULSE_SERVER": "unix:/nonexistent", "TERM": "xterm-256color",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "PATH": os.environ.get("PATH", "")}
    term = terminal_factory(["--demo", "--lang", "tr"], env)
    term.wait_for("DEMO: ağ yok, yankı asistanı")
    term.send("c", "y")
    screen = term.wait_for("Durum: Başarısız", timeout=15)
    assert "Hiç ses aygıtı bulunamadı." in screen, screen
    term.wait_for(lambda text: "--chat" in " ".join(text.split()), timeout=5)  # the toast has it whole
    assert "Traceback" not in screen
    term.send("q")
    assert "[exit status 0]" in term.wait_for(lambda text: "[exit status" in text, timeout=10)


@pytest.mark.parametrize("lang", ["en", "tr"])
def test_a_text_chat_in_a_real_terminal(wespoke_server, terminal_factory, tmp_path: Path, lang: str) -> None:
    """`wespoke-tui --chat` against the local API server: no sound devices at all."""
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "TERM": "xterm-256color", "PATH": os.environ.get("PATH", ""),
           "PULSE_SERVER": "unix:/nonexistent"}  # a chat must not need audio
    log = tmp_path / "wespoke.log"
    args = ["--chat", "--api-url", wespoke_server.url, "--api-key", wespoke_server.api_key,
            "--assistant-id", wespoke_server.assistant_id, "--lang", lang, "--log-file", str(log),
            "--first-message", "Merhaba!"]
    words = {"en": ("Start chat", "Chat open", "You", "Are you sure you want to end the chat?", "Chat ended"),
             "tr": ("Sohbet başlat", "Sohbet açık", "Siz", "Sohbeti sonlandırmak istediğinizden emin misiniz?",
                    "Sohbet bitti")}[lang]
    start, open_, you, confirm, ended = words
    term = terminal_factory(args, env)
    term.wait_for(start)
    term.send("c")  # no microphone consent: a chat uses none
    term.wait_for(open_, timeout=15)
    term.wait_for("Test Assistant: Merhaba!")
    term.send("What is the weather?", "Enter")  # the message box has the focus
    screen = term.wait_for("Test Assistant: You said: What is the weather?", timeout=15)
    assert f"{you}: What is the weather?" in screen and "lookup_weather" in screen and "Weather FAQ" in screen
    term.send("Escape", "h")
    term.wait_for(confirm)
    term.send("y")
    term.wait_for(ended, timeout=10)
    term.send("q")
    final = term.wait_for(lambda text: "[exit status" in text, timeout=10)
    assert "[exit status 0]" in final, final
    (record,) = wespoke_server.chats.values()
    assert record.ended
    assert wespoke_server.api_key not in log.read_text()
