"""Fault drills against the real stack: the LiveKit server killed, restarted, frozen.

Each drill drives a real `CallSession` (WAV audio, the test assistant echoing it) and asserts
three things: no traceback (no log record carries one), the right user-visible state, and no
call left open (RoomService lists no participant of ours afterwards). The session tests
(`tests/test_session*.py`) already cover a forced signal reconnect and a server that stops for
good; these drills add a real kill and restart with audio checked both ways, a session that
stays usable after a failure, and a frozen (SIGSTOP) server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.stack.assistant_control import AssistantProcess
from tests.stack.livekit_fixtures import Stack as WespokeStack
from tests.support.events import EventRecorder
from tests.support.signals import tone_wav
from wespoke_tui.audio.wav import WavBackend, WavInput
from wespoke_tui.errors import DISCONNECTED, MICROPHONE_ERROR, describe
from wespoke_tui.events import AssistantLevel, CallState, ErrorEvent
from wespoke_tui.session import CallSession
from wespoke_tui.settings import Settings

pytestmark = pytest.mark.timeout(120)

# Received audio above this RMS is the assistant talking (its echo of our tone is about −20 dBFS).
HEARD_DBFS = -40.0
# The drills' microphone tone, 300 Hz, peak in sample units (tests/support/signals.py: tone_wav).
DRILL_TONE_AMPLITUDE = 6000
# How long a LiveKit server that missed our leave (it was frozen) keeps our participant: 21 s
# after the thaw as a rule (its ICE timeouts, 15 s, and the close after them), but more than 30 s
# once in a CI run when the freeze caught the SDK's full reconnect (a second join) in flight.
# The drill checks that the participant goes at all (the client keeps nothing alive), not the
# server's timers.
SERVER_GRACE_S = 45.0


# ------------------------------------------------------------------------------ the stack


class Stack:
    """The shared `wespoke_stack`, plus what the drills need: our callers left on the server, and
    assistants a drill starts itself (stopped at teardown)."""

    def __init__(self, shared: WespokeStack) -> None:
        self.shared = shared
        self.livekit = shared.livekit
        self.api = shared.api
        self.extra_assistants: list[AssistantProcess] = []

    def settings(self, **kw: Any) -> Settings:
        return self.shared.settings(**kw)

    def assistant_for(self, call_id: str) -> AssistantProcess:
        for extra in reversed(self.extra_assistants):
            if extra.call_id == call_id and extra.running:
                return extra
        return self.shared.assistant_for(call_id)

    async def our_participants(self) -> list[str]:
        """Identities of our callers (not assistants) still in any room, as the server sees it."""
        ours: list[str] = []
        for room in await self.livekit.list_rooms():
            ours += [p for p in await self.livekit.list_participants(room) if not p.startswith("assistant")]
        return ours


@pytest.fixture
def stack(wespoke_stack: WespokeStack) -> Iterator[Stack]:
    drill_stack = Stack(wespoke_stack)
    try:
        yield drill_stack
    finally:
        for extra in drill_stack.extra_assistants:
            extra.stop()


# ------------------------------------------------------------------------------ helpers


class TracebackWatch(logging.Handler):
    """Fails a drill that logged a traceback anywhere in the app."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.tracebacks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.name.startswith("wespoke_tui"):
            self.tracebacks.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
def no_traceback() -> Iterator[TracebackWatch]:
    watch = TracebackWatch()
    logger = logging.getLogger("wespoke_tui")
    old_level = logger.level
    logger.addHandler(watch)
    logger.setLevel(logging.DEBUG)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(old_level)
    assert watch.tracebacks == [], f"tracebacks were logged: {watch.tracebacks}"


class Events(EventRecorder):
    """A session's event stream, recorded in the background with arrival times (the kit's
    recorder, its failure messages without the assistant's levels), and when we heard the assistant."""

    def __init__(self, session: CallSession) -> None:
        super().__init__(session, quiet=(AssistantLevel,))

    async def heard(self, timeout: float, since: float) -> None:
        """The assistant's audio reached our speaker after `since`."""
        await self.wait_for(lambda e: isinstance(e, AssistantLevel) and e.rms_dbfs > HEARD_DBFS, timeout, since)


async def assistant_hears_us(assistant: AssistantProcess, after_wall: float, timeout: float) -> None:
    """The assistant got a second of our audio with energy in it, reported after `after_wall`."""
    await asyncio.to_thread(
        assistant.wait_for,
        "energy",
        lambda e: e["wall"] > after_wall and e["frames"] > 50 and e["rms_dbfs"] > HEARD_DBFS,
        timeout,
    )


