"""The installed `wespoke-tui` console script: help, option placement, one-line errors, exit codes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from wespoke_tui import __version__, cli, logs
from wespoke_tui.config import HeadlessOptions
from wespoke_tui.settings import Settings, mask_key
from wespoke_tui.shutdown import ExitPolicy, leave_after_call

SECRET_KEY = "pk_live_topsecretvalue7777"
BAD_KEY = "sk_live_notawespokekey8888"
EVERY_OPTION = [
    "--api-key", "--assistant-id", "--api-url", "--origin", "--user-id", "--session-id",
    "--metadata", "--first-message", "--system-prompt", "--system-prompt-file", "--var",
    "--override", "--lang", "--input-device", "--output-device", "--no-aec", "--no-ns",
    "--no-agc", "--jitter-ms", "--log-file", "--log-level", "--demo", "--call-on-start",
    "--config", "--version", "--help",
]
HEADLESS_OPTIONS = ["--no-tui", "--input-wav", "--output-wav", "--transcript", "--duration", "--json"]
HEAVY_MODULES = ("textual", "livekit", "numpy", "sounddevice", "httpx")


def find_script() -> str:
    """The console script installed next to this interpreter; missing means a broken install."""
    bin_dir = Path(sys.executable).parent
    found = shutil.which("wespoke-tui", path=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    assert found, f"wespoke-tui console script not installed in {bin_dir}"
    return found


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """The real environment without WESPOKE_* and with an empty home and config dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WESPOKE_")}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "xdg"), LANG="C.UTF-8")
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_script(), *args], env=env, capture_output=True, text=True,
                          timeout=60)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], option: str) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"wespoke-tui: error: {option}"), lines[0]
    for key in (SECRET_KEY, BAD_KEY):
        assert key not in output and key[8:] not in output
    return lines[0]


INVALID_CASES = [
    # (args, extra environment, config file text, option named first)
    (["--api-key", BAD_KEY], {}, None, "--api-key"),
    ([], {"WESPOKE_API_KEY": BAD_KEY}, None, "--api-key (from WESPOKE_API_KEY)"),
    (["call", "--no-tui", "--api-key", SECRET_KEY], {}, None, "--assistant-id"),
    (["call", "--no-tui", "--assistant-id", "a"], {}, None, "--api-key"),
    (["--metadata", "no-equals-sign"], {}, None, "--metadata"),
    (["--var", "=value-without-name"], {}, None, "--var"),
    (["--override", "recordingEnabled=nope"], {}, None, "--override"),
    (["--api-url", "http://api.wespoke.ai"], {}, None, "--api-url"),
    (["--api-url", "not a url"], {}, None, "--api-url"),
    (["--origin", "example.com/path"], {}, None, "--origin"),
    (["--system-prompt-file", "/nonexistent/prompt.txt"], {}, None, "--system-prompt-file"),
    (["--system-prompt", "a", "call", "--system-prompt-file", "/etc/hostname"], {}, None,
     "--system-prompt-file"),
    (["--jitter-ms", "10"], {}, None, "--jitter-ms"),
    (["--jitter-ms", "ten"], {}, None, "--jitter-ms"),
    (["--lang", "fr"], {}, None, "--lang"),
    (["--log-level", "verbose"], {}, None, "--log-level"),
    (["--config", "/nonexistent/config.toml"], {}, None, "--config"),
    ([], {}, "api_key = 'unterminated\n", "--config"),
    ([], {}, "surprise = true\n", "--config"),
    ([], {}, "jitter_ms = 'fast'\n", "--config"),
    ([], {}, f"api_key = '{BAD_KEY}'\n", "--api-key (from "),
    (["--no-such-flag"], {}, None, "--no-such-flag"),
    (["call", "--no-tui", "--demo", "--bogus"], {}, None, "--bogus"),
    (["--jitter-ms"], {}, None, "--jitter-ms"),
    (["nosuchcommand"], {}, None, "COMMAND"),
]


@pytest.mark.parametrize(("args", "env_extra", "config", "option"), INVALID_CASES)
def test_invalid_settings_one_line_exit_2(clean_env: dict[str, str], args: list[str],
                                          env_extra: dict[str, str], config: str | None,
                                          option: str) -> None:
    if config is not None:
        path = Path(clean_env["XDG_CONFIG_HOME"]) / "wespoke-tui" / "config.toml"
        path.parent.mkdir(parents=True)
        path.write_text(config)
    proc = run(args, {**clean_env, **env_extra})
    assert_one_line_error(proc, option)


def test_bad_key_message_shows_it_masked(clean_env: dict[str, str]) -> None:
    line = assert_one_line_error(run(["--api-key", BAD_KEY], clean_env), "--api-key")
    assert mask_key(BAD_KEY) in line and "pk_live_" in line


