"""Windows, simulated at its edges (tests/simulate_windows.py: no SIGHUP/SIGQUIT, a loop that
refuses `add_signal_handler`, the console's close event), and a cp1252 pipe: every command works,
every line gets through, and a closed console window still ends the call on the server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.test_drills import Stack, stack, tone_wav  # noqa: F401 (the fixture)
from tests.test_drills_signals import seconds_until_gone, wait_joined
from wespoke_tui import __version__
from wespoke_tui.shutdown import ExitPolicy, platform_signals
from wespoke_tui.winconsole import CTRL_BREAK_EVENT, CTRL_C_EVENT, CTRL_CLOSE_EVENT, ConsoleCloseHandler

REPO = Path(__file__).resolve().parents[1]
WINDOWS = [sys.executable, "-m", "tests.simulate_windows"]
TR_CHAT = "Merhaba\nHava nasıl?\n"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WESPOKE_") and k != "PYTHONIOENCODING"}
    return {**env, **extra}


def run(argv: list[str], *, stdin: str = "", env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, input=stdin.encode(), capture_output=True, cwd=REPO, env=env or clean_env(),
                          timeout=timeout)


def said(done: subprocess.CompletedProcess[bytes]) -> str:
    return done.stdout.decode("utf-8") + done.stderr.decode("utf-8")


@pytest.mark.parametrize("argv", [["--version"], ["test", "--help"], ["--help"]], ids=" ".join)
def test_on_windows_the_commands_without_a_call_work(argv: list[str]) -> None:
    done = run([*WINDOWS, *argv])
    assert done.returncode == 0, said(done)
    assert "Traceback" not in said(done) and "AttributeError" not in said(done)
    if argv == ["--version"]:
        assert __version__ in said(done)


def test_on_windows_the_device_list_works(sound_rig) -> None:
    done = run([*WINDOWS, "devices"], env=clean_env(**sound_rig.env))
    assert done.returncode == 0, said(done)
    assert "Traceback" not in said(done)
    assert "input:" in done.stdout.decode() and "output:" in done.stdout.decode()


def test_on_windows_the_demo_chat_answers_every_line() -> None:
    done = run([*WINDOWS, "chat", "--no-tui", "--demo"], stdin="Hello\nHow are you?\n")
    assert done.returncode == 0, said(done)
    out = done.stdout.decode("utf-8")
    assert "Hello" in out and "How are you?" in out and "Traceback" not in said(done)


def test_on_windows_a_headless_demo_call_on_wav_files_runs_and_ends(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "in.wav", 2.0)
    done = run([*WINDOWS, "call", "--no-tui", "--demo", "--input-wav", str(mic), "--output-wav",
                str(tmp_path / "out.wav"), "--duration", "3"])
    assert done.returncode == 0, said(done)
    assert "Call ended" in done.stdout.decode("utf-8"), said(done)
    assert (tmp_path / "out.wav").stat().st_size > 44


def test_a_cp1252_pipe_gets_every_turkish_line_as_utf8() -> None:
    utf8 = run([sys.executable, "-m", "wespoke_tui", "chat", "--no-tui", "--demo", "--lang", "tr"], stdin=TR_CHAT,
               env=clean_env(PYTHONIOENCODING="utf-8"))
    cp1252 = run([sys.executable, "-m", "wespoke_tui", "chat", "--no-tui", "--demo", "--lang", "tr"], stdin=TR_CHAT,
                 env=clean_env(PYTHONIOENCODING="cp1252"))
    assert utf8.returncode == 0 and cp1252.returncode == 0, said(cp1252)
    lines = cp1252.stdout.decode("utf-8").splitlines()
    assert len(lines) >= 7, lines
    # Line for line what a UTF-8 pipe gets, but for the times and ids of this run.
    assert [line[:12] for line in lines] == [line[:12] for line in utf8.stdout.decode("utf-8").splitlines()]
    assert any("Hava nasıl?" in line for line in lines), lines
    assert any(ch in cp1252.stdout.decode("utf-8") for ch in "ğışĞİŞ")


def test_the_signal_set_is_what_the_platform_has() -> None:
    done = run([sys.executable, "-c", "import signal; del signal.SIGHUP; del signal.SIGQUIT; signal.SIGBREAK = 21;"
                "from wespoke_tui.shutdown import platform_signals; print([s for s in platform_signals()])"])
    assert done.stdout.decode().strip() == "[<Signals.SIGINT: 2>, <Signals.SIGTERM: 15>, 21]", said(done)
    assert set(platform_signals()) == {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


async def test_a_console_close_waits_for_the_hang_up_then_lets_windows_end_the_process() -> None:
    """The routine runs on a thread of Windows'; it must return only once the call has hung up."""
    routines: list = []
    policy = ExitPolicy(console=ConsoleCloseHandler(register=lambda r: routines.append(r) or (lambda: None)))
    hung_up_at: list[float] = []

    async def hang_up() -> None:
        await asyncio.sleep(0.6)  # scenario: a hang-up in flight: leave the room, end the call on the server
        hung_up_at.append(time.monotonic())
        policy.hung_up.set()

    begun: list[int] = []
    policy.attach(lambda signum: (begun.append(signum), asyncio.get_running_loop().create_task(hang_up())))
    policy.install()
    try:
        (routine,) = routines
        assert routine(CTRL_C_EVENT) is False and routine(CTRL_BREAK_EVENT) is False  # the signals take those
        result: list[tuple[bool, float]] = []
        thread = threading.Thread(target=lambda: result.append((routine(CTRL_CLOSE_EVENT), time.monotonic())))
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.02)  # poll
    finally:
        policy.uninstall()
    ((handled, returned_at),) = result
    assert handled is True and begun and policy.terminal_lost
    assert returned_at >= hung_up_at[0]