def assistant_after_outage(stack: Stack, assistant: AssistantProcess, tmp_path: Path) -> AssistantProcess:
    """The assistant of the call once the server is back: the same process if its SDK reconnected,
    else a new one in the same room, as the Wespoke backend re-dispatches an agent that dropped."""
    assistant.wait_until(
        lambda reports: any(r["event"] in ("reconnected", "disconnected", "process_exit") for r in reports), timeout=20
    )
    if assistant.events("reconnected") and assistant.running:
        return assistant
    assistant.stop()
    record = stack.api.calls[assistant.call_id]
    token = stack.livekit.token(assistant.identity, record.room_name, metadata=json.dumps({"role": "assistant"}))
    fresh = AssistantProcess(stack.livekit.url, token, assistant.call_id, stack.api.url, log_dir=tmp_path)
    stack.extra_assistants.append(fresh)
    return fresh


async def no_call_left_open(stack: Stack, within_s: float = 1.0) -> None:
    deadline = time.monotonic() + within_s
    while True:
        left = await stack.our_participants()
        if not left:
            return
        assert time.monotonic() < deadline, f"still in a room after {within_s} s: {left}"
        await asyncio.sleep(0.05)  # poll


@contextlib.asynccontextmanager
async def connected(session: CallSession) -> AsyncIterator[tuple[CallSession, Events]]:
    """`session` with its call up and its events recorded; closed afterwards."""
    events = Events(session)
    await session.start()
    assert session.state == CallState.CONNECTED
    try:
        yield session, events
    finally:
        await session.aclose()
        await events.aclose()


@pytest.fixture
async def call(stack: Stack, tmp_path: Path) -> AsyncIterator[tuple[CallSession, Events]]:
    """A connected call whose microphone plays a 300 Hz tone for two minutes."""
    wav = tone_wav(tmp_path / "mic.wav", seconds=120, amplitude=DRILL_TONE_AMPLITUDE)
    async with connected(CallSession(stack.settings(), lambda: WavBackend(wav, None))) as pair:
        yield pair


# ------------------------------------------------------------------------------ drills


async def test_server_killed_and_restarted_within_5s_reconnects_and_audio_flows_again(
    stack: Stack, call: tuple[CallSession, Events], no_traceback: TracebackWatch, tmp_path: Path
) -> None:
    session, events = call
    assistant = stack.assistant_for(session.call_id or "")
    await events.heard(timeout=20, since=0.0)  # the greeting, before the fault

    stack.livekit.kill()
    killed = time.monotonic()
    await asyncio.sleep(2.0)  # scenario: the server is down for 2 s
    stack.livekit.start()  # same ports: the clients find it at the same URL
    back = await events.state(CallState.CONNECTED, timeout=15, since=killed)
    took = time.monotonic() - killed
    print(f"killed, restarted after 2 s: connected again {took:.1f} s after the kill")

    assert events.states(since=killed)[:2] == [CallState.RECONNECTING, CallState.CONNECTED], events.states(since=killed)
    assert back.error is None
    # Audio flows again both ways: the assistant hears our tone, we hear it (its echo or greeting).
    restarted_wall, restarted = time.time(), time.monotonic()
    assistant = await asyncio.to_thread(assistant_after_outage, stack, assistant, tmp_path)
    await assistant_hears_us(assistant, restarted_wall, timeout=20)
    await events.heard(timeout=10, since=restarted)

    await session.hang_up()
    assert session.state == CallState.ENDED
    await no_call_left_open(stack)


async def test_server_killed_for_good_fails_the_call_then_a_new_call_works_once_it_is_back(
    stack: Stack, call: tuple[CallSession, Events], no_traceback: TracebackWatch
) -> None:
    session, events = call
    stack.livekit.kill()
    killed = time.monotonic()
    failed = await events.state(CallState.FAILED, timeout=30, since=killed)
    print(f"killed for good: failed({failed.error.code if failed.error else None}) {time.monotonic() - killed:.1f} s after the kill")
    assert failed.error is not None and failed.error.code == DISCONNECTED
    assert CallState.RECONNECTING in events.states(since=killed)
    shown = [e.error for e in events.of(ErrorEvent, since=killed) if e.fatal]
    assert [e.code for e in shown] == [DISCONNECTED] and describe(shown[0], "en").strip()
    assert session.state == CallState.FAILED and not session.state.in_call

    # The same session, once the server is back: a new call connects and hangs up cleanly.
    stack.livekit.start()
    second = time.monotonic()
    await session.start()
    assert session.state == CallState.CONNECTED, events.states(since=second)
    await events.heard(timeout=20, since=second)  # the new call's assistant greets us
    await session.hang_up()
    assert session.state == CallState.ENDED
    await no_call_left_open(stack)


