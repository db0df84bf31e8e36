"""Where the config file and the recordings go on Linux, macOS and Windows.

Only Linux runs here, so each OS is simulated at its narrowest edge: platformdirs' own MacOS and
Windows classes, built as the app builds them, with the Windows shell's folder lookup
(`platformdirs.windows.get_win_folder`) answering as it does on a real machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path, PureWindowsPath

import platformdirs.windows
import pytest
from platformdirs.macos import MacOS
from platformdirs.windows import Windows

from wespoke_tui.config import load_settings, paths, save_config
from wespoke_tui.config.paths import (
    default_config_path,
    default_recordings_dir,
    legacy_config_path,
    system_dirs,
)

ROOT = Path(__file__).resolve().parents[1]
WINDOWS_FOLDERS = {
    "CSIDL_APPDATA": r"C:\Users\ana\AppData\Roaming",
    "CSIDL_LOCAL_APPDATA": r"C:\Users\ana\AppData\Local",
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh home, and no XDG variable in the process (recent platformdirs read them on macOS)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> Windows:
    """platformdirs' Windows directories, the shell answering for user ana."""
    monkeypatch.setattr(platformdirs.windows, "get_win_folder", WINDOWS_FOLDERS.__getitem__)
    return system_dirs("win32")


def as_windows(path: Path) -> PureWindowsPath:
    # platformdirs joins the app's name with this host's separator: compare as Windows would.
    return PureWindowsPath(str(path))


def test_linux_keeps_the_xdg_places_of_the_environment(home: Path) -> None:
    assert system_dirs("linux") is None
    env = {"XDG_CONFIG_HOME": "/x/conf", "XDG_DATA_HOME": "/x/data"}
    assert default_config_path(env, dirs=None) == Path("/x/conf/wespoke-tui/config.toml")
    assert default_recordings_dir(env, dirs=None) == Path("/x/data/wespoke-tui/recordings")
    assert default_config_path({}, dirs=None) == home / ".config" / "wespoke-tui" / "config.toml"
    assert default_recordings_dir({}, dirs=None) == home / ".local/share/wespoke-tui/recordings"
    relative = {"XDG_CONFIG_HOME": "conf", "XDG_DATA_HOME": "data"}  # invalid per the spec: ignored
    assert default_config_path(relative, dirs=None) == default_config_path({}, dirs=None)
    assert default_recordings_dir(relative, dirs=None) == default_recordings_dir({}, dirs=None)
    # This machine is Linux: the default `dirs` is the same.
    assert default_config_path(env) == default_config_path(env, dirs=None)


def test_each_system_gets_its_own_platformdirs_object(monkeypatch: pytest.MonkeyPatch) -> None:
    for platform, kind in (("darwin", MacOS), ("win32", Windows)):
        monkeypatch.setattr(sys, "platform", platform)
        dirs = system_dirs()
        assert type(dirs) is kind and dirs.appname == "wespoke-tui" and dirs.appauthor is False
    monkeypatch.setattr(sys, "platform", "freebsd14")
    assert system_dirs() is None


def test_macos_keeps_its_files_in_application_support(home: Path) -> None:
    macos = system_dirs("darwin")
    support = home / "Library" / "Application Support" / "wespoke-tui"
    assert default_config_path({}, dirs=macos) == support / "config.toml"
    assert default_recordings_dir({}, dirs=macos) == support / "recordings"
    # XDG variables still win there, as they did before and as recent platformdirs do.
    env = {"XDG_CONFIG_HOME": "/x/conf", "XDG_DATA_HOME": "/x/data"}
    assert default_config_path(env, dirs=macos) == Path("/x/conf/wespoke-tui/config.toml")
    assert default_recordings_dir(env, dirs=macos) == Path("/x/data/wespoke-tui/recordings")


def test_windows_keeps_its_files_in_local_appdata_not_roaming(home: Path, windows: Windows) -> None:
    assert windows.roaming is False
    local = PureWindowsPath(r"C:\Users\ana\AppData\Local\wespoke-tui")
    assert as_windows(default_config_path({}, dirs=windows)) == local / "config.toml"
    assert as_windows(default_recordings_dir({}, dirs=windows)) == local / "recordings"
    # XDG variables mean nothing on Windows.
    env = {"XDG_CONFIG_HOME": "/x/conf", "XDG_DATA_HOME": "/x/data"}
    assert as_windows(default_config_path(env, dirs=windows)) == local / "config.toml"
    assert as_windows(default_recordings_dir(env, dirs=windows)) == local / "recordings"


@pytest.mark.parametrize("system", ["darwin", "win32"])
def test_an_older_versions_config_is_read_and_saved_back_until_the_new_place_has_one(
    system: str, home: Path, windows: Windows, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dirs = windows if system == "win32" else system_dirs("darwin")
    monkeypatch.setattr(paths, "system_dirs", lambda platform=None: dirs)
    env = {"LANG": "C.UTF-8"}
    legacy = home / ".config" / "wespoke-tui" / "config.toml"
    assert legacy_config_path(env) == legacy
    new = default_config_path(env)
    assert new != legacy and default_config_path(env) == new, "nothing anywhere: the new place"

    legacy.parent.mkdir(parents=True)
    legacy.write_text('assistant_id = "asst_old"\n', encoding="utf-8")
    assert default_config_path(env) == legacy
    _, settings, _ = load_settings([], env)
    assert settings.config_path == legacy and settings.assistant_id == "asst_old"
    save_config(settings.config_path, {"input_device": "USB [Core Audio]"})  # as the app saves
    assert 'input_device = "USB [Core Audio]"' in legacy.read_text(encoding="utf-8")
    assert not os.path.exists(new)

    # Once the new place has a file, it is the one (the old one is left alone).
    if system == "darwin":
        save_config(new, {"assistant_id": "asst_new"})
        _, settings, _ = load_settings([], env)
        assert settings.config_path == new and settings.assistant_id == "asst_new"


def test_the_legacy_place_honours_xdg_config_home(tmp_path: Path, home: Path) -> None:
    macos = system_dirs("darwin")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    legacy = tmp_path / "xdg" / "wespoke-tui" / "config.toml"
    assert legacy_config_path(env) == legacy
    legacy.parent.mkdir(parents=True)
    legacy.write_text("", encoding="utf-8")
    assert default_config_path(env, dirs=macos) == legacy


def test_help_says_each_systems_places_and_loads_no_platformdirs(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "wespoke_tui", "--help"],
                          env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0
    assert "platformdirs" not in proc.stderr  # -X importtime lists every module loaded
    text = " ".join(re.sub(r"-\n\s+", "-", proc.stdout).split())  # argparse wraps after hyphens
    for words in ("$XDG_CONFIG_HOME/wespoke-tui/config.toml",
                  "~/Library/Application Support/wespoke-tui/config.toml",
                  r"%LOCALAPPDATA%\wespoke-tui\config.toml", "mode 0600",
                  "profile folder's permissions", "~/Library/Application Support/wespoke-tui/recordings",
                  r"%LOCALAPPDATA%\wespoke-tui\recordings", "~/.config/wespoke-tui"):
        assert words in text, words
    # Settings on Linux need no platformdirs either.
    code = ("import sys; from wespoke_tui.config import load_settings; load_settings([], {}); "
            "print('platformdirs' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.stdout.strip() == "False", proc.stderr
