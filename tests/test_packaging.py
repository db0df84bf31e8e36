"""The package as a user gets it: the wheel built from this tree (`python -m build`), installed with
pipx into empty temporary homes, and the installed `wespoke-tui` run. Also: the wheel's licence
metadata and package data, and no big file in the repository.

Building and installing fetch setuptools and the dependencies from PyPI, so the tests that do are
marked `packaging` and `stack` (not in the `-m "not stack"` inner loop). By hand:
    .venv/bin/python -m pytest tests/test_packaging.py -q
"""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import wespoke_tui

REPO = Path(__file__).resolve().parents[1]
MAX_FILE_BYTES = 1_000_000


def repository_files() -> list[Path]:
    """The files git tracks, plus the new ones it does not ignore (what a commit would hold), that
    exist in the working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    return [REPO / name for name in sorted(set(listed)) if name and (REPO / name).is_file()]


@dataclass
class Installed:
    wheel: Path
    bin_dir: Path
    env: dict[str, str]

    def run(self, command: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, shell=True, input=stdin, capture_output=True, text=True,
                              env=self.env, cwd=self.env["HOME"], timeout=60)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The wheel of a copy of this tree (the files a commit would hold), installed with pipx."""
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "source"
    for path in repository_files():
        target = source / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    dist = tmp / "dist"
    build = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("*.whl")

    home, pipx_home, bin_dir = tmp / "home", tmp / "pipx-home", tmp / "pipx-bin"
    for d in (home, pipx_home, bin_dir):
        d.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WESPOKE_", "PIPX_", "VIRTUAL_ENV", "PYTHON", "XDG_", "LC_"))}
    env.update(HOME=str(home), PIPX_HOME=str(pipx_home), PIPX_BIN_DIR=str(bin_dir),
               PIPX_MAN_DIR=str(tmp / "pipx-man"), LANG="C.UTF-8",
               PATH=os.pathsep.join([str(bin_dir), "/usr/local/bin", "/usr/bin", "/bin"]))
    pipx = subprocess.run([sys.executable, "-m", "pipx", "install", str(wheel)],
                          capture_output=True, text=True, env=env, cwd=home, timeout=600)
    assert pipx.returncode == 0, pipx.stdout[-3000:] + pipx.stderr[-3000:]
    assert (bin_dir / "wespoke-tui").exists(), sorted(p.name for p in bin_dir.iterdir())
    yield Installed(wheel, bin_dir, env)


@pytest.mark.packaging
@pytest.mark.stack
@pytest.mark.timeout(900)
def test_the_installed_command_says_the_package_version(installed: Installed) -> None:
    proc = installed.run("wespoke-tui --version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wespoke-tui {wespoke_tui.__version__}"
    assert shutil.which("wespoke-tui", path=installed.env["PATH"]) == str(installed.bin_dir / "wespoke-tui")


@pytest.mark.packaging
@pytest.mark.stack
@pytest.mark.timeout(900)
def test_the_installed_command_chats_with_the_demo(installed: Installed) -> None:
    proc = installed.run("printf 'hi\\n' | wespoke-tui chat --no-tui --demo")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert "You: hi" in lines and "Assistant: You wrote: hi" in lines, proc.stdout + proc.stderr
    assert lines.index("Assistant: You wrote: hi") == lines.index("You: hi") + 1
    assert "Traceback" not in proc.stderr


@pytest.mark.packaging
@pytest.mark.stack
@pytest.mark.timeout(900)
def test_the_wheel_carries_the_licence_and_the_package_data(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(wheel.read(metadata_name).decode())
        dist_info = metadata_name.rsplit("/", 1)[0]
        licence = wheel.read(f"{dist_info}/licenses/LICENSE").decode()
    assert metadata["Name"] == "wespoke-tui"
    assert metadata["Version"] == wespoke_tui.__version__
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert licence == (REPO / "LICENSE").read_text()
    assert "Copyright (c) 2026 The wespoke-tui authors" in licence
    assert metadata["Requires-Python"] == ">=3.11"
    classifiers = metadata.get_all("Classifier")
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert not any(c.startswith("License ::") for c in classifiers)  # PEP 639: the expression says it

    package = REPO / "wespoke_tui"
    data = sorted(p for pattern in ("ui/*.tcss", "assets/*") for p in package.glob(pattern) if p.is_file())
    assert data, "no package data found in the tree"
    missing = [str(p.relative_to(REPO)) for p in data if p.relative_to(REPO).as_posix() not in names]
    assert missing == []
    modules = sorted(p.relative_to(REPO).as_posix() for p in package.rglob("*.py"))
    assert [m for m in modules if m not in names] == []
    assert not [n for n in names if n.startswith(("tests/", "scripts/"))]


def test_no_file_in_the_repository_is_over_1_mb() -> None:
    big = {str(p.relative_to(REPO)): p.stat().st_size for p in repository_files()
           if p.stat().st_size > MAX_FILE_BYTES}
    assert big == {}


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "wespoke_tui.__version__"}
