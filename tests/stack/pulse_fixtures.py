"""Fixtures (filled in by the issue that brings this part of the stack)."""
