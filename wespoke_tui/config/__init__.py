"""Settings from flags > environment (`WESPOKE_*`) > TOML config file > defaults.

`load_settings(argv, env)` parses the command line, reads the config file, resolves every
option and validates it, raising `ConfigError(option, message)` for anything wrong so the
caller can print one line and exit 2 before any request is sent. `save_config` merges keys
into the config file (the TUI's setup screen and remembered microphone consent).

Only standard-library modules are imported here: `wespoke-tui --help` must stay fast.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import textwrap
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wespoke_tui import __version__
from wespoke_tui.settings import DEFAULT_API_URL, KEY_PREFIXES, Settings, mask_key

PROG = "wespoke-tui"

# Commands `load_settings` returns.
CMD_TUI = "tui"
CMD_HEADLESS = "headless"
CMD_DEVICES = "devices"
CMD_TEST = "test"
MAX_PARALLEL = 8

LANGS = ("tr", "en")
LOG_LEVELS = ("debug", "info", "warning", "error")
JITTER_MIN_MS, JITTER_MAX_MS = 20, 500
JITTER_DEFAULT_MS = 40  # WebRTC's NetEQ absorbs the network; this covers frame phase and scheduling
# Where the dest of an option given after the subcommand lives, so both positions survive.
_SUB = "sub__"


class ConfigError(Exception):
    """A wrong setting: `option` names where it came from, `message` says what is wrong."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


@dataclass(frozen=True, slots=True)
class HeadlessOptions:
    """What `wespoke-tui call --no-tui` does besides the shared settings."""

    input_wav: Path | None = None
    output_wav: Path | None = None
    transcript: Path | None = None
    duration: float | None = None
    json: bool = False  # JSON records on stdout instead of text lines
    # `wespoke-tui test`
    scenario: Path | None = None
    junit: Path | None = None
    report_json: Path | None = None
    repeat: int = 1
    parallel: int = 1


# --------------------------------------------------------------------------- options table


@dataclass(frozen=True, slots=True)
class _Option:
    key: str  # argparse dest and config-file key
    flag: str
    help: str
    env: str | None = None
    metavar: str | None = None  # None: a store_true switch
    repeat: bool = False  # action="append"
    file_type: str = "str"  # what the config file may hold: str | bool | int | device | table


