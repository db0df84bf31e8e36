"""Settings resolution (flags > env > config file > defaults), the config file, and log redaction."""

from __future__ import annotations

import logging
import stat
import tomllib
from pathlib import Path

import pytest

from wespoke_tui import logs
from wespoke_tui.config import (
    CMD_DEVICES,
    CMD_HEADLESS,
    CMD_TUI,
    ConfigError,
    HeadlessOptions,
    default_config_path,
    detect_lang,
    load_settings,
    save_config,
)
from wespoke_tui.settings import DEFAULT_API_URL, Settings, mask_key

FLAG_KEY = "pk_live_flagflagflag1111"
ENV_KEY = "pk_test_envenvenvenv2222"
FILE_KEY = "pk_live_filefilefile3333"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJlX2hlcmU"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment with nothing set but an empty XDG config dir."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "LANG": "C.UTF-8"}


def write_config(env: dict[str, str], text: str) -> Path:
    path = Path(env["XDG_CONFIG_HOME"]) / "wespoke-tui" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(home: dict[str, str]) -> None:
    command, settings, options = load_settings([], home)
    assert command == CMD_TUI
    assert options == HeadlessOptions()
    assert settings.api_key is None and settings.assistant_id is None
    assert settings.api_url == DEFAULT_API_URL
    assert settings.lang == "en"
    assert (settings.aec, settings.noise_suppression, settings.auto_gain) == (True, True, True)
    assert settings.jitter_buffer_ms == 40
    assert settings.log_level == "WARNING" and settings.log_file is None
    assert not settings.demo and not settings.call_on_start and not settings.mic_consent_given
    assert settings.config_path == Path(home["XDG_CONFIG_HOME"]) / "wespoke-tui" / "config.toml"


@pytest.mark.parametrize(
    ("file_key", "file_value", "env_name", "env_value", "flag", "flag_value", "attr", "expect"),
    [
        ("api_key", f'"{FILE_KEY}"', "WESPOKE_API_KEY", ENV_KEY, "--api-key", FLAG_KEY,
         "api_key", (FILE_KEY, ENV_KEY, FLAG_KEY)),
        ("assistant_id", '"asst_file"', "WESPOKE_ASSISTANT_ID", "asst_env", "--assistant-id",
         "asst_flag", "assistant_id", ("asst_file", "asst_env", "asst_flag")),
        ("api_url", '"https://file.example"', "WESPOKE_API_URL", "http://127.0.0.1:9/",
         "--api-url", "http://localhost:8080", "api_url",
         ("https://file.example", "http://127.0.0.1:9", "http://localhost:8080")),
        ("origin", '"https://file.example"', "WESPOKE_ORIGIN", "https://env.example",
         "--origin", "http://localhost:3000", "origin",
         ("https://file.example", "https://env.example", "http://localhost:3000")),
        ("lang", '"tr"', "WESPOKE_LANG", "en", "--lang", "tr", "lang", ("tr", "en", "tr")),
        ("jitter_ms", "100", "WESPOKE_JITTER_MS", "200", "--jitter-ms", "300",
         "jitter_buffer_ms", (100, 200, 300)),
        ("log_level", '"error"', "WESPOKE_LOG_LEVEL", "info", "--log-level", "debug",
         "log_level", ("ERROR", "INFO", "DEBUG")),
        ("input_device", "3", "WESPOKE_INPUT_DEVICE", "pulse", "--input-device", "USB Mic",
         "input_device", ("3", "pulse", "USB Mic")),
        ("first_message", '"from file"', "WESPOKE_FIRST_MESSAGE", "from env",
         "--first-message", "from flag", "first_message", ("from file", "from env", "from flag")),
    ],
)
def test_precedence_flag_env_file(home: dict[str, str], file_key: str, file_value: str,
                                  env_name: str, env_value: str, flag: str, flag_value: str,
                                  attr: str, expect: tuple[object, object, object]) -> None:
    write_config(home, f"{file_key} = {file_value}\n")
    assert getattr(load_settings([], home)[1], attr) == expect[0]
    env = {**home, env_name: env_value}
    assert getattr(load_settings([], env)[1], attr) == expect[1]
    assert getattr(load_settings([flag, flag_value], env)[1], attr) == expect[2]


