"""Shared fixtures: the local stack (Wespoke API server, LiveKit server, test assistants, sound rig).

Every test that needs a part of the stack is marked `stack` at collection (the `rig` and `agents`
markers name the PulseAudio rig and the LiveKit Agents worker among those), so
`pytest -m "not stack"` runs only the pure tests. The markers select; they never skip.
"""

from __future__ import annotations

import gc
import inspect
import os
import re
import sys
import types
from typing import Any

import pytest


def keep_compiled_modules() -> None:
    """Where `PYTHONDONTWRITEBYTECODE` is set (some containers set it), every pytest-xdist worker
    would compile the test modules and the package anew, and every command-line test the package:
    a quarter of the inner loop's CPU. The tests let Python keep them in `__pycache__` (ignored by
    git), in this process and the ones they start. Done before pytest imports (and rewrites) the
    test modules."""
    sys.dont_write_bytecode = False
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


keep_compiled_modules()

pytest_plugins = [
    "tests.stack.wespoke_fixtures",
    "tests.stack.livekit_fixtures",
    "tests.stack.pulse_fixtures",
    "tests.stack.agents_fixtures",
]

MARKERS = {
    "stack": "needs a part of the local stack (LiveKit server, local API server, PulseAudio rig, "
             "LiveKit Agents venv, tmux) or the network; deselect with -m 'not stack'",
    "rig": "needs the PulseAudio sound rig (also marked stack)",
    "agents": "needs the LiveKit Agents assistant and its venv, .venv-agents (also marked stack)",
    "packaging": "builds the wheel and installs it with pipx from PyPI (also marked stack)",
}

# The stack fixtures (tests/stack/*_fixtures.py). `item.fixturenames` is the whole closure, so a
# test module's own fixture built on one of these counts too.
RIG_FIXTURES = {"pulse_rig", "sound_rig"}
AGENTS_FIXTURES = {"agents_livekit", "agents_worker", "agents_stack"}
STACK_FIXTURES = {
    "livekit_server", "livekit_server_module", "wespoke_stack", "wespoke_server",
} | RIG_FIXTURES | AGENTS_FIXTURES

# What, in the code of a test, its fixtures or the helpers of tests/ they call, starts a part of
# the stack itself without a stack fixture: the names it calls, or the strings it passes (a module
# it runs with `-m`, the tmux command).
STARTS_NAMES = {
    "rig": {"PulseRig"},
    "agents": {"AgentsWorker", "agents_python"},
    "stack": {"LiveKitServer", "WespokeServer", "AssistantProcess", "AssistantPool", "TmuxPane",
              "start_wespoke_server", "make_dispatcher"},
}
STARTS_STRINGS = {
    "agents": re.compile(r"tests\.stack\.agents_assistant"),
    "stack": re.compile(r"tmux|tests\.stack\.\w+"),
}


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    facts: dict[Any, Facts] = {}
    for item in items:
        names = set(_stack_markers(item, facts))
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & STACK_FIXTURES:
            names.add("stack")
        if fixtures & RIG_FIXTURES:
            names.add("rig")
        if fixtures & AGENTS_FIXTURES:
            names.add("agents")
        if names & {"rig", "agents", "packaging"}:
            names.add("stack")
        for name in sorted(names):
            if item.get_closest_marker(name) is None:
                item.add_marker(name)


Facts = tuple[frozenset[str], frozenset[str], list[Any]]


def _stack_markers(item: pytest.Item, facts: dict[Any, Facts]) -> set[str]:
    """The markers that the code run by `item` calls for: the code of the test, of its fixtures in
    tests/ and, transitively, of the functions and classes of tests/ (but not of tests/stack/, whose
    entry points STARTS_NAMES names) that they refer to."""
    todo: list[Any] = [getattr(item, "obj", None)]
    info = getattr(item, "_fixtureinfo", None)
    for defs in (info.name2fixturedefs.values() if info is not None else ()):
        todo.extend(d.func for d in defs if _is_test_code(d.func))
    names: set[str] = set()
    strings: set[str] = set()
    visited: set[int] = set()
    while todo:
        obj = todo.pop()
        if obj is None or id(obj) in visited:
            continue
        visited.add(id(obj))
        if obj not in facts:
            facts[obj] = _facts(inspect.unwrap(obj))
        more_names, more_strings, helpers = facts[obj]
        names |= more_names
        strings |= more_strings
        todo.extend(helpers)
    return {marker for marker, called in STARTS_NAMES.items() if names & called} | {
        marker for marker, pattern in STARTS_STRINGS.items() if any(pattern.fullmatch(s) for s in strings)
    }


def _facts(obj: Any) -> Facts:
    """The names and string constants in the code of `obj` (read from its code objects: no source
    is parsed) and the helpers of tests/ it refers to."""
    names: set[str] = set()
    strings: set[str] = set()
    helpers: list[Any] = []
    for function in _functions_of(obj):
        codes = _codes(function.__code__)
        function_names = {name for code in codes for name in code.co_names}
        names |= function_names
        strings.update(c for code in codes for c in code.co_consts if isinstance(c, str))
        for name in function_names:
            ref = function.__globals__.get(name)
            if (inspect.isfunction(ref) or inspect.isclass(ref)) and _is_test_helper(ref):
                helpers.append(ref)
    return frozenset(names), frozenset(strings), helpers


def _functions_of(obj: Any) -> list[Any]:
    if inspect.isfunction(obj):
        return [obj]
    if inspect.isclass(obj):
        members = [m.fget if isinstance(m, property) else m for m in vars(obj).values()]
        return [f for f in map(inspect.unwrap, filter(None, members)) if inspect.isfunction(f)]
    return []


def _codes(code: types.CodeType) -> list[types.CodeType]:
    found = [code]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found.extend(_codes(const))
    return found


def _is_test_code(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == "tests" or module.startswith("tests.")


def _is_test_helper(obj: Any) -> bool:
    return _is_test_code(obj) and not obj.__module__.startswith("tests.stack")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """How many workers `-n auto` (pyproject.toml's addopts) starts. The whole set of pure tests
    (`-m "not stack"`, no files named): two a core, at most eight, since most of their time is
    waiting (a Textual pilot lets the app go idle after each key, the demo plays in real time, the
    command-line tests start processes). Anything else runs in one process: the stack's tests
    share its servers and its sound rig, and for a few named tests workers cost more than they
    save. `-n N` on the command line overrides this, `-n 0` for one process."""
    pure = "not stack" in (config.option.markexpr or "")
    whole = config.args_source is not pytest.Config.ArgsSource.ARGS
    if not (pure and whole):
        return 0
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist's own answer reads it
    return min(8, 2 * (os.cpu_count() or 1))


def pytest_collection_finish(session: pytest.Session) -> None:
    """The modules and objects collection made live for the whole run: frozen out of the garbage
    collector's sight, so that its full passes (Python's own during the tests, and pytest's five at
    the end) walk only what the tests make."""
    gc.collect()
    gc.freeze()
