"""Waiting on a condition instead of sleeping, then asserting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

Condition = Callable[[], Any]


async def eventually(
    condition: Condition,
    timeout: float = 5.0,
    interval: float = 0.02,
    *,
    what: str | Callable[[], str] = "",
    pause: Callable[[float], Awaitable[Any]] | None = None,
) -> Any:
    """Poll `condition()` every `interval` seconds until it is truthy, and return its value;
    fail with an AssertionError (naming `what`) after `timeout` seconds. `pause` is what waits
    between polls (default `asyncio.sleep`; a Textual pilot passes `pilot.pause`)."""
    wait = pause or asyncio.sleep
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {_describe(what, condition)}")
        await wait(interval)


def eventually_sync(condition: Condition, timeout: float = 5.0, interval: float = 0.02, *, what: str = "") -> Any:
    """`eventually` for code outside an event loop (threads, subprocesses)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {_describe(what, condition)}")
        time.sleep(interval)


def _describe(what: str | Callable[[], str], condition: Condition) -> str:
    if callable(what):
        return what()
    return what or getattr(condition, "__qualname__", repr(condition))
