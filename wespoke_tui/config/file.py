"""The TOML config file: reading it with its keys checked, writing it back (where it is on
each OS: `paths.py`, re-exported here).

`save_config` merges keys into the file (the TUI's setup screen and remembered microphone
consent): atomically, never over a file it cannot read as TOML, and private: mode 0600 on
Linux and macOS; Windows has no modes, the file keeps the permissions it inherits from the
user's profile folder (the user, SYSTEM and Administrators).
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from wespoke_tui.config.options import BY_KEY, CONFIG_KEYS, FILE_ONLY_TYPES
from wespoke_tui.config.validation import ConfigError

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
        kind = FILE_ONLY_TYPES.get(key) or BY_KEY[key].file_type
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
    """Merge `updates` (a None value removes the key) into the config file, atomically, 0600
    (on Windows chmod only sets the read-only flag, which 0600 leaves off: the ACL inherited from
    the profile folder protects the file).

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
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
