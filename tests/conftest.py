"""Shared fixtures: the local stack (Wespoke API server, LiveKit server, test assistants, sound rig).

Every test that needs a part of the stack is marked `stack` at collection (the `rig` and `agents`
markers name the PulseAudio rig and the LiveKit Agents worker among those), so
`pytest -m "not stack"` runs only the pure tests. The markers select; they never skip.
"""

from __future__ import annotations

import inspect
import re
import types
from typing import Any

import pytest

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

# Code in a test, its fixtures or the helpers of tests/ they call that starts a part of the stack
# itself, without a stack fixture.
STARTS = {
    "rig": re.compile(r"\bPulseRig\("),
    "agents": re.compile(r"\bAgentsWorker\(|\bagents_python\(|[\"']tests\.stack\.agents_assistant[\"']"),
    "stack": re.compile(
        r"\b(?:LiveKitServer|WespokeServer|AssistantProcess|AssistantPool|TmuxPane)\("
        r"|\b(?:start_wespoke_server|make_dispatcher)\("
        r"|[\"']tmux[\"']"
        r"|[\"']tests\.stack\.\w+[\"']"
    ),
}


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    sources: dict[Any, str] = {}
    for item in items:
        names = set(_stack_markers(item, sources))
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


def _stack_markers(item: pytest.Item, sources: dict[Any, str]) -> set[str]:
    """The markers that the code run by `item` (test, fixtures, helpers in tests/) calls for."""
    roots: list[Any] = [getattr(item, "obj", None)]
    info = getattr(item, "_fixtureinfo", None)
    for defs in (info.name2fixturedefs.values() if info is not None else ()):
        roots.extend(d.func for d in defs if _is_test_code(d.func))
    text = "\n".join(_source_closure(roots, sources))
    return {name for name, pattern in STARTS.items() if pattern.search(text)}


def _source_closure(roots: list[Any], sources: dict[Any, str]) -> list[str]:
    """The source of each root and, transitively, of the functions and classes of tests/ (but not
    of tests/stack/, whose entry points STARTS names) that they refer to."""
    seen: set[int] = set()
    texts: list[str] = []
    todo = [r for r in roots if r is not None]
    while todo:
        obj = inspect.unwrap(todo.pop())
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if obj not in sources:
            try:
                sources[obj] = inspect.getsource(obj)
            except (OSError, TypeError):
                sources[obj] = ""
        texts.append(sources[obj])
        todo.extend(_referenced_helpers(obj))
    return texts


def _referenced_helpers(obj: Any) -> list[Any]:
    functions = [obj] if inspect.isfunction(obj) else []
    if inspect.isclass(obj):
        members = [m.fget if isinstance(m, property) else m for m in vars(obj).values()]
        functions = [f for f in map(inspect.unwrap, filter(None, members)) if inspect.isfunction(f)]
    found = []
    for function in functions:
        namespace = function.__globals__
        for name in _code_names(function.__code__):
            ref = namespace.get(name)
            if (inspect.isfunction(ref) or inspect.isclass(ref)) and _is_test_helper(ref):
                found.append(ref)
    return found


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _is_test_code(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == "tests" or module.startswith("tests.")


def _is_test_helper(obj: Any) -> bool:
    return _is_test_code(obj) and not obj.__module__.startswith("tests.stack")
