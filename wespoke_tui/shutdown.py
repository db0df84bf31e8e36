"""SIGINT, SIGTERM and SIGHUP end the call before the process goes.

A call left open keeps running (and costing credits) until the server notices, so the first
signal hangs up exactly like the user would (room disconnected first, devices closed), then
lets the program exit. A second signal while that is under way forces the exit at once.
Handlers live on the running asyncio loop (`loop.add_signal_handler`), so the hang-up runs as
ordinary loop code, never inside a signal frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable

log = logging.getLogger("wespoke_tui.shutdown")

DEFAULT_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# A hang-up normally takes well under a second; past this the process leaves anyway.
HANG_UP_TIMEOUT_S = 5.0
LEAVE_FLUSH_S = 0.25


def terminal_attached() -> bool:
    """Whether the terminal we draw on is still there (after its window closed, it is not)."""
    stream = sys.__stderr__
    if stream is None:
        return False
    try:
        return os.isatty(stream.fileno())
    except (OSError, ValueError):
        return False


def leave_now(code: int) -> None:
    """Exit at once, logs flushed: for when nothing is left to restore or the usual path hangs."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def start_exit_watchdog(timeout_s: float, code: int, leave: Callable[[int], None] = leave_now) -> threading.Timer:
    """Guarantee the process leaves `timeout_s` from now even if the orderly exit blocks.

    Textual restores the terminal through a bounded write queue; with a dead terminal, that
    can block the main thread for good. The call itself is ended before this fires.
    """
    def fire() -> None:
        log.warning("exit did not finish within %.0f s; leaving now", timeout_s)
        leave(code)

    timer = threading.Timer(timeout_s, fire)
    timer.daemon = True
    timer.start()
    return timer


def leave_after_call(code: int) -> None:
    """`leave_now`, after giving a LiveKit call's last messages time to reach the socket.

    The room's disconnect returns before LiveKit's own threads have surely written the leave
    message; _exit kills those threads, and a leave lost with them keeps our participant on
    the server.
    """
    if "livekit.rtc" in sys.modules:
        time.sleep(LEAVE_FLUSH_S)
    leave_now(code)


def exit_if_livekit_loaded(code: int) -> None:
    """Leave without interpreter finalization once a LiveKit call has run and everything is written.

    The LiveKit FFI runtime can abort the process (a Rust panic, SIGABRT) while Python shuts
    down, turning a clean hang-up into exit status -6. By then the call has ended, the room was
    left and the files are closed: nothing is lost by skipping the finalizers.
    """
    if "livekit.rtc" in sys.modules:
        leave_after_call(code)


def _force_exit(signum: int) -> None:
    os._exit(128 + signum)


class GracefulShutdown:
    """Hangs up on the first signal, then calls `after`; forces the exit on the second.

    `hang_up` is the controller's hang-up; `after(signum)` runs once it finished (or timed
    out), e.g. to stop the app's main loop. `wait()` returns the signal number then.
    """

    def __init__(
        self,
        hang_up: Callable[[], Awaitable[None]],
        after: Callable[[int], None] | None = None,
        *,
        signals: Iterable[signal.Signals] = DEFAULT_SIGNALS,
        timeout_s: float = HANG_UP_TIMEOUT_S,
        force_exit: Callable[[int], None] = _force_exit,
    ) -> None:
        self._hang_up = hang_up
        self._after = after
        self._signals = tuple(signals)
        self._timeout_s = timeout_s
        self._force_exit = force_exit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self.signal_received: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal_received is not None

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        for sig in self._signals:
            self._loop.add_signal_handler(sig, self._on_signal, sig)

    def uninstall(self) -> None:
        if self._loop is None:
            return
        for sig in self._signals:
            with contextlib.suppress(Exception):
                self._loop.remove_signal_handler(sig)
        self._loop = None

    async def wait(self) -> int:
        await self._done.wait()
        assert self.signal_received is not None
        return self.signal_received

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.signal_received is not None:
            log.warning("second signal %s: forcing exit", sig.name)
            self._force_exit(int(sig))
            return
        log.info("signal %s: hanging up before exit", sig.name)
        self.signal_received = int(sig)
        assert self._loop is not None
        self._task = self._loop.create_task(self._shut_down(int(sig)), name="signal-hang-up")

    async def _shut_down(self, signum: int) -> None:
        try:
            await asyncio.wait_for(self._hang_up(), self._timeout_s)
        except asyncio.TimeoutError:
            log.warning("hang-up did not finish within %.0f s; exiting anyway", self._timeout_s)
        except Exception:
            log.exception("hang-up after signal failed")
        finally:
            self._done.set()
            if self._after is not None:
                self._after(signum)
