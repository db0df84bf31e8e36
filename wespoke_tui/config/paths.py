"""Where the app keeps its files on each OS: the config file and the recordings folder.

The rule this module keeps:

- Linux and every other XDG system: the XDG base directories, read from the `env` given
  ($XDG_CONFIG_HOME or ~/.config, $XDG_DATA_HOME or ~/.local/share; a relative value is
  ignored, as the spec says), as platformdirs' Unix answer would be.
- macOS: platformdirs' place, ~/Library/Application Support/wespoke-tui, unless XDG_CONFIG_HOME
  / XDG_DATA_HOME is set (newer platformdirs releases honour them there too; checking them here
  keeps the answer the same whatever version is installed).
- Windows: platformdirs' non-roaming place, %LOCALAPPDATA%\\wespoke-tui: the config names this
  machine's sound devices and recordings are large, so neither follows a roaming profile.
- A config file an older version left at the XDG place (~/.config/wespoke-tui/config.toml on
  every OS) is read, and saved back to, while the new place holds none.

platformdirs is imported only when a macOS or Windows path is asked for: never by `--help`,
never on Linux. Each function takes `dirs`, platformdirs' object of the OS (`system_dirs()`,
the default) or None for an XDG system, so that tests can hand it the macOS or Windows one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

APP = "wespoke-tui"
CONFIG_NAME = "config.toml"
RECORDINGS = "recordings"

THIS_SYSTEM: Any = object()
"""The default of `dirs`: platformdirs' object of the OS this runs on (see `system_dirs`)."""


def system_dirs(platform: str | None = None) -> Any:
    """platformdirs' directories of macOS or Windows (`platform` as in sys.platform), or None
    for the XDG systems (Linux, the BSDs), whose places come from the environment given."""
    platform = sys.platform if platform is None else platform
    if platform == "darwin":
        from platformdirs.macos import MacOS

        return MacOS(APP, appauthor=False)
    if platform == "win32":
        from platformdirs.windows import Windows

        return Windows(APP, appauthor=False, roaming=False)
    return None


def _is_windows(dirs: Any) -> bool:
    # Not loaded means `dirs` cannot be one: no import for the other systems' sake.
    windows = sys.modules.get("platformdirs.windows")
    return windows is not None and isinstance(dirs, windows.Windows)


def _xdg_set(env: Mapping[str, str], name: str) -> Path | None:
    base = env.get(name) or ""
    return Path(base) if base and Path(base).is_absolute() else None


def _app_dir(env: Mapping[str, str], dirs: Any, xdg_name: str, xdg_fallback: str,
             attribute: str) -> Path:
    if dirs is THIS_SYSTEM:
        dirs = system_dirs()
    xdg = _xdg_set(env, xdg_name)
    if dirs is None:
        return (xdg or Path.home() / xdg_fallback) / APP
    if xdg is not None and not _is_windows(dirs):
        return xdg / APP
    return Path(getattr(dirs, attribute))


def legacy_config_path(env: Mapping[str, str]) -> Path:
    """Where versions before the per-OS places kept the config file, on every OS."""
    return (_xdg_set(env, "XDG_CONFIG_HOME") or Path.home() / ".config") / APP / CONFIG_NAME


def default_config_path(env: Mapping[str, str], *, dirs: Any = THIS_SYSTEM) -> Path:
    """The config file used without --config: this OS's place, or the legacy file while only
    that one exists (so that saving writes back to the file that was read)."""
    path = _app_dir(env, dirs, "XDG_CONFIG_HOME", ".config", "user_config_dir") / CONFIG_NAME
    legacy = legacy_config_path(env)
    if path != legacy and not os.path.exists(path) and os.path.isfile(legacy):
        return legacy
    return path


def default_recordings_dir(env: Mapping[str, str], *, dirs: Any = THIS_SYSTEM) -> Path:
    """Where `r` in the app records without --record."""
    return _app_dir(env, dirs, "XDG_DATA_HOME", ".local/share", "user_data_dir") / RECORDINGS
