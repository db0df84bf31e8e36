"""The layers hold, read from the source: api → session → audio → ui in one direction.

Every `import` of every module counts, the ones inside functions too (a lazy import is still a
dependency); imports under `if TYPE_CHECKING:` count for the layer rules but not for cycles,
since they never run. README "How the code is laid out" says the same in prose.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pytest

import wespoke_tui

PACKAGE_DIR = Path(wespoke_tui.__file__).parent
PACKAGE = "wespoke_tui"

SESSION = ("wespoke_tui.session",)
ENTRY_POINTS = ("wespoke_tui.cli", "wespoke_tui.__main__")
RUNNERS = ("wespoke_tui.headless", "wespoke_tui.headless_report", "wespoke_tui.scenario", *ENTRY_POINTS)
# The conversations the runners drive, beside the session: the factory, the chat, the demo.
CONTROLLERS = ("wespoke_tui.controllers",)
UI = ("wespoke_tui.ui",)
AUDIO = ("wespoke_tui.audio",)
API = ("wespoke_tui.api",)
WIDGETS_AND_SCREENS = ("wespoke_tui.ui.widgets", "wespoke_tui.ui.screens")
# Used by every layer, so they import none: `event_stream` sits here, below both the session and the
# controllers that share it.
SHARED = (
    "wespoke_tui.errors",
    "wespoke_tui.event_stream",
    "wespoke_tui.events",
    "wespoke_tui.i18n",
    "wespoke_tui.logs",
    "wespoke_tui.presenter",
    "wespoke_tui.settings",
    "wespoke_tui.shutdown",
    "wespoke_tui.sound_help",
    "wespoke_tui.winconsole",
)
CONFIG = ("wespoke_tui.config",)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@cache
def imports_of(module: str) -> tuple[frozenset[str], frozenset[str]]:
    """(every module `module` imports, the ones that run): names as absolute dotted paths.

    `from a.b import c` is `a.b.c` when that is a module of ours, else `a.b`.
    """
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    every: set[str] = set()
    running: set[str] = set()

    def add(name: str, runs: bool) -> None:
        every.add(name)
        if runs:
            running.add(name)

    def visit(node: ast.AST, runs: bool) -> None:
        for child in ast.iter_child_nodes(node):
            child_runs = runs and not (isinstance(child, ast.If) and _is_type_checking(child))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, child_runs)
            elif isinstance(child, ast.ImportFrom):
                assert child.level == 0, f"{module}: relative import (the layer rules read absolute ones)"
                base = child.module or ""
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    add(full if full in modules() else base, child_runs)
            visit(child, child_runs)

    visit(tree, True)
    return frozenset(every), frozenset(running)


def within(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def ours(names: Iterable[str]) -> set[str]:
    return {n for n in names if within(n, (PACKAGE,)) and n in modules()}


def reach(module: str) -> set[str]:
    """Every module `module` depends on, through our own modules, third-party ones included."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        for name in imports_of(current)[0]:
            if name not in seen:
                seen.add(name)
                if name in modules():
                    todo.append(name)
    return seen


def violations(sources: Iterable[str], forbidden: Iterable[str], *, indirect: bool = False) -> list[str]:
    forbidden = tuple(forbidden)
    found = []
    for module in sources:
        names = reach(module) if indirect else imports_of(module)[0]
        found += [f"{module} → {name}" for name in sorted(names) if within(name, forbidden)]
    return found


def modules_in(prefixes: Iterable[str]) -> list[str]:
    return [m for m in modules() if within(m, prefixes)]


def modules_outside(prefixes: Iterable[str]) -> list[str]:
    return [m for m in modules() if not within(m, prefixes)]


def test_the_scanner_sees_imports_at_every_depth() -> None:
    # The rules below pass vacuously if the scanner misses imports: these are known to be there.
    assert "textual.app" in imports_of("wespoke_tui.ui.app")[0]
    assert "sounddevice" in imports_of("wespoke_tui.audio.devices")[0]  # imported inside a function
    assert "wespoke_tui.settings" in imports_of("wespoke_tui.audio.devices")[0]  # under TYPE_CHECKING
    assert "wespoke_tui.settings" not in imports_of("wespoke_tui.audio.devices")[1]
    assert "numpy" in reach("wespoke_tui.audio.mic_probe")  # through audio.meter
    assert len(modules()) > 40
    assert [m for m in SHARED if m not in modules()] == []  # a rule on a module that is gone holds vacuously


@pytest.mark.parametrize(
    ("library", "home"),
    [("textual", UI), ("httpx", API), ("sounddevice", AUDIO)],
)
def test_each_library_stays_in_its_layer(library: str, home: tuple[str, ...]) -> None:
    assert violations(modules_outside(home), [library]) == []


def test_widgets_and_screens_touch_no_call_machinery_even_indirectly() -> None:
    assert violations(modules_in(WIDGETS_AND_SCREENS), ["livekit", "sounddevice", "httpx", "numpy"], indirect=True) == []


def test_only_the_entry_points_import_the_ui() -> None:
    assert violations(modules_outside((*UI, *ENTRY_POINTS)), UI) == []


@pytest.mark.parametrize(
    ("layer", "above"),
    [
        (API, (*SESSION, *CONTROLLERS, *AUDIO, *UI, *RUNNERS)),
        (AUDIO, (*API, *SESSION, *CONTROLLERS, *UI, *RUNNERS)),
        (SESSION, (*CONTROLLERS, *UI, *RUNNERS)),
        (CONTROLLERS, (*UI, *RUNNERS)),
        (SHARED, (*API, *AUDIO, *SESSION, *CONTROLLERS, *UI, *RUNNERS, *CONFIG)),
    ],
    ids=["api", "audio", "session", "controllers", "shared"],
)
def test_lower_layers_never_import_upper_ones(layer: tuple[str, ...], above: tuple[str, ...]) -> None:
    assert violations(modules_in(layer), above) == []


def test_no_import_cycles() -> None:
    graph = {m: ours(imports_of(m)[1]) - {m} for m in modules()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module)
    assert cycles == []