async def test_on_windows_closing_the_console_window_ends_the_call_on_the_server(stack: Stack, tmp_path: Path) -> None:
    trigger = tmp_path / "close-console"
    env = clean_env(WESPOKE_API_KEY=stack.api.api_key, SIMULATED_CONSOLE_CLOSE=str(trigger))
    argv = [*WINDOWS, "call", "--no-tui", "--assistant-id", stack.api.assistant_id, "--api-url", stack.api.url,
            "--lang", "en", "--input-wav", str(tone_wav(tmp_path / "in.wav", 30)), "--output-wav", str(tmp_path / "out.wav")]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        await wait_joined(stack)
        trigger.touch()
        _out, err = await asyncio.to_thread(proc.communicate, timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = err.decode("utf-8", "replace")
    assert "console routine returned True" in text, text
    returned_after = float(text.split("console routine returned True after ")[1].split(" s")[0])
    print(f"console close: the routine returned {returned_after:.2f} s after the event, the call ended")
    assert returned_after < 4.5, text  # Windows ends the process 5 s after a close
    # The process ended the moment the routine returned, and the call had already ended.
    assert await seconds_until_gone(stack, 1.0) < 1.0
    (record,) = stack.api.calls.values()
    assert record.ended, vars(record)
    assert "Traceback" not in text and stack.api.api_key not in text


async def test_on_windows_ctrl_c_in_a_headless_call_hangs_up(stack: Stack, tmp_path: Path) -> None:
    env = clean_env(WESPOKE_API_KEY=stack.api.api_key)
    argv = [*WINDOWS, "call", "--no-tui", "--assistant-id", stack.api.assistant_id, "--api-url", stack.api.url,
            "--lang", "en", "--input-wav", str(tone_wav(tmp_path / "in.wav", 30)), "--output-wav", str(tmp_path / "out.wav")]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        await wait_joined(stack)
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.to_thread(proc.communicate, timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert out.decode().splitlines()[-1] == "Call ended"
    assert await seconds_until_gone(stack, 2.0) < 2.0