def test_switches_from_each_source(home: dict[str, str]) -> None:
    write_config(home, "no_aec = true\ndemo = true\n")
    settings = load_settings([], home)[1]
    assert not settings.aec and settings.demo and settings.noise_suppression
    settings = load_settings([], {**home, "WESPOKE_NO_NS": "yes", "WESPOKE_DEMO": "0"})[1]
    assert not settings.noise_suppression and not settings.demo and not settings.aec
    settings = load_settings(["--no-agc", "--demo"], {**home, "WESPOKE_DEMO": "0"})[1]
    assert not settings.auto_gain and settings.demo


def test_delete_after_from_each_source(home: dict[str, str]) -> None:
    assert not load_settings([], home)[1].delete_after
    assert load_settings(["call", "--no-tui", "--demo", "--delete-after"], home)[1].delete_after
    assert load_settings([], {**home, "WESPOKE_DELETE_AFTER": "yes"})[1].delete_after
    write_config(home, "delete_after = true\n")
    assert load_settings([], home)[1].delete_after
    assert not load_settings([], {**home, "WESPOKE_DELETE_AFTER": "0"})[1].delete_after


def test_tables_merge_file_then_flags(home: dict[str, str]) -> None:
    write_config(home, '[metadata]\nsource = "file"\nkeep = 1\n'
                       '[variables]\nname = "Ayşe"\n'
                       '[overrides]\nrecordingEnabled = true\nendCallAfterSilence = 30\n')
    settings = load_settings(
        ["--metadata", "source=cli", "--metadata", 'extra={"a": [1, 2]}', "--metadata", "t=x y",
         "--var", "city=İzmir", "--override", "recordingEnabled=false",
         "--user-id", "u1", "--session-id", "s1"], home)[1]
    assert settings.metadata == {"source": "cli", "keep": 1, "extra": {"a": [1, 2]}, "t": "x y"}
    assert settings.variables == {"name": "Ayşe", "city": "İzmir"}
    assert settings.overrides == {"recordingEnabled": False, "endCallAfterSilence": 30}
    assert settings.token_metadata()["userId"] == "u1"
    assert settings.token_metadata()["sessionId"] == "s1"
    assert settings.assistant_overrides()["variableValues"] == {"name": "Ayşe", "city": "İzmir"}


def test_options_before_and_after_subcommand(home: dict[str, str]) -> None:
    args = ["--api-key", FLAG_KEY, "--var", "a=1", "call", "--no-tui", "--assistant-id", "x",
            "--var", "b=2", "--lang", "tr", "--duration", "2.5"]
    command, settings, options = load_settings(args, home)
    assert command == CMD_HEADLESS
    assert settings.api_key == FLAG_KEY and settings.assistant_id == "x" and settings.lang == "tr"
    assert settings.variables == {"a": "1", "b": "2"}
    assert options.duration == 2.5
    # Given in both places, the later one wins.
    assert load_settings(["--lang", "en", "devices", "--lang", "tr"], home)[1].lang == "tr"
    assert load_settings(["--lang", "en", "devices"], home)[0] == CMD_DEVICES


def test_call_without_no_tui_is_the_tui_calling_at_once(home: dict[str, str]) -> None:
    command, settings, _ = load_settings(["call"], home)
    assert command == CMD_TUI and settings.call_on_start
    assert load_settings(["--call-on-start"], home)[1].call_on_start
    assert not load_settings([], home)[1].call_on_start


def test_tui_without_key_or_assistant_is_not_an_error(home: dict[str, str]) -> None:
    settings = load_settings([], home)[1]
    assert settings.api_key is None and settings.assistant_id is None


def test_headless_demo_needs_no_key(home: dict[str, str], tmp_path: Path) -> None:
    wav = tmp_path / "in.wav"
    wav.write_bytes(b"RIFF")
    command, settings, options = load_settings(
        ["call", "--no-tui", "--demo", "--input-wav", str(wav), "--output-wav",
         str(tmp_path / "out.wav"), "--transcript", str(tmp_path / "t.jsonl")], home)
    assert command == CMD_HEADLESS and settings.demo
    assert options == HeadlessOptions(wav, tmp_path / "out.wav", tmp_path / "t.jsonl", None, json=False)
    json_options = load_settings(["call", "--no-tui", "--demo", "--json"], home)[2]
    assert json_options == HeadlessOptions(json=True)


