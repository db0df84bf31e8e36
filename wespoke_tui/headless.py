"""`wespoke-tui call --no-tui` and `chat --no-tui`: one call or text chat without the TUI,
for scripts and tests.

Audio comes from WAV files when given (real-time paced), else the sound devices, or the
offline demo with `--demo`. What the call says goes to stdout as text lines in the user's
language, or as JSON records with `--json`; `--transcript FILE` gets the records too
(`wespoke_tui.headless_report` has both formats). The call hangs up after `--duration`
seconds, when the call ends by itself, or on SIGINT/SIGTERM/SIGHUP.
A text chat sends each line of stdin as a message, waits for its whole reply, and ends at the
end of input (or on the same signals and `--duration`).
Exit status: 0 for a clean hang-up, 1 with the user message on stderr for a failed call, and
for a chat 1 too when a reply failed (its message was said on stderr as it happened).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from wespoke_tui.audio.base import AudioBackend
from wespoke_tui.config import HeadlessOptions
from wespoke_tui.controllers import make_controller
from wespoke_tui.errors import UNKNOWN_ERROR, CallError, describe
from wespoke_tui.events import CallController, CallState
from wespoke_tui.headless_report import Reporter
from wespoke_tui.i18n import text
from wespoke_tui.logs import redact
from wespoke_tui.settings import Settings
from wespoke_tui.shutdown import ExitPolicy, GracefulShutdown, exit_if_livekit_loaded

log = logging.getLogger("wespoke_tui.headless")

EXIT_OK = 0
EXIT_FAILED = 1
FINAL_STATES = (CallState.ENDED, CallState.FAILED)


def run_headless(settings: Settings, options: HeadlessOptions, exit_policy: ExitPolicy | None = None) -> int:
    """`exit_policy`: the process's, from the CLI (default: a new one)."""
    try:
        code = asyncio.run(_run(settings, options, exit_policy))
    except KeyboardInterrupt:  # a SIGINT before the handlers were installed
        code = EXIT_OK
    exit_if_livekit_loaded(code)
    return code


def _backend_factory(settings: Settings, options: HeadlessOptions) -> Callable[[], AudioBackend]:
    if options.input_wav is not None or options.output_wav is not None:
        from wespoke_tui.audio.wav import WavBackend

        return lambda: WavBackend(options.input_wav, options.output_wav)

    def sound_devices() -> AudioBackend:
        from wespoke_tui.audio.engine import device_backend

        return device_backend(settings)

    return sound_devices


async def _run(settings: Settings, options: HeadlessOptions, exit_policy: ExitPolicy | None = None) -> int:
    transcript = _open_transcript(options.transcript)
    controller = make_controller(settings, _backend_factory(settings, options))
    records = [sink for sink in (transcript, sys.stdout if options.json else None) if sink is not None]
    reporter = Reporter(settings.lang, lines=None if options.json else sys.stdout, records=records, errors=sys.stderr,
                        chat=settings.chat)
    shutdown = GracefulShutdown(controller.hang_up, policy=exit_policy)
    shutdown.install()
    consumer = asyncio.get_running_loop().create_task(_consume(controller, reporter))
    record_kept = False  # --delete-after asked for a delete that did not happen
    try:
        if not shutdown.requested:
            loop = asyncio.get_running_loop()
            start = loop.create_task(controller.start())
            signalled = loop.create_task(shutdown.wait())
            await asyncio.wait({start, signalled}, return_when=asyncio.FIRST_COMPLETED)
            if shutdown.requested:
                await signalled  # the signal's hang-up is done
            signalled.cancel()
            await start  # start() returns once connected, failed or hung up
        if controller.state in (CallState.CONNECTED, CallState.RECONNECTING):
            if controller.capabilities.audio:
                await _until_call_ends(controller, reporter, shutdown, options.duration)
            else:
                await _chat_from_stdin(controller, shutdown, options.duration)
        await controller.hang_up()
        if settings.delete_after and not settings.demo and reporter.call_id:
            record_kept = not await controller.delete_record()
    except Exception as exc:  # never a traceback at the user
        log.exception("headless call failed")
        reporter.error = reporter.error or CallError.of(UNKNOWN_ERROR, type(exc).__name__)
        reporter.final_state = CallState.FAILED
        with contextlib.suppress(Exception):
            await controller.hang_up()
    finally:
        with contextlib.suppress(Exception):
            await controller.aclose()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(consumer, 2.0)
        reporter.close()
        shutdown.uninstall()
        if transcript is not None:
            transcript.close()
    if reporter.final_state == CallState.FAILED:
        error = reporter.error
        message = redact(describe(error, settings.lang)) if error else text("state.failed", settings.lang)
        print(" ".join(message.split()), file=sys.stderr, flush=True)
        return EXIT_FAILED
    replies_failed = settings.chat and reporter.nonfatal_errors > 0
    return EXIT_FAILED if record_kept or replies_failed else EXIT_OK


async def _consume(controller: CallController, reporter: Reporter) -> None:
    async for event in controller.events():
        try:
            reporter.handle(event)
        except Exception:  # one event that cannot be said must not silence the rest of the call
            log.exception("could not report %s", type(event).__name__)


async def _until_call_ends(
    controller: CallController, reporter: Reporter, shutdown: GracefulShutdown, duration: float | None
) -> None:
    loop = asyncio.get_running_loop()
    deadline = None if duration is None else loop.time() + duration
    while controller.state not in FINAL_STATES and not shutdown.requested:
        reporter.state_changed.clear()
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        if timeout == 0.0:
            return
        waiter = loop.create_task(reporter.state_changed.wait())
        signal_waiter = loop.create_task(shutdown.wait())
        await asyncio.wait({waiter, signal_waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        signal_waiter.cancel()
    if shutdown.requested:
        await shutdown.wait()


async def _chat_from_stdin(controller: CallController, shutdown: GracefulShutdown, duration: float | None) -> None:
    """Send each line of stdin and wait for its reply, until the end of input, a signal, the
    duration or the end of the chat."""
    loop = asyncio.get_running_loop()
    deadline = None if duration is None else loop.time() + duration
    lines = _stdin_lines(loop)
    signalled = loop.create_task(shutdown.wait())
    try:
        while controller.state not in FINAL_STATES and not shutdown.requested:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            step = loop.create_task(_next_exchange(controller, lines))
            await asyncio.wait({step, signalled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await step
                break
            if not step.result():
                break  # end of input
    finally:
        signalled.cancel()
    if shutdown.requested:
        await shutdown.wait()


async def _next_exchange(controller: CallController, lines: asyncio.Queue[str | None]) -> bool:
    """Read one line and send it (blank lines are skipped); False at the end of input."""
    while (line := await lines.get()) is not None:
        if line.strip():
            await controller.send_text(line)
            return True
    return False


def _stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """Lines of stdin as they come, then None. A daemon thread reads them: a blocking read of a
    terminal, a pipe or a file alike, that never holds up the exit."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def put(item: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is reading
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def read() -> None:
        try:
            for line in sys.stdin:
                put(line.rstrip("\r\n"))
        except (OSError, ValueError) as exc:  # closed or undecodable input ends the chat
            log.warning("stdin: %s", exc)
        finally:
            put(None)

    threading.Thread(target=read, name="stdin-lines", daemon=True).start()
    return queue


def _open_transcript(path: Path | None) -> IO[str] | None:
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8", newline="\n")
    except OSError as exc:
        log.warning("cannot write the transcript to %s: %s", path, exc)
        return None
