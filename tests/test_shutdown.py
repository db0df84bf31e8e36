"""Signals end the call first, and the process always leaves (wespoke_tui.shutdown)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

from wespoke_tui.shutdown import GracefulShutdown, start_exit_watchdog


async def test_first_signal_hangs_up_then_runs_after_and_the_second_forces_the_exit() -> None:
    hung_up = asyncio.Event()
    release = asyncio.Event()
    after: list[int] = []
    forced: list[int] = []

    async def hang_up() -> None:
        hung_up.set()
        await release.wait()

    shutdown = GracefulShutdown(hang_up, after.append, force_exit=forced.append)
    shutdown.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(hung_up.wait(), 2.0)
        assert shutdown.requested and after == []  # the exit waits for the hang-up
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.1)
        assert forced == [signal.SIGHUP]
        release.set()
        assert await asyncio.wait_for(shutdown.wait(), 2.0) == signal.SIGTERM
        assert after == [signal.SIGTERM]
    finally:
        shutdown.uninstall()


async def test_a_hang_up_that_never_ends_is_given_up_after_the_timeout() -> None:
    never = asyncio.Event()
    after: list[int] = []
    shutdown = GracefulShutdown(never.wait, after.append, timeout_s=0.2, force_exit=lambda _: None)
    shutdown.install()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        assert await asyncio.wait_for(shutdown.wait(), 2.0) == signal.SIGINT
        assert after == [signal.SIGINT]
    finally:
        shutdown.uninstall()


def test_exit_watchdog_leaves_with_the_code_once_its_time_is_up() -> None:
    left: list[tuple[int, float]] = []
    fired = threading.Event()

    def leave(code: int) -> None:
        left.append((code, time.monotonic()))
        fired.set()

    started = time.monotonic()
    timer = start_exit_watchdog(0.2, 130, leave)
    assert timer.daemon  # never keeps a finished process alive
    assert fired.wait(2.0)
    (code, at), = left
    assert code == 130 and at - started >= 0.2