@pytest.mark.parametrize("args", [["--duration", "3"], ["--json"]], ids=lambda a: a[0])
def test_headless_options_need_no_tui(home: dict[str, str], args: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(["call", *args], home)
    assert err.value.option == args[0]
    assert "--no-tui" in err.value.message


def test_xdg_path_and_home_default(tmp_path: Path) -> None:
    assert default_config_path({"XDG_CONFIG_HOME": "/x/y"}) == Path("/x/y/wespoke-tui/config.toml")
    assert default_config_path({}) == Path.home() / ".config" / "wespoke-tui" / "config.toml"
    # A relative XDG_CONFIG_HOME is invalid per the spec and ignored.
    assert default_config_path({"XDG_CONFIG_HOME": "rel"}) == default_config_path({})


def test_config_option_and_env_choose_the_file(home: dict[str, str], tmp_path: Path) -> None:
    write_config(home, 'assistant_id = "xdg"\n')
    other = tmp_path / "other.toml"
    other.write_text('assistant_id = "other"\n')
    third = tmp_path / "third.toml"
    third.write_text('assistant_id = "third"\n')
    assert load_settings([], home)[1].assistant_id == "xdg"
    settings = load_settings(["--config", str(other)], home)[1]
    assert settings.assistant_id == "other" and settings.config_path == other
    env = {**home, "WESPOKE_CONFIG": str(third)}
    assert load_settings([], env)[1].assistant_id == "third"
    assert load_settings(["--config", str(other)], env)[1].assistant_id == "other"


def test_relative_paths_in_config_are_relative_to_it(home: dict[str, str]) -> None:
    path = write_config(home, 'system_prompt_file = "prompt.txt"\nlog_file = "w.log"\n')
    (path.parent / "prompt.txt").write_text("Kısa cevap ver.", encoding="utf-8")
    settings = load_settings([], home)[1]
    assert settings.system_prompt == "Kısa cevap ver."
    assert settings.log_file == path.parent / "w.log"


def test_system_prompt_flag_beats_file_option_from_config(home: dict[str, str]) -> None:
    write_config(home, 'system_prompt_file = "/nonexistent/prompt.txt"\n')
    assert load_settings(["--system-prompt", "hi"], home)[1].system_prompt == "hi"


@pytest.mark.parametrize(
    ("env", "lang"),
    [({"LC_ALL": "tr_TR.UTF-8", "LANG": "en_US.UTF-8"}, "tr"),
     ({"LC_ALL": "en_US.UTF-8", "LANG": "tr_TR.UTF-8"}, "en"),
     ({"LC_MESSAGES": "tr_TR", "LANG": "en_US"}, "tr"),
     ({"LANG": "tr_TR.UTF-8"}, "tr"),
     ({"LANG": "C.UTF-8"}, "en"),
     ({}, "en")],
)
def test_lang_from_locale(env: dict[str, str], lang: str) -> None:
    assert detect_lang(env) == lang
    assert load_settings([], {"XDG_CONFIG_HOME": "/nonexistent-xdg", **env})[1].lang == lang


@pytest.mark.parametrize(
    ("args", "env_extra", "config", "option", "fragment"),
    [
        (["--api-key", "sk_live_abcdefgh9999"], {}, None, "--api-key", "pk_live_"),
        ([], {"WESPOKE_API_KEY": "nope_abcdefgh9999"}, None, "WESPOKE_API_KEY", "pk_test_"),
        (["--metadata", "novalue"], {}, None, "--metadata", "KEY=VALUE"),
        (["--var", "=x"], {}, None, "--var", "NAME=VALUE"),
        (["--override", "a=not json"], {}, None, "--override", "JSON"),
        (["--override", "noequals"], {}, None, "--override", "KEY=JSON"),
        (["--api-url", "http://api.example.com"], {}, None, "--api-url", "http://"),
        (["--api-url", "ftp://127.0.0.1"], {}, None, "--api-url", "http(s)"),
        (["--origin", "example.com"], {}, None, "--origin", "scheme://host"),
        (["--jitter-ms", "abc"], {}, None, "--jitter-ms", "whole number"),
        (["--jitter-ms", "501"], {}, None, "--jitter-ms", "out of range"),
        (["--lang", "de"], {}, None, "--lang", "tr or en"),
        (["--log-level", "loud"], {}, None, "--log-level", "debug"),
        ([], {"WESPOKE_NO_AEC": "maybe"}, None, "WESPOKE_NO_AEC", "switch"),
        (["--system-prompt-file", "/nonexistent/p.txt"], {}, None, "--system-prompt-file",
         "cannot read"),
        (["--system-prompt", "a", "--system-prompt-file", "/etc/hostname"], {}, None,
         "--system-prompt-file", "together"),
        ([], {}, "api_key = \n", "--config", "line 1"),
        ([], {}, 'colour = "red"\n', "--config", "unknown key 'colour'"),
        ([], {}, 'jitter_ms = "80"\n', "--config", "'jitter_ms' must be an integer"),
        ([], {}, "demo = 1\n", "--config", "'demo' must be true or false"),
        ([], {}, "metadata = 3\n", "--config", "'metadata' must be a table"),
        ([], {}, "[overrides]\nwhen = 2024-01-01\n", "--config", "overrides.when"),
        ([], {}, "[variables]\nn = 1\n", "--config", "variables.n"),
        ([], {}, 'api_url = "http://10.0.0.1"\n', "--api-url", "config.toml"),
        (["--config", "/nonexistent/c.toml"], {}, None, "--config", "no such file"),
        (["call", "--no-tui", "--api-key", "pk_test_abcdefgh1234"], {}, None, "--assistant-id",
         "--demo"),
        (["call", "--no-tui", "--assistant-id", "a"], {}, None, "--api-key", "--demo"),
        (["call", "--no-tui", "--demo", "--duration", "0"], {}, None, "--duration", "more than"),
        (["call", "--no-tui", "--demo", "--input-wav", "/nonexistent.wav"], {}, None,
         "--input-wav", "no such file"),
        (["--unknown-flag"], {}, None, "--unknown-flag", "unknown"),
    ],
)
def test_validation_errors(home: dict[str, str], args: list[str], env_extra: dict[str, str],
                           config: str | None, option: str, fragment: str) -> None:
    if config is not None:
        write_config(home, config)
    with pytest.raises(ConfigError) as err:
        load_settings(args, {**home, **env_extra})
    assert option in err.value.option
    assert fragment in err.value.message or fragment in err.value.option
    assert "abcdefgh9999" not in str(err.value)


def test_invalid_toml_names_file_and_line(home: dict[str, str]) -> None:
    path = write_config(home, 'lang = "tr"\n\nassistant_id = [unclosed\n')
    with pytest.raises(ConfigError) as err:
        load_settings([], home)
    assert str(path) in err.value.message and "line 3" in err.value.message


def test_loopback_http_urls_are_allowed(home: dict[str, str]) -> None:
    for url in ("http://127.0.0.1:8080", "http://127.5.6.7", "http://localhost/api",
                "http://[::1]:9000", "https://api.wespoke.com.tr/"):
        assert load_settings(["--api-url", url], home)[1].api_url == url.rstrip("/")


# --------------------------------------------------------------------------- save_config


def test_save_config_creates_0600_and_round_trips(home: dict[str, str]) -> None:
    path = Path(home["XDG_CONFIG_HOME"]) / "wespoke-tui" / "config.toml"
    updates = {
        "api_key": FILE_KEY,
        "assistant_id": 'asst "quoted" \\ \n tab\t',
        "mic_consent_given": True,
        "jitter_ms": 90,
        "input_device": 2,
        "metadata": {"plain": "x", "needs quoting": "y", "n": 1.5, "ok": False,
                     "nested": {"a": [1, "b"]}},
        "variables": {"isim": "Ayşe Öztürk"},
    }
    save_config(path, updates)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tomllib.loads(path.read_text(encoding="utf-8")) == updates
    settings = load_settings([], home)[1]
    assert settings.api_key == FILE_KEY and settings.mic_consent_given
    assert settings.metadata["needs quoting"] == "y"
    assert settings.input_device == "2" and settings.jitter_buffer_ms == 90


def test_save_config_merges_and_removes(home: dict[str, str]) -> None:
    path = write_config(home, 'lang = "tr"\nassistant_id = "old"\n[overrides]\nx = 1\n')
    path.chmod(0o644)
    save_config(path, {"assistant_id": "new", "mic_consent_given": True, "lang": None})
    assert tomllib.loads(path.read_text()) == {
        "assistant_id": "new", "mic_consent_given": True, "overrides": {"x": 1}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temp file left


def test_save_config_refuses_bad_input_and_keeps_broken_file(home: dict[str, str]) -> None:
    path = write_config(home, "broken = = toml\n")
    with pytest.raises(ConfigError):
        save_config(path, {"assistant_id": "x"})
    assert path.read_text() == "broken = = toml\n"
    path.unlink()
    with pytest.raises(ConfigError):
        save_config(path, {"no_such_option": 1})
    with pytest.raises(ConfigError):
        save_config(path, {"mic_consent_given": "yes"})
    assert not path.exists()


# --------------------------------------------------------------------------- logging


@pytest.fixture
def log_file(tmp_path: Path):
    path = tmp_path / "logs" / "w.log"
    yield path
    logs.setup_logging(Settings())  # back to a NullHandler, closing the file


def test_log_file_redacts_key_jwt_and_registered_secrets(log_file: Path) -> None:
    key = "pk_live_supersecretkey4321"
    other_key = "pk_test_someotherkey9876"
    livekit_token = "lk-opaque-token-value-XYZ"
    logs.setup_logging(Settings(api_key=key, log_file=log_file, log_level="DEBUG"))
    logs.register_secret(livekit_token)
    log = logging.getLogger("wespoke_tui.test")
    log.debug("key %s other %s", key, other_key)
    log.info("token %s and %s", JWT, livekit_token)
    logging.getLogger("livekit.child").warning("propagated: %r", {"token": livekit_token})
    try:
        raise RuntimeError(f"failed with {key} and {JWT} and {livekit_token}")
    except RuntimeError:
        log.exception("boom %s", key)
    text = log_file.read_text(encoding="utf-8")
    for secret in (key, other_key, JWT, livekit_token, "supersecretkey", "someotherkey"):
        assert secret not in text
    assert mask_key(key) in text and mask_key(other_key) in text
    assert text.count(logs.REDACTED_TOKEN) >= 2
    assert "<redacted>" in text
    assert "Traceback" in text and "RuntimeError: failed with" in text
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600


def test_log_level_filters_and_nothing_logged_without_file(log_file: Path,
                                                           capfd: pytest.CaptureFixture[str]
                                                           ) -> None:
    logs.setup_logging(Settings(log_file=log_file, log_level="WARNING"))
    logging.getLogger("x").info("quiet-info")
    logging.getLogger("x").warning("loud-warning")
    text = log_file.read_text()
    assert "loud-warning" in text and "quiet-info" not in text
    logs.setup_logging(Settings())  # no file: nothing anywhere, not even the last resort
    logging.getLogger("x").error("nowhere-error")
    assert "nowhere-error" not in log_file.read_text()
    captured = capfd.readouterr()
    assert "nowhere-error" not in captured.err + captured.out
    root = logging.getLogger()
    assert sum(h.get_name() == "wespoke-tui" for h in root.handlers) == 1


def test_redact_leaves_ordinary_text_alone() -> None:
    logs.register_secret("abc")  # too short to redact safely: ignored
    text = "state connected abc eyJ-not-a-jwt pk_other"
    assert logs.redact(text) == text


def test_settings_repr_masks_key() -> None:
    assert "supersecret" not in repr(Settings(api_key="pk_live_supersecret1234"))


def test_env_isolation_of_os_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`load_settings(argv)` without env reads os.environ."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("WESPOKE_ASSISTANT_ID", "from-os-environ")
    assert load_settings([])[1].assistant_id == "from-os-environ"
