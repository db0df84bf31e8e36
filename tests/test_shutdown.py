"""Signals end the call first, and the process always leaves (wespoke_tui.shutdown)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

from tests.support.waiting import eventually
from wespoke_tui.shutdown import ExitPolicy, GracefulShutdown, start_exit_watchdog


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
        await eventually(lambda: forced, timeout=2.0)
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


async def test_the_policy_leaves_in_order_first_and_by_force_when_asked_again() -> None:
    begun: list[int] = []
    forced: list[int] = []
    left: list[int] = []
    policy = ExitPolicy(process_exit=left.append)
    policy.attach(begun.append, forced.append, watchdog_s=0.2)
    policy.install()
    try:
        policy.interrupt(130)  # Ctrl+C in the TUI
        assert begun == [130] and policy.leaving and not policy.requested
        os.kill(os.getpid(), signal.SIGTERM)
        await eventually(lambda: forced, timeout=2.0)
        assert forced == [signal.SIGTERM] and begun == [130]
        await asyncio.sleep(0.3)  # a window: past the 0.2 s watchdog, which must not fire
        assert left == []  # the watchdog comes with a first signal, not with a signal that forces
    finally:
        policy.uninstall()


async def test_a_first_signal_starts_the_watchdog_when_the_process_is_ours() -> None:
    begun: list[int] = []
    left: list[int] = []
    policy = ExitPolicy(process_exit=left.append)
    policy.attach(begun.append, watchdog_s=0.2)
    policy.install()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        await eventually(lambda: begun, timeout=2.0)
        assert begun == [signal.SIGINT] and policy.signal_received == signal.SIGINT
        await eventually(lambda: left, timeout=2.0, interval=0.05)
        assert left == [130]
    finally:
        policy.uninstall()
    not_ours = ExitPolicy()
    not_ours.terminal_lost = True
    not_ours.leave_if_terminal_lost(0)  # no process_exit: nothing to do (tests own their process)
