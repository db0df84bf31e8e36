"""`wespoke-tui call --no-tui`: one call without the TUI, for scripts and tests.

Audio comes from WAV files when given (real-time paced), else the sound devices, or the
offline demo with `--demo`. What the call says goes to stdout as text lines in the user's
language, or as JSON records with `--json`; `--transcript FILE` gets the records too
(`wespoke_tui.headless_report` has both formats). The call hangs up after `--duration`
seconds, when the call ends by itself, or on SIGINT/SIGTERM/SIGHUP.
Exit status: 0 for a clean hang-up, 1 with the user message on stderr for a failed call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from wespoke_tui.audio.base import AudioBackend
from wespoke_tui.config import HeadlessOptions
from wespoke_tui.errors import UNKNOWN_ERROR, CallError
from wespoke_tui.events import CallController, CallState
from wespoke_tui.headless_report import Reporter
from wespoke_tui.i18n import text
from wespoke_tui.logs import redact
from wespoke_tui.settings import Settings
from wespoke_tui.shutdown import GracefulShutdown, exit_if_livekit_loaded

log = logging.getLogger("wespoke_tui.headless")

EXIT_OK = 0
EXIT_FAILED = 1
FINAL_STATES = (CallState.ENDED, CallState.FAILED)


def run_headless(settings: Settings, options: HeadlessOptions) -> int:
    try:
        code = asyncio.run(_run(settings, options))
    except KeyboardInterrupt:  # a SIGINT before the handlers were installed
        code = EXIT_OK
    exit_if_livekit_loaded(code)
    return code


def _backend_factory(settings: Settings, options: HeadlessOptions) -> Callable[[], AudioBackend]:
    if options.input_wav is not None or options.output_wav is not None:
        from wespoke_tui.audio.wav import WavBackend

        return lambda: WavBackend(options.input_wav, options.output_wav)

    def sound_devices() -> AudioBackend:
        from wespoke_tui.audio.engine import SoundDeviceBackend

        return SoundDeviceBackend(settings)

    return sound_devices


def _make_controller(settings: Settings, options: HeadlessOptions) -> CallController:
    backends = _backend_factory(settings, options)
    if settings.demo:
        from wespoke_tui.demo import DemoController

        return DemoController(settings, backends)
    from wespoke_tui.session import CallSession

    return CallSession(settings, backends)


async def _run(settings: Settings, options: HeadlessOptions) -> int:
    transcript = _open_transcript(options.transcript)
    controller = _make_controller(settings, options)
    records = [sink for sink in (transcript, sys.stdout if options.json else None) if sink is not None]
    reporter = Reporter(settings.lang, lines=None if options.json else sys.stdout, records=records, errors=sys.stderr)
    shutdown = GracefulShutdown(controller.hang_up)
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
            await _until_call_ends(controller, reporter, shutdown, options.duration)
        await controller.hang_up()
        if settings.delete_after and not settings.demo and reporter.call_id:
            record_kept = not await controller.delete_record()
    except Exception as exc:  # never a traceback at the user
        log.exception("headless call failed")
        reporter.error = reporter.error or CallError.of(UNKNOWN_ERROR, type(exc).__name__, lang=settings.lang)
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
        message = redact(error.user_message) if error else text("state.failed", settings.lang)
        print(" ".join(message.split()), file=sys.stderr, flush=True)
        return EXIT_FAILED
    return EXIT_FAILED if record_kept else EXIT_OK


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


def _open_transcript(path: Path | None) -> IO[str] | None:
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        log.warning("cannot write the transcript to %s: %s", path, exc)
        return None