_OPTIONS: tuple[_Option, ...] = (
    _Option("api_key", "--api-key", "Wespoke public embed key (pk_live_… or pk_test_…).",
            "WESPOKE_API_KEY", "KEY"),
    _Option("assistant_id", "--assistant-id", "Assistant to call.", "WESPOKE_ASSISTANT_ID", "ID"),
    _Option("api_url", "--api-url", f"Wespoke API base URL (default {DEFAULT_API_URL}); "
            "plain http:// only for localhost.", "WESPOKE_API_URL", "URL"),
    _Option("origin", "--origin", "Origin header to send, one of the key's allowed sites, "
            "e.g. https://example.com.", "WESPOKE_ORIGIN", "ORIGIN"),
    _Option("user_id", "--user-id", "metadata.userId of the call.", "WESPOKE_USER_ID", "ID"),
    _Option("session_id", "--session-id", "metadata.sessionId of the call.",
            "WESPOKE_SESSION_ID", "ID"),
    _Option("metadata", "--metadata", "Extra call metadata; repeatable. VALUE is JSON if it "
            "parses, else a string.", None, "KEY=VALUE", repeat=True, file_type="table"),
    _Option("first_message", "--first-message", "Override the assistant's first message.",
            "WESPOKE_FIRST_MESSAGE", "TEXT"),
    _Option("system_prompt", "--system-prompt", "Override the system prompt.",
            "WESPOKE_SYSTEM_PROMPT", "TEXT"),
    _Option("system_prompt_file", "--system-prompt-file", "Read the system prompt override "
            "from a UTF-8 file (not with --system-prompt).", "WESPOKE_SYSTEM_PROMPT_FILE", "PATH"),
    _Option("variables", "--var", "A variableValues entry of the assistant; repeatable.",
            None, "NAME=VALUE", repeat=True, file_type="table"),
    _Option("overrides", "--override", "Any other assistantOverrides key, VALUE in JSON; "
            "repeatable (e.g. --override recordingEnabled=false).",
            None, "KEY=JSON", repeat=True, file_type="table"),
    _Option("lang", "--lang", "Language of the interface and messages: tr or en "
            "(default from LC_ALL / LC_MESSAGES / LANG).", "WESPOKE_LANG", "{tr,en}"),
    _Option("input_device", "--input-device", "Microphone: device index or part of its name.",
            "WESPOKE_INPUT_DEVICE", "DEVICE", file_type="device"),
    _Option("output_device", "--output-device", "Speaker: device index or part of its name.",
            "WESPOKE_OUTPUT_DEVICE", "DEVICE", file_type="device"),
    _Option("no_aec", "--no-aec", "Turn off echo cancellation.", "WESPOKE_NO_AEC",
            file_type="bool"),
    _Option("no_ns", "--no-ns", "Turn off noise suppression.", "WESPOKE_NO_NS", file_type="bool"),
    _Option("no_agc", "--no-agc", "Turn off automatic gain control.", "WESPOKE_NO_AGC",
            file_type="bool"),
    _Option("jitter_ms", "--jitter-ms", f"Playback jitter buffer target in ms "
            f"({JITTER_MIN_MS}-{JITTER_MAX_MS}, default {JITTER_DEFAULT_MS}; it grows by itself "
            f"after an underrun).", "WESPOKE_JITTER_MS", "N",
            file_type="int"),
    _Option("log_file", "--log-file", "Write a log to this file (nothing is logged otherwise).",
            "WESPOKE_LOG_FILE", "PATH"),
    _Option("log_level", "--log-level", "Log level: debug, info, warning or error "
            "(default warning).", "WESPOKE_LOG_LEVEL", "{debug,info,warning,error}"),
    _Option("demo", "--demo", "Talk to a built-in offline echo assistant: no key, no network.",
            "WESPOKE_DEMO", file_type="bool"),
    _Option("chat", "--chat", "Text chat with the assistant instead of a voice call: no "
            "microphone, no speaker (the app switches between the two with t).",
            "WESPOKE_CHAT", file_type="bool"),
    _Option("call_on_start", "--call-on-start", "Start the call as soon as the app opens.",
            "WESPOKE_CALL_ON_START", file_type="bool"),
    _Option("record", "--record", "Record every call into DIR: a stereo WAV (you left, the assistant "
            "right), the transcript (.jsonl and .txt) and a summary (.json), written as the call "
            "goes. Without it, r in the app records into ~/.local/share/wespoke-tui/recordings.",
            "WESPOKE_RECORD", "DIR"),
    _Option("delete_after", "--delete-after", "After each call, delete its record from the call "
            "history (only once the call has ended; deleting never ends a call).",
            "WESPOKE_DELETE_AFTER", file_type="bool"),
    _Option("config", "--config", "Config file (default $XDG_CONFIG_HOME/wespoke-tui/config.toml).",
            "WESPOKE_CONFIG", "PATH"),
)
_BY_KEY = {o.key: o for o in _OPTIONS}
# Keys only the config file holds (written by the TUI).
_FILE_ONLY_TYPES = {"mic_consent_given": "bool"}
CONFIG_KEYS: frozenset[str] = frozenset(
    {o.key for o in _OPTIONS if o.key != "config"} | set(_FILE_ONLY_TYPES)
)