async def test_server_frozen_3s_the_call_recovers_and_audio_flows(
    stack: Stack, call: tuple[CallSession, Events], no_traceback: TracebackWatch
) -> None:
    session, events = call
    assistant = stack.assistant_for(session.call_id or "")
    await events.heard(timeout=20, since=0.0)
    frozen = time.monotonic()
    stack.livekit.freeze()
    await asyncio.sleep(3.0)  # scenario: the server is frozen for 3 s
    stack.livekit.thaw()
    thawed_wall, thawed = time.time(), time.monotonic()
    await assistant_hears_us(assistant, thawed_wall, timeout=20)
    await events.heard(timeout=10, since=thawed)
    print(f"frozen 3 s: states during and after {events.states(since=frozen)}")
    assert CallState.FAILED not in events.states(since=frozen)
    assert session.state == CallState.CONNECTED
    await session.hang_up()
    assert session.state == CallState.ENDED
    await no_call_left_open(stack)


async def test_server_frozen_30s_fails_the_call_clearly(
    stack: Stack, call: tuple[CallSession, Events], no_traceback: TracebackWatch
) -> None:
    session, events = call
    await events.heard(timeout=20, since=0.0)
    frozen = time.monotonic()
    stack.livekit.freeze()
    try:
        failed = await events.state(CallState.FAILED, timeout=30, since=frozen)
        took = time.monotonic() - frozen
    finally:
        await asyncio.sleep(max(0.0, frozen + 30.0 - time.monotonic()))  # scenario: the freeze lasts 30 s
        stack.livekit.thaw()
    print(f"frozen 30 s: failed({failed.error.code if failed.error else None}) {took:.1f} s into the freeze; "
          f"states {events.states(since=frozen)}")
    assert failed.error is not None and failed.error.code == DISCONNECTED
    assert [e.error.code for e in events.of(ErrorEvent, since=frozen) if e.fatal] == [DISCONNECTED]
    # The failed call told the API it is over (the backend's cue to close it) ...
    assert stack.api.calls[session.call_id or ""].ended
    # ... and the room was left. A frozen server cannot take our leave, so once it runs again it
    # holds our participant until its own timeouts run out (SERVER_GRACE_S): the client cannot do
    # better than leaving, so the drill gives the server that long.
    thawed = time.monotonic()
    await no_call_left_open(stack, within_s=SERVER_GRACE_S)
    print(f"frozen 30 s: our participant gone {time.monotonic() - thawed:.1f} s after the thaw")
    assert session.state == CallState.FAILED


class FailingMicrophone(WavInput):
    """The WAV microphone, until its 25th frame raises what no audio device raises: a bug."""

    async def frames(self) -> AsyncIterator[np.ndarray]:
        async for frame in super().frames():
            if self.frames_sent == 25:
                raise IndexError("pop from an empty deque")
            yield frame


class FailingMicrophoneBackend(WavBackend):
    def open_input(self) -> WavInput:
        self.input = FailingMicrophone(self._input_wav)
        return self.input


async def test_a_fault_in_the_microphone_path_is_a_microphone_error_and_the_call_goes_on(
    stack: Stack, tmp_path: Path, no_traceback: TracebackWatch, caplog: pytest.LogCaptureFixture
) -> None:
    wav = tone_wav(tmp_path / "mic.wav", seconds=60, amplitude=DRILL_TONE_AMPLITUDE)
    async with connected(CallSession(stack.settings(), lambda: FailingMicrophoneBackend(wav, None))) as (session, events):
        error_event = await events.wait_for(lambda e: isinstance(e, ErrorEvent), timeout=5)
        assert error_event.error.code == MICROPHONE_ERROR and not error_event.fatal
        assert describe(error_event.error, "en").strip()
        assert "IndexError" in error_event.error.message
        stopped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("microphone stopped")]
        assert stopped == ["microphone stopped: IndexError: pop from an empty deque (at test_drills.py:"
                           f"{FailingMicrophone.frames.__code__.co_firstlineno + 3})"], stopped

        # Listen-only, not over: the assistant is still heard and the call hangs up cleanly.
        after = time.monotonic()
        stack.assistant_for(session.call_id or "").send({"cmd": "tone", "freq": 523, "seconds": 1.0, "dbfs": -12})
        await events.heard(timeout=10, since=after)
        assert session.state == CallState.CONNECTED
        assert CallState.FAILED not in events.states()
        await session.hang_up()
        assert session.state == CallState.ENDED
        assert [e.error.code for e in events.of(ErrorEvent)] == [MICROPHONE_ERROR]
    await no_call_left_open(stack)
