"""The voice call over LiveKit, `CallSession` and its parts: see README.md, "How the code is laid out"."""

from wespoke_tui.session.call_session import CallSession

__all__ = ["CallSession"]