_EPILOG = f"""\
commands:
  (none)                 open the terminal app
  call                   open the app and start a call at once;
                         with --no-tui: a headless call on WAV files or sound devices
  chat                   open the app in text chat and start it at once;
                         with --no-tui: a chat on stdin and stdout (one message a line)
  test SCENARIO.toml     run a scenario: scripted multi-turn calls, each answer
                         checked and timed; --junit and --json reports for CI
  devices                list sound devices

Every option works before or after the command. Settings come from flags, then
environment variables, then the config file, then defaults.

environment:
{textwrap.fill(", ".join(o.env for o in _OPTIONS if o.env), 78,
               initial_indent="  ", subsequent_indent="  ")}
  (switches such as WESPOKE_NO_AEC take 1/0, true/false, yes/no)

config file (TOML; keys are the option names in snake_case):
  api_key = "pk_live_…"
  assistant_id = "…"
  origin = "https://example.com"
  lang = "tr"
  jitter_ms = 80
  no_aec = false
  [metadata]
  customData = "…"
  [variables]
  name = "Ayşe"
  [overrides]
  recordingEnabled = false
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are `ConfigError`s: one line, no usage dump, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _argparse_error(message)


def _argparse_error(message: str) -> ConfigError:
    if message.startswith("argument "):
        option, _, rest = message[len("argument "):].partition(": ")
        return ConfigError(option.split("/")[-1], rest)
    if message.startswith("unrecognized arguments: "):
        words = message[len("unrecognized arguments: "):]
        return ConfigError(words.split()[0], f"unknown argument(s): {words} (see {PROG} --help)")
    return ConfigError(PROG, message)


def _add_common_options(parser: argparse.ArgumentParser, dest_prefix: str) -> None:
    group = parser.add_argument_group("options (before or after the command)")
    group.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    for opt in _OPTIONS:
        kwargs: dict[str, Any] = {"dest": dest_prefix + opt.key, "help": opt.help,
                                  "default": argparse.SUPPRESS}
        if opt.env:
            kwargs["help"] += f" [env {opt.env}]"
        if opt.metavar is None:
            kwargs["action"] = "store_true"
        else:
            kwargs["metavar"] = opt.metavar
            kwargs["action"] = "append" if opt.repeat else "store"
        group.add_argument(opt.flag, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Talk to a Wespoke AI voice assistant from your terminal.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    _add_common_options(parser, "")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    call = commands.add_parser(
        "call", help="start a call at once (headless with --no-tui)", allow_abbrev=False,
        description="Start a call at once in the app, or headless with --no-tui.",
    )
    _add_common_options(call, _SUB)
    headless = call.add_argument_group("headless call (with --no-tui)")
    headless.add_argument("--no-tui", action="store_true", default=False,
                          help="Run the call without the app: print state changes and the "
                               "transcript; exit status 0 on a clean hang-up.")
    headless.add_argument("--input-wav", metavar="IN.wav", type=Path,
                          help="Send this WAV file instead of the microphone.")
    headless.add_argument("--output-wav", metavar="OUT.wav", type=Path,
                          help="Record the assistant's audio here instead of playing it.")
    headless.add_argument("--transcript", metavar="OUT.jsonl", type=Path,
                          help="Write the call's records here, one JSON object per line: "
                               "transcript lines, state changes, tool events, errors, metrics.")
    headless.add_argument("--json", action="store_true", default=None,
                          help="Print those records on stdout instead of text lines "
                               "(errors still go to stderr).")
    headless.add_argument("--duration", metavar="S",
                          help="Hang up after S seconds.")
    chat = commands.add_parser(
        "chat", help="start a text chat at once (on stdin/stdout with --no-tui)", allow_abbrev=False,
        description="Start a text chat at once in the app, or headless with --no-tui: each line "
                    "read from stdin is a message, each reply is printed when complete; the chat "
                    "ends at the end of input.",
    )
    _add_common_options(chat, _SUB)
    chat_headless = chat.add_argument_group("headless chat (with --no-tui)")
    chat_headless.add_argument("--no-tui", action="store_true", default=False,
                               help="Chat without the app, on stdin and stdout; exit status 0 "
                                    "when every message was answered.")
    chat_headless.add_argument("--transcript", metavar="OUT.jsonl", type=Path,
                               help="Write the chat's records here, one JSON object per line.")
    chat_headless.add_argument("--json", action="store_true", default=None,
                               help="Print those records on stdout instead of text lines.")
    chat_headless.add_argument("--duration", metavar="S", help="End the chat after S seconds.")
    test = commands.add_parser(
        "test", help="run a scenario file against the assistant", allow_abbrev=False,
        description="Run a scenario (TOML): each turn says a text (espeak-ng), a WAV or types a "
                    "text, waits for the answer, checks it and times it. Exit status 0 only when "
                    "every check passed.",
    )
    _add_common_options(test, _SUB)
    test.add_argument("scenario", metavar="SCENARIO.toml", type=Path, help="the scenario file")
    test.add_argument("--junit", metavar="REPORT.xml", type=Path, help="Write a JUnit XML report here.")
    test.add_argument("--json", dest="report_json", metavar="REPORT.json", type=Path,
                      help="Write a JSON report here.")
    test.add_argument("--repeat", metavar="N", default="1", help="Run the scenario N times (default 1).")
    test.add_argument("--parallel", metavar="N", default="1",
                      help=f"Run up to N calls at once (1-{MAX_PARALLEL}; each call uses credits).")
    devices = commands.add_parser("devices", help="list sound devices", allow_abbrev=False,
                                  description="List the sound devices.")
    _add_common_options(devices, _SUB)
    return parser


# --------------------------------------------------------------------------- config file


def default_recordings_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "wespoke-tui" / "recordings"


def default_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "wespoke-tui" / "config.toml"


# file_type → (does the value fit, what to call the type in an error)
_FILE_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "device": (lambda v: isinstance(v, (str, int)) and not isinstance(v, bool),
               "a device index or name"),
    "table": (lambda v: isinstance(v, dict), "a table"),
}


def _check_json_value(value: Any, where: str, path: Path) -> None:
    """TOML can hold dates, which JSON (the API body) cannot."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_json_value(v, f"{where}.{k}", path)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_json_value(v, f"{where}[{i}]", path)
    elif not isinstance(value, (str, int, float, bool)):
        raise ConfigError("--config", f"{path}: '{where}' must be a string, number, boolean, "
                                      "array or table")