def test_invalid_toml_names_file_and_line(clean_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "my.toml"
    path.write_text('lang = "tr"\norigin = \n')
    line = assert_one_line_error(run(["--config", str(path)], clean_env), "--config")
    assert str(path) in line and "line 2" in line


def test_unwritable_log_file(clean_env: dict[str, str], tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    assert_one_line_error(run(["--log-file", str(not_a_dir / "x.log"), "devices"], clean_env),
                          "--log-file")


def test_no_request_is_sent_when_settings_are_wrong(clean_env: dict[str, str]) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        for args in (["call", "--no-tui", "--api-url", url, "--api-key", BAD_KEY,
                      "--assistant-id", "a"],
                     ["call", "--no-tui", "--api-url", url, "--api-key", SECRET_KEY,
                      "--assistant-id", "a", "--metadata", "broken"],
                     ["call", "--no-tui", "--api-url", url, "--api-key", SECRET_KEY]):
            assert run(args, clean_env).returncode == 2
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()


def test_options_work_before_and_after_the_subcommand(clean_env: dict[str, str]) -> None:
    for args in (["--api-key", BAD_KEY, "call", "--no-tui"],
                 ["call", "--no-tui", "--api-key", BAD_KEY],
                 ["--demo", "call", "--api-key", BAD_KEY, "--no-tui"],
                 ["--api-key", BAD_KEY, "devices"],
                 ["devices", "--api-key", BAD_KEY]):
        assert_one_line_error(run(args, clean_env), "--api-key")
    # The later of two values wins: a valid key after the subcommand replaces a bad one before.
    proc = run(["--api-key", BAD_KEY, "call", "--no-tui", "--api-key", SECRET_KEY], clean_env)
    assert_one_line_error(proc, "--assistant-id")


def test_help_lists_every_option_fast(clean_env: dict[str, str]) -> None:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        proc = run(["--help"], clean_env)
        times.append(time.perf_counter() - start)
        assert proc.returncode == 0 and proc.stderr == ""
    for option in EVERY_OPTION:
        assert option in proc.stdout, option
    for name in ("call", "devices", "WESPOKE_API_KEY", "config.toml"):
        assert name in proc.stdout
    assert min(times) < 1.0, times
    call_help = run(["call", "--help"], clean_env)
    assert call_help.returncode == 0
    for option in EVERY_OPTION + HEADLESS_OPTIONS:
        assert option in call_help.stdout, option


def test_version(clean_env: dict[str, str]) -> None:
    for args in (["--version"], ["call", "--version"]):
        proc = run(args, clean_env)
        assert proc.returncode == 0 and proc.stdout.strip() == f"wespoke-tui {__version__}"


def test_help_and_errors_import_nothing_heavy(clean_env: dict[str, str]) -> None:
    code = (
        "import sys\n"
        "from wespoke_tui.cli import main\n"
        "codes = [main(['--help']), main(['--lang', 'xx']), main(['call', '--no-tui'])]\n"
        f"heavy = [m for m in sys.modules if m.split('.')[0] in {HEAVY_MODULES!r}]\n"
        "print(codes, heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=clean_env, capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.strip().endswith("[0, 2, 2] []"), proc.stdout + proc.stderr


# --------------------------------------------------------------------------- dispatch, in process
# The app, the headless runner and the device list belong to other modules; these tests put
# stand-ins for them in sys.modules to check what `main` hands over and how it ends.


@pytest.fixture
def standins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    calls: list[tuple[str, tuple]] = []
    behaviour: dict[str, object] = {}

    def make(module: str, func: str) -> None:
        def entry(*args):
            calls.append((func, args))
            outcome = behaviour.get(func, 0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        monkeypatch.setitem(sys.modules, module, types.SimpleNamespace(**{func: entry}))

    make("wespoke_tui.ui.app", "run_app")
    make("wespoke_tui.headless", "run_headless")
    make("wespoke_tui.audio.devices", "print_devices")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "LANG": "tr_TR.UTF-8"}
    yield calls, behaviour, env
    logs.setup_logging(Settings())


def test_dispatch_to_app_headless_and_devices(standins) -> None:
    calls, behaviour, env = standins
    behaviour["run_headless"] = 0
    behaviour["run_app"] = 0
    behaviour["print_devices"] = 0
    assert cli.main(["--demo"], env) == 0
    assert cli.main(["call", "--demo"], env) == 0
    assert cli.main(["call", "--no-tui", "--demo", "--duration", "4"], env) == 0
    assert cli.main(["devices"], env) == 0
    (f1, (s1, p1)), (f2, (s2, p2)), (f3, (_s3, o3, p3)), (f4, (_s4,)) = calls
    assert (f1, f2, f3, f4) == ("run_app", "run_app", "run_headless", "print_devices")
    # The CLI owns the process's one signal and exit policy, and hands it to the runner.
    for policy in (p1, p2, p3):
        assert isinstance(policy, ExitPolicy) and policy.process_exit is leave_after_call
    assert not s1.call_on_start and s2.call_on_start
    assert s1.lang == "tr"
    assert o3 == HeadlessOptions(duration=4.0)
    behaviour["run_headless"] = 3
    assert cli.main(["call", "--no-tui", "--demo"], env) == 3


def test_unexpected_exception_is_one_line_and_logged(standins, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _calls, behaviour, env = standins
    log_file = tmp_path / "w.log"
    behaviour["run_app"] = RuntimeError(f"exploded using {SECRET_KEY}\nsecond line")
    assert cli.main(["--api-key", SECRET_KEY, "--log-file", str(log_file)], env) == 1
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wespoke-tui: error: unexpected RuntimeError")
    assert str(log_file) in lines[0] and mask_key(SECRET_KEY) in lines[0]
    assert "Traceback" not in out.err and SECRET_KEY not in out.err and "second line" not in out.err
    logged = log_file.read_text()
    assert "Traceback" in logged and "RuntimeError: exploded using" in logged
    assert SECRET_KEY not in logged


def test_keyboard_interrupt_exits_130_quietly(standins,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _calls, behaviour, env = standins
    behaviour["run_app"] = KeyboardInterrupt()
    assert cli.main([], env) == 130
    out = capsys.readouterr()
    assert out.err == "" and out.out == ""


def test_failure_before_logging_is_set_up_is_still_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken_loader(argv, env):
        raise ValueError("internal bug\nwith details")

    monkeypatch.setattr(cli, "load_settings", broken_loader)
    assert cli.main([], {}) == 1
    out = capsys.readouterr()
    assert out.err.splitlines() == [
        "wespoke-tui: error: unexpected ValueError: internal bug "
        "(run with --log-file PATH for details)"]
    assert out.out == ""
