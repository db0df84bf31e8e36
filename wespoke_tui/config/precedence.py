"""Settings from flags > environment (`WESPOKE_*`) > TOML config file > defaults.

`load_settings(argv, env)` parses the command line, reads the config file, takes every option
from the highest source that sets it and validates it, raising `ConfigError(option, message)`
for anything wrong so the caller can print one line and exit 2 before any request is sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wespoke_tui.config.argv import build_parser, merge_flags
from wespoke_tui.config.commands import (
    CMD_HEADLESS,
    CMD_TEST,
    HeadlessOptions,
    check_command,
    command_of,
    headless_options,
    test_options,
)
from wespoke_tui.config.file import read_config
from wespoke_tui.config.options import BY_KEY, JITTER_DEFAULT_MS
from wespoke_tui.config.paths import default_config_path, default_recordings_dir
from wespoke_tui.config.validation import (
    ConfigError,
    metadata_item,
    override_item,
    validate_api_key,
    validate_api_url,
    validate_audio_engine,
    validate_jitter,
    validate_lang,
    validate_log_level,
    validate_origin,
    validate_switch,
    var_item,
)
from wespoke_tui.settings import AudioEngine, Settings

if TYPE_CHECKING:
    from wespoke_tui.errors import Lang


def detect_lang(env: Mapping[str, str]) -> Lang:
    """The first set of LC_ALL, LC_MESSAGES, LANG decides: tr* → tr, anything else → en."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return "tr" if value.lower().startswith("tr") else "en"
    return "en"


class _Sources:
    """Where each option's value comes from, highest precedence first."""

    def __init__(self, flags: dict[str, Any], env: Mapping[str, str],
                 file: dict[str, Any], file_path: Path) -> None:
        self.flags, self.env, self.file, self.file_path = flags, env, file, file_path

    def pick(self, key: str) -> tuple[Any, str] | None:
        """(value, label naming the option and its source), or None when nothing sets it."""
        opt = BY_KEY[key]
        if key in self.flags:
            return self.flags[key], opt.flag
        if opt.env and self.env.get(opt.env):
            return self.env[opt.env], f"{opt.flag} (from {opt.env})"
        if key in self.file:
            return self.file[key], f"{opt.flag} (from {self.file_path})"
        return None

    def switch(self, key: str) -> bool:
        picked = self.pick(key)
        return False if picked is None else validate_switch(*picked)


def _resolve_table(src: _Sources, key: str, parse_item: Callable[[str], tuple[str, Any]]
                   ) -> dict[str, Any]:
    """File table, overlaid per key by the flags (tables have no environment variable)."""
    merged: dict[str, Any] = dict(src.file.get(key, {}))
    for item in src.flags.get(key, []):
        name, value = parse_item(item)
        merged[name] = value
    return merged


def _path_from(value: str, label: str, src: _Sources) -> Path:
    """A path from the config file is relative to that file, others to the working dir."""
    path = Path(value).expanduser()
    if not path.is_absolute() and label.endswith(f"(from {src.file_path})"):
        path = src.file_path.parent / path
    return path