def _check_file_types(data: dict[str, Any], path: Path) -> None:
    for key, value in data.items():
        if key not in CONFIG_KEYS:
            known = ", ".join(sorted(CONFIG_KEYS))
            raise ConfigError("--config", f"{path}: unknown key '{key}' (known keys: {known})")
        kind = _FILE_ONLY_TYPES.get(key) or _BY_KEY[key].file_type
        accepts, expected = _FILE_TYPES[kind]
        if not accepts(value):
            raise ConfigError("--config", f"{path}: '{key}' must be {expected}, "
                                          f"not {type(value).__name__}")
        if kind == "table":
            _check_json_value(value, key, path)
    for name, value in data.get("variables", {}).items():
        if not isinstance(value, str):
            raise ConfigError("--config", f"{path}: 'variables.{name}' must be a string")


def read_config(path: Path, *, required: bool) -> dict[str, Any]:
    """The config file's keys, checked; {} when an optional (default) file is absent."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError("--config", f"{path}: no such file") from None
        return {}
    except OSError as exc:
        raise ConfigError("--config", f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("--config", f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)".
        raise ConfigError("--config", f"{path}: invalid TOML: {exc}") from None
    _check_file_types(data, path)
    return data


def _toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else _toml_string(key)


def _toml_string(text: str) -> str:
    escapes = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
               "\f": "\\f", "\r": "\\r"}
    out = []
    for ch in text:
        if ch in escapes:
            out.append(escapes[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dump_toml(data: Mapping[str, Any]) -> str:
    """Top-level scalars first, then one [table] per dict; deeper values as inline TOML."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items()
             if not isinstance(v, dict)]
    for key, table in data.items():
        if isinstance(table, dict):
            lines.append("")
            lines.append(f"[{_toml_key(key)}]")
            lines.extend(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines).lstrip("\n") + "\n"


