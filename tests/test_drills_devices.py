"""Fault drill: the microphone dies mid-call, on the PulseAudio rig's real PortAudio devices.

The rig's `mic` source is suspended during a connected call: PortAudio simply stops calling
back (the silent death of livekit/agents #6075). The user sees MICROPHONE_ERROR, the call stays
connected listen-only (the assistant is still heard), hanging up still leaves the room, and no
traceback is logged. The capture-level detection itself is tested in tests/test_audio_devices.py;
this drill is the whole call around it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.stack.pulse_rig import PulseRig
from tests.test_drills import (  # noqa: F401 (fixtures)
    Events,
    Stack,
    TracebackWatch,
    connected,
    no_call_left_open,
    no_traceback,
    stack,
)
from wespoke_tui.audio.engine import SoundDeviceBackend
from wespoke_tui.errors import MICROPHONE_ERROR, describe
from wespoke_tui.events import CallState, ErrorEvent
from wespoke_tui.session import CallSession

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def device_call(stack: Stack, sound_rig: PulseRig) -> AsyncIterator[tuple[CallSession, Events]]:
    settings = stack.settings(aec=False, noise_suppression=False, auto_gain=False)
    async with connected(CallSession(settings, lambda: SoundDeviceBackend(settings))) as pair:
        yield pair


async def test_microphone_dying_mid_call_is_a_microphone_error_and_the_call_goes_on_listen_only(
    stack: Stack, sound_rig: PulseRig, device_call: tuple[CallSession, Events], no_traceback: TracebackWatch
) -> None:
    session, events = device_call
    assistant = stack.assistant_for(session.call_id or "")
    await asyncio.to_thread(assistant.wait_for, "greeting_done", None, 20.0)

    sound_rig.suspend_mic()
    died = time.monotonic()
    error_event = await events.wait_for(lambda e: isinstance(e, ErrorEvent), timeout=5, since=died)
    noticed = time.monotonic() - died
    print(f"microphone died: MICROPHONE_ERROR shown {noticed:.2f} s later")
    assert error_event.error.code == MICROPHONE_ERROR and not error_event.fatal
    assert describe(error_event.error, "en").strip()
    assert session.state == CallState.CONNECTED

    # Listen-only: the assistant is still heard through the (still working) speaker.
    spoke = time.monotonic()
    assistant.send({"cmd": "tone", "freq": 523, "seconds": 1.0, "dbfs": -12})
    await events.heard(timeout=10, since=spoke)
    await asyncio.sleep(1.0)  # a window: the call goes on for 1 s on the speaker alone
    assert session.state == CallState.CONNECTED
    assert CallState.FAILED not in events.states(since=died)

    await session.hang_up()
    assert session.state == CallState.ENDED
    await no_call_left_open(stack)
