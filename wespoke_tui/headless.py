"""`wespoke-tui call --no-tui`: one call without the TUI, for scripts and tests.

Audio comes from WAV files when given (real-time paced), else the sound devices, or the
offline demo with `--demo`. State changes and final transcript lines go to stdout, one a
line, in the user's language; the transcript is also written as JSONL. The call hangs up
after `--duration` seconds, when the call ends by itself, or on SIGINT/SIGTERM/SIGHUP.
Exit status: 0 for a clean hang-up, 1 with the user message on stderr for a failed call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from wespoke_tui.audio.base import AudioBackend
from wespoke_tui.config import HeadlessOptions
from wespoke_tui.errors import UNKNOWN_ERROR, CallError
from wespoke_tui.events import (
    CallController,
    CallEnding,
    CallState,
    ReconnectAttempt,
    StateChanged,
    TranscriptItem,
)
from wespoke_tui.i18n import text
from wespoke_tui.settings import Settings
from wespoke_tui.shutdown import GracefulShutdown, exit_if_livekit_loaded

log = logging.getLogger("wespoke_tui.headless")

EXIT_OK = 0
EXIT_FAILED = 1
FINAL_STATES = (CallState.ENDED, CallState.FAILED)
ROLES = ("user", "assistant", "system", "tool")


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


class _Reporter:
    """Prints the call as it goes and keeps the transcript; remembers how the call ended."""

    def __init__(self, settings: Settings, transcript: IO[str] | None) -> None:
        self._lang = settings.lang
        self._transcript = transcript
        self._printed_final: set[str] = set()
        self.final_state: CallState | None = None
        self.error: CallError | None = None
        self.state_changed = asyncio.Event()

    def handle(self, event: Any) -> None:
        if isinstance(event, StateChanged):
            if event.state != CallState.RECONNECTING:  # said with its attempt number instead
                _say(text(f"state.{event.state.value}", self._lang))
            if event.state in FINAL_STATES:
                self.final_state = event.state
                self.error = event.error
            self.state_changed.set()
        elif isinstance(event, ReconnectAttempt):
            _say(text("state.reconnecting", self._lang, attempt=event.attempt, max=event.max_attempts))
        elif isinstance(event, TranscriptItem):
            if event.final and event.id not in self._printed_final and event.text.strip():
                self._printed_final.add(event.id)
                role = text(f"role.{event.role}", self._lang) if event.role in ROLES else event.role
                _say(f"{role}: {' '.join(event.text.split())}")
                if self._transcript is not None:
                    self._write_item(event)
        elif isinstance(event, CallEnding):
            _say(text("call_ending.notice", self._lang))

    def _write_item(self, item: TranscriptItem) -> None:
        assert self._transcript is not None
        record = {"id": item.id, "role": item.role, "text": item.text, "final": item.final, "timestamp": item.timestamp}
        self._transcript.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._transcript.flush()


def _say(line: str) -> None:
    print(line, flush=True)


async def _run(settings: Settings, options: HeadlessOptions) -> int:
    transcript = _open_transcript(options.transcript)
    controller = _make_controller(settings, options)
    reporter = _Reporter(settings, transcript)
    shutdown = GracefulShutdown(controller.hang_up)
    shutdown.install()
    consumer = asyncio.get_running_loop().create_task(_consume(controller, reporter))
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
        shutdown.uninstall()
        if transcript is not None:
            transcript.close()
    if reporter.final_state == CallState.FAILED:
        error = reporter.error
        message = error.user_message if error else text("state.failed", settings.lang)
        print(" ".join(message.split()), file=sys.stderr, flush=True)
        return EXIT_FAILED
    return EXIT_OK


async def _consume(controller: CallController, reporter: _Reporter) -> None:
    async for event in controller.events():
        reporter.handle(event)


async def _until_call_ends(
    controller: CallController, reporter: _Reporter, shutdown: GracefulShutdown, duration: float | None
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