def save_config(path: Path | str, updates: Mapping[str, Any]) -> None:
    """Merge `updates` (a None value removes the key) into the config file, atomically, 0600.

    Raises ConfigError for an unknown key or wrongly typed value, or when the existing file is
    not valid TOML (it is left alone rather than overwritten), and OSError when it cannot write.
    """
    path = Path(path).expanduser()
    data = read_config(path, required=False)
    for key, value in updates.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    _check_file_types(data, path)
    text = dump_toml(data)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- resolution


def detect_lang(env: Mapping[str, str]) -> str:
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
        opt = _BY_KEY[key]
        if key in self.flags:
            return self.flags[key], opt.flag
        if opt.env and self.env.get(opt.env):
            return self.env[opt.env], f"{opt.flag} (from {opt.env})"
        if key in self.file:
            return self.file[key], f"{opt.flag} (from {self.file_path})"
        return None

    def switch(self, key: str) -> bool:
        picked = self.pick(key)
        if picked is None:
            return False
        value, label = picked
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(label, f"'{value}' is not a switch value (use 1/0, true/false)")


def _merge_flags(ns: argparse.Namespace) -> dict[str, Any]:
    """Join the values given before and after the subcommand: later wins, lists concatenate."""
    flags: dict[str, Any] = {}
    for opt in _OPTIONS:
        before = getattr(ns, opt.key, None)
        after = getattr(ns, _SUB + opt.key, None)
        if opt.repeat:
            if before is not None or after is not None:
                flags[opt.key] = (before or []) + (after or [])
        elif after is not None:
            flags[opt.key] = after
        elif before is not None:
            flags[opt.key] = before
    return flags


def _split_pair(item: str, option: str, what: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    name = name.strip()
    if not sep or not name:
        expected = next(o.metavar for o in _OPTIONS if o.flag == option)
        raise ConfigError(option, f"'{item}' is not {what} (expected {expected})")
    return name, value


def _parse_metadata_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _resolve_table(src: _Sources, key: str, parse_item: Callable[[str], tuple[str, Any]]
                   ) -> dict[str, Any]:
    """File table, overlaid per key by the flags (tables have no environment variable)."""
    merged: dict[str, Any] = dict(src.file.get(key, {}))
    for item in src.flags.get(key, []):
        name, value = parse_item(item)
        merged[name] = value
    return merged


def _metadata_item(item: str) -> tuple[str, Any]:
    name, value = _split_pair(item, "--metadata", "a metadata entry")
    return name, _parse_metadata_value(value)


def _var_item(item: str) -> tuple[str, Any]:
    return _split_pair(item, "--var", "a variable")


def _override_item(item: str) -> tuple[str, Any]:
    name, value = _split_pair(item, "--override", "an override")
    try:
        return name, json.loads(value)
    except ValueError as exc:
        raise ConfigError("--override", f"{name}: value is not valid JSON ({exc})") from None


def validate_api_key(key: str, option: str = "--api-key") -> str:
    key = key.strip()
    if not key.startswith(KEY_PREFIXES) or len(key) <= len("pk_live_"):
        raise ConfigError(option, f"'{mask_key(key)}' is not a Wespoke embed key: it must start "
                                  "with pk_live_ or pk_test_")
    if not all(c.isascii() and c.isprintable() and not c.isspace() for c in key):
        raise ConfigError(option, f"'{mask_key(key)}' contains spaces or characters a key "
                                  "cannot have")
    return key


def _is_loopback(host: str) -> bool:
    import ipaddress  # only needed for http:// URLs

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_api_url(url: str, option: str = "--api-url") -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigError(option, f"'{url}' is not a valid URL ({exc})") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(option, f"'{url}' is not an http(s) URL like {DEFAULT_API_URL}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(option, f"'{url}' uses plain http:// to a non-local host; use https:// "
                                  "(http:// only for localhost, 127.0.0.1 or ::1)")
    if parts.query or parts.fragment:
        raise ConfigError(option, f"'{url}' must not have a query or fragment")
    return url.rstrip("/")


def validate_origin(origin: str, option: str = "--origin") -> str:
    origin = origin.strip().rstrip("/")
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018
    except ValueError:
        parts = None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or parts.path or parts.query or parts.fragment or parts.username):
        raise ConfigError(option, f"'{origin}' is not an origin: use scheme://host[:port], "
                                  "like https://example.com")
    return origin