def _resolve_system_prompt(src: _Sources) -> str | None:
    # The highest-precedence level that sets either one decides; one level setting both is
    # ambiguous, so refused.
    levels: list[dict[str, Any]] = [
        src.flags,
        {k: src.env[o.env] for k in ("system_prompt", "system_prompt_file")
         if (o := BY_KEY[k]).env and src.env.get(o.env)},
        src.file,
    ]
    for level in levels:
        has_text, has_file = "system_prompt" in level, "system_prompt_file" in level
        if has_text and has_file:
            raise ConfigError("--system-prompt-file", "cannot be used together with "
                                                      "--system-prompt")
        if not (has_text or has_file):
            continue
        picked = src.pick("system_prompt" if has_text else "system_prompt_file")
        assert picked is not None, "this level sets it"
        value, label = picked
        if has_text:
            return str(value)
        path = _path_from(value, label, src)
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(label, f"{path}: not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(label, f"cannot read {path}: {exc.strerror or exc}") from None
    return None


def _resolve_str(src: _Sources, key: str) -> str | None:
    """A text option; a device index from the config file is an int, hence str()."""
    picked = src.pick(key)
    if picked is None:
        return None
    text = str(picked[0]).strip()
    return text or None


def load_settings(argv: Sequence[str], env: Mapping[str, str] | None = None
                  ) -> tuple[str, Settings, HeadlessOptions]:
    """Parse and validate; returns (CMD_TUI | CMD_HEADLESS | CMD_DEVICES, settings, options).

    `--help` and `--version` print and raise SystemExit(0) as argparse does.
    """
    env = os.environ if env is None else env
    ns = build_parser().parse_args(list(argv))
    flags = merge_flags(ns)
    subcommand = getattr(ns, "command", None)
    headless = subcommand in ("call", "chat") and bool(getattr(ns, "no_tui", False))
    command = command_of(subcommand, headless)

    if "config" in flags:
        config_path, required = Path(flags["config"]).expanduser(), True
    elif env.get("WESPOKE_CONFIG"):
        config_path, required = Path(env["WESPOKE_CONFIG"]).expanduser(), True
    else:
        config_path, required = default_config_path(env), False
    src = _Sources(flags, env, read_config(config_path, required=required), config_path)

    settings = Settings(config_path=config_path)
    if picked := src.pick("api_key"):
        settings.api_key = validate_api_key(str(picked[0]), picked[1])
    settings.assistant_id = _resolve_str(src, "assistant_id")
    if picked := src.pick("api_url"):
        settings.api_url = validate_api_url(str(picked[0]), picked[1])
    if picked := src.pick("origin"):
        settings.origin = validate_origin(str(picked[0]), picked[1])
    settings.user_id = _resolve_str(src, "user_id")
    settings.session_id = _resolve_str(src, "session_id")
    settings.metadata = _resolve_table(src, "metadata", metadata_item)
    settings.variables = _resolve_table(src, "variables", var_item)
    settings.overrides = _resolve_table(src, "overrides", override_item)
    settings.first_message = _resolve_str(src, "first_message")
    settings.system_prompt = _resolve_system_prompt(src)
    picked = src.pick("lang")
    settings.lang = validate_lang(*picked) if picked else detect_lang(src.env)
    settings.input_device = _resolve_str(src, "input_device")
    settings.output_device = _resolve_str(src, "output_device")
    picked = src.pick("audio_engine")
    settings.audio_engine = AudioEngine(validate_audio_engine(*picked)) if picked else AudioEngine.NATIVE
    settings.aec = not src.switch("no_aec")
    settings.noise_suppression = not src.switch("no_ns")
    settings.auto_gain = not src.switch("no_agc")
    picked = src.pick("jitter_ms")
    settings.jitter_buffer_ms = validate_jitter(*picked) if picked else JITTER_DEFAULT_MS
    if picked := src.pick("log_file"):
        settings.log_file = _path_from(str(picked[0]), picked[1], src)
    picked = src.pick("log_level")
    settings.log_level = validate_log_level(*picked) if picked else "WARNING"
    settings.demo = src.switch("demo")
    settings.chat = subcommand == "chat" or src.switch("chat")
    settings.call_on_start = subcommand in ("call", "chat") or src.switch("call_on_start")
    settings.delete_after = src.switch("delete_after")
    if picked := src.pick("record"):
        settings.record_dir = _path_from(str(picked[0]), picked[1], src)
        settings.record_calls = True
        if settings.record_dir.exists() and not settings.record_dir.is_dir():
            raise ConfigError(picked[1], f"{settings.record_dir} is not a folder")
    else:
        settings.record_dir = default_recordings_dir(env)
    settings.mic_consent_given = bool(src.file.get("mic_consent_given", False))

    options = test_options(ns) if command == CMD_TEST else headless_options(ns, command == CMD_HEADLESS)
    check_command(command, settings, options, record_flag="record" in src.flags)
    return command, settings, options
