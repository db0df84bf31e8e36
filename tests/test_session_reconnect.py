"""Reconnection of a live call: a forced signal reconnect comes back; a dead server fails the call."""

from __future__ import annotations

import asyncio
import time

import pytest
from livekit import rtc

from tests.support.events import EventRecorder
from tests.test_session import make_settings, our_tasks
from wespoke_tui.audio.wav import WavBackend
from wespoke_tui.errors import DISCONNECTED
from wespoke_tui.events import CallState, ErrorEvent, ReconnectAttempt, StateChanged
from wespoke_tui.session import CallSession

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    "scenario",
    [rtc.SimulateScenarioKind.SIMULATE_SIGNAL_RECONNECT, rtc.SimulateScenarioKind.SIMULATE_FULL_RECONNECT],
    ids=["signal", "full"],
)
async def test_forced_reconnect_shows_reconnecting_then_connected(wespoke_stack, scenario) -> None:
    api_server = wespoke_stack.api
    session = CallSession(make_settings(api_server), lambda: WavBackend(None, None))
    events = EventRecorder(session)
    await session.start()
    assert session.state == CallState.CONNECTED
    assert session.room is not None
    await session.room.simulate_scenario(scenario)
    await events.wait_for(lambda e: isinstance(e, StateChanged) and e.state == CallState.RECONNECTING, timeout=5)
    back = await events.wait_for(
        lambda e: isinstance(e, StateChanged) and e.previous == CallState.RECONNECTING, timeout=10
    )
    assert back.state == CallState.CONNECTED
    assert events.of(ReconnectAttempt)[0] == ReconnectAttempt(1, 3)
    assert events.states() == [
        CallState.REQUESTING_TOKEN, CallState.CONNECTING, CallState.CONNECTED, CallState.RECONNECTING, CallState.CONNECTED
    ]
    await session.hang_up()
    assert session.state == CallState.ENDED
    await session.aclose()
    await events.aclose()


async def test_server_that_stays_down_fails_the_call_after_three_attempts(wespoke_stack) -> None:
    api_server, livekit_server = wespoke_stack.api, wespoke_stack.livekit
    session = CallSession(make_settings(api_server), lambda: WavBackend(None, None))
    events = EventRecorder(session)
    await session.start()
    assert session.state == CallState.CONNECTED
    livekit_server.kill()  # gone, never back
    killed = time.monotonic()
    failed = await events.wait_for(lambda e: isinstance(e, StateChanged) and e.state == CallState.FAILED, timeout=20)
    took = time.monotonic() - killed
    print(f"server down → failed(DISCONNECTED) after {took:.1f} s")
    assert failed.error is not None and failed.error.code == DISCONNECTED
    assert [a.attempt for a in events.of(ReconnectAttempt)] == [1, 2, 3]
    assert CallState.RECONNECTING in events.states()
    assert [e.error.code for e in events.of(ErrorEvent) if e.fatal] == [DISCONNECTED]
    # The room is closed and nothing of ours is left running.
    assert session.room is not None and not session.room.isconnected()
    await session.aclose()
    await events.aclose()
    await asyncio.sleep(0)  # scenario: one turn of the loop and no more, for the tasks just ended to go
    assert our_tasks() == []


async def test_server_removing_the_room_fails_the_call_with_disconnected(wespoke_stack) -> None:
    api_server, livekit_server = wespoke_stack.api, wespoke_stack.livekit
    from livekit import api as lkapi

    session = CallSession(make_settings(api_server), lambda: WavBackend(None, None))
    events = EventRecorder(session)
    await session.start()
    record = api_server.calls[session.call_id]
    async with livekit_server.room_api() as service:
        await service.room.delete_room(lkapi.DeleteRoomRequest(room=record.room_name))
    failed = await events.wait_for(lambda e: isinstance(e, StateChanged) and e.state in (CallState.FAILED, CallState.ENDED), timeout=5)
    assert failed.state == CallState.FAILED and failed.error.code == DISCONNECTED
    await session.aclose()
    await events.aclose()
    assert our_tasks() == []