def _resolve_lang(src: _Sources) -> str:
    picked = src.pick("lang")
    if picked is None:
        return detect_lang(src.env)
    value, label = picked
    lang = str(value).strip().lower()
    if lang not in LANGS:
        raise ConfigError(label, f"'{value}' is not a supported language (choose tr or en)")
    return lang


def _resolve_jitter(src: _Sources) -> int:
    picked = src.pick("jitter_ms")
    if picked is None:
        return JITTER_DEFAULT_MS
    value, label = picked
    try:
        ms = value if isinstance(value, int) else int(str(value).strip())
    except ValueError:
        raise ConfigError(label, f"'{value}' is not a whole number of milliseconds") from None
    if not JITTER_MIN_MS <= ms <= JITTER_MAX_MS:
        raise ConfigError(label, f"{ms} is out of range ({JITTER_MIN_MS}-{JITTER_MAX_MS} ms)")
    return ms


def _resolve_log_level(src: _Sources) -> str:
    picked = src.pick("log_level")
    if picked is None:
        return "WARNING"
    value, label = picked
    level = str(value).strip().lower()
    if level not in LOG_LEVELS:
        raise ConfigError(label, f"'{value}' is not a log level (choose "
                                 f"{', '.join(LOG_LEVELS)})")
    return level.upper()


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
         if (o := _BY_KEY[k]).env and src.env.get(o.env)},
        src.file,
    ]
    for level in levels:
        has_text, has_file = "system_prompt" in level, "system_prompt_file" in level
        if has_text and has_file:
            raise ConfigError("--system-prompt-file", "cannot be used together with "
                                                      "--system-prompt")
        if has_text:
            return src.pick("system_prompt")[0]  # type: ignore[index]
        if has_file:
            value, label = src.pick("system_prompt_file")  # type: ignore[misc]
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


def _headless_options(ns: argparse.Namespace, headless: bool) -> HeadlessOptions:
    given = [flag for flag, dest in (("--input-wav", "input_wav"), ("--output-wav", "output_wav"),
                                     ("--transcript", "transcript"), ("--duration", "duration"),
                                     ("--json", "json"))
             if getattr(ns, dest, None) is not None]
    if given and not headless:
        raise ConfigError(given[0], "only works with 'call --no-tui' or 'chat --no-tui'")
    if not headless:
        return HeadlessOptions()
    duration: float | None = None
    if getattr(ns, "duration", None) is not None:
        try:
            duration = float(ns.duration)
        except ValueError:
            raise ConfigError("--duration", f"'{ns.duration}' is not a number of seconds") from None
        if not 0 < duration < float("inf"):
            raise ConfigError("--duration", f"{ns.duration} must be more than 0 seconds")
    input_wav: Path | None = getattr(ns, "input_wav", None)
    if input_wav is not None and not input_wav.is_file():
        raise ConfigError("--input-wav", f"{input_wav}: no such file")
    for option, out in (("--output-wav", getattr(ns, "output_wav", None)),
                        ("--transcript", getattr(ns, "transcript", None))):
        if out is not None and not out.parent.is_dir():
            raise ConfigError(option, f"{out}: folder {out.parent} does not exist")
    return HeadlessOptions(input_wav=input_wav, output_wav=getattr(ns, "output_wav", None),
                           transcript=getattr(ns, "transcript", None), duration=duration,
                           json=bool(getattr(ns, "json", None)))


