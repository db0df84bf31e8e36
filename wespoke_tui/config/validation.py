"""Value checks, each wrong value a `ConfigError(option, message)` the user reads as one line.

`option` is the label of where the value came from (`--jitter-ms (from WESPOKE_JITTER_MS)`),
so every check takes it from its caller.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import urlsplit

from wespoke_tui.config.options import AUDIO_ENGINES, JITTER_MAX_MS, JITTER_MIN_MS, LANGS, LOG_LEVELS, OPTIONS
from wespoke_tui.settings import DEFAULT_API_URL, KEY_PREFIXES, mask_key

if TYPE_CHECKING:
    from wespoke_tui.errors import Lang


class ConfigError(Exception):
    """A wrong setting: `option` names where it came from, `message` says what is wrong."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


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


def _is_lang(value: str) -> TypeGuard[Lang]:
    return value in LANGS


def validate_lang(value: Any, label: str) -> Lang:
    lang = str(value).strip().lower()
    if not _is_lang(lang):
        raise ConfigError(label, f"'{value}' is not a supported language (choose tr or en)")
    return lang


def validate_audio_engine(value: Any, label: str) -> str:
    engine = str(value).strip().lower()
    if engine not in AUDIO_ENGINES:
        raise ConfigError(label, f"'{value}' is not an audio engine (choose native or python)")
    return engine


def validate_jitter(value: Any, label: str) -> int:
    try:
        ms = value if isinstance(value, int) else int(str(value).strip())
    except ValueError:
        raise ConfigError(label, f"'{value}' is not a whole number of milliseconds") from None
    if not JITTER_MIN_MS <= ms <= JITTER_MAX_MS:
        raise ConfigError(label, f"{ms} is out of range ({JITTER_MIN_MS}-{JITTER_MAX_MS} ms)")
    return ms


def validate_log_level(value: Any, label: str) -> str:
    level = str(value).strip().lower()
    if level not in LOG_LEVELS:
        raise ConfigError(label, f"'{value}' is not a log level (choose "
                                 f"{', '.join(LOG_LEVELS)})")
    return level.upper()


def validate_switch(value: Any, label: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(label, f"'{value}' is not a switch value (use 1/0, true/false)")


def validate_count(value: str, option: str, high: int) -> int:
    try:
        count = int(value)
    except ValueError:
        raise ConfigError(option, f"'{value}' is not a whole number") from None
    if not 1 <= count <= high:
        raise ConfigError(option, f"{count} must be from 1 to {high}")
    return count


# --------------------------------------------------------------------------- NAME=VALUE flags


def _split_pair(item: str, option: str, what: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    name = name.strip()
    if not sep or not name:
        expected = next(o.metavar for o in OPTIONS if o.flag == option)
        raise ConfigError(option, f"'{item}' is not {what} (expected {expected})")
    return name, value


def _parse_metadata_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def metadata_item(item: str) -> tuple[str, Any]:
    name, value = _split_pair(item, "--metadata", "a metadata entry")
    return name, _parse_metadata_value(value)


def var_item(item: str) -> tuple[str, Any]:
    return _split_pair(item, "--var", "a variable")


def override_item(item: str) -> tuple[str, Any]:
    name, value = _split_pair(item, "--override", "an override")
    try:
        return name, json.loads(value)
    except ValueError as exc:
        raise ConfigError("--override", f"{name}: value is not valid JSON ({exc})") from None
