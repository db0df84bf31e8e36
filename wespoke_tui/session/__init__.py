"""The voice call over LiveKit, `CallSession` and its parts: see README.md, "How the code is laid out"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wespoke_tui.session.call_session import CallSession

__all__ = ["CallSession"]


# `CallSession` is loaded on first use: `controllers.core` imports `session.stream`, and a text chat or
# the demo must not load LiveKit and numpy through this package's `__init__`.
def __getattr__(name: str) -> Any:
    # A plain import (not importlib), so tests/test_layers.py sees the dependency.
    if name == "CallSession":
        from wespoke_tui.session.call_session import CallSession

        return CallSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