def _count(value: str, option: str, high: int) -> int:
    try:
        count = int(value)
    except ValueError:
        raise ConfigError(option, f"'{value}' is not a whole number") from None
    if not 1 <= count <= high:
        raise ConfigError(option, f"{count} must be from 1 to {high}")
    return count


def _test_options(ns: argparse.Namespace) -> HeadlessOptions:
    scenario: Path = ns.scenario
    if not scenario.is_file():
        raise ConfigError(str(scenario), "no such scenario file")
    for option, out in (("--junit", ns.junit), ("--json", ns.report_json)):
        if out is not None and not out.parent.is_dir():
            raise ConfigError(option, f"{out}: folder {out.parent} does not exist")
    return HeadlessOptions(scenario=scenario, junit=ns.junit, report_json=ns.report_json,
                           repeat=_count(ns.repeat, "--repeat", 1000), parallel=_count(ns.parallel, "--parallel", MAX_PARALLEL))


def load_settings(argv: Sequence[str], env: Mapping[str, str] | None = None
                  ) -> tuple[str, Settings, HeadlessOptions]:
    """Parse and validate; returns (CMD_TUI | CMD_HEADLESS | CMD_DEVICES, settings, options).

    `--help` and `--version` print and raise SystemExit(0) as argparse does.
    """
    env = os.environ if env is None else env
    ns = build_parser().parse_args(list(argv))
    flags = _merge_flags(ns)
    subcommand = getattr(ns, "command", None)
    headless = subcommand in ("call", "chat") and bool(getattr(ns, "no_tui", False))
    command = {None: CMD_TUI, "call": CMD_HEADLESS if headless else CMD_TUI,
               "chat": CMD_HEADLESS if headless else CMD_TUI, "devices": CMD_DEVICES,
               "test": CMD_TEST}[subcommand]

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
    settings.metadata = _resolve_table(src, "metadata", _metadata_item)
    settings.variables = _resolve_table(src, "variables", _var_item)
    settings.overrides = _resolve_table(src, "overrides", _override_item)
    settings.first_message = _resolve_str(src, "first_message")
    settings.system_prompt = _resolve_system_prompt(src)
    settings.lang = _resolve_lang(src)  # type: ignore[assignment]
    settings.input_device = _resolve_str(src, "input_device")
    settings.output_device = _resolve_str(src, "output_device")
    settings.aec = not src.switch("no_aec")
    settings.noise_suppression = not src.switch("no_ns")
    settings.auto_gain = not src.switch("no_agc")
    settings.jitter_buffer_ms = _resolve_jitter(src)
    if picked := src.pick("log_file"):
        settings.log_file = _path_from(str(picked[0]), picked[1], src)
    settings.log_level = _resolve_log_level(src)
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

    options = _test_options(ns) if command == CMD_TEST else _headless_options(ns, command == CMD_HEADLESS)
    if command == CMD_HEADLESS and settings.chat:
        for flag, given in (("--input-wav", options.input_wav), ("--output-wav", options.output_wav)):
            if given is not None:
                raise ConfigError(flag, "a text chat has no audio (leave out --chat, or use 'call')")
        if "record" in src.flags:
            raise ConfigError("--record", "a text chat is not recorded; --transcript FILE keeps it")
    if command == CMD_TEST and settings.demo:
        raise ConfigError("--demo", "a scenario tests an assistant: give --api-key and --assistant-id")
    if command in (CMD_HEADLESS, CMD_TEST) and not settings.demo:
        # The TUI asks for these on its setup screen; a headless call cannot.
        if not settings.api_key:
            raise ConfigError("--api-key", f"a {'chat' if settings.chat else 'call'} needs an embed "
                                           "key (--api-key or WESPOKE_API_KEY), or use --demo")
        if not settings.assistant_id:
            raise ConfigError("--assistant-id", f"a {'chat' if settings.chat else 'call'} needs an "
                                                "assistant (--assistant-id or WESPOKE_ASSISTANT_ID), "
                                                "or use --demo")
    return command, settings, options
