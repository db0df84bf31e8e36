"""How long a hang-up holds its Leave, so that the server takes it.

A Leave sent while the server is still answering what the client just started (the join, the
microphone's publish) can be lost in a race in livekit-server, and the participant then stays
in the room, costing the user credits, until the room closes. These waits are bounded: past
their deadlines the Leave goes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from livekit import rtc

from wespoke_tui.session.parts import CallParts

log = logging.getLogger(__name__)

# How long after the microphone's publish a hang-up still waits for the server to finish
# answering it (`let_publish_settle`); past that the Leave goes at once. The bounds cover, with room
# to spare, how late the answer and the participant updates after it came on loopback (see
# BENCHMARKS.md, "Figures that were in module docstrings").
PUBLISH_SETTLE_S = 0.5
PUBLISH_ANSWER_POLL_S = 0.005
PUBLISH_UPDATES_AFTER_ANSWER_S = 0.04
# The same for a hang-up right after the join (`let_join_settle`): at most this long after it.
JOIN_SETTLE_S = 0.5


async def let_join_settle(call: CallParts, room: rtc.Room) -> None:
    """Right after the join, hold the Leave until the server has sent what the join starts.

    That is the token refresh it sends first thing after the join and its answer to the
    publisher connection's offer (the data channels); both usually come before
    `Room.connect` returns. When the server was slow (loaded, or just resumed), they come
    after, and a Leave sent before them hits the race `let_publish_settle` describes (how often,
    and for how long the participant then stayed: see BENCHMARKS.md). The answer shows as the
    publisher's DTLS transport connected in the stats.
    """
    if call.connected_at is None or time.monotonic() >= call.connected_at + JOIN_SETTLE_S:
        return
    held_from = time.monotonic()
    answered = await _join_answered(call, room, call.connected_at + JOIN_SETTLE_S)
    log.info("leave held %.0f ms after the join (%s)", (time.monotonic() - held_from) * 1000, answered)


async def _join_answered(call: CallParts, room: rtc.Room, deadline: float) -> str:
    """Why the hold after the join ended: the server answered, the deadline, or no stats."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(call.token_refreshed.wait(), deadline - time.monotonic())
    while time.monotonic() < deadline:
        try:
            stats = await asyncio.wait_for(room.get_rtc_stats(), deadline - time.monotonic())
        except Exception as exc:
            return f"no stats: {type(exc).__name__}"
        if any(
            s.WhichOneof("stats") == "transport"
            and s.transport.transport.dtls_state == rtc.stats.DtlsTransportState.DTLS_TRANSPORT_CONNECTED
            for s in stats.publisher_stats
        ):
            return "answered" if call.token_refreshed.is_set() else "answered, no token refresh yet"
        await asyncio.sleep(PUBLISH_ANSWER_POLL_S)
    return "deadline: the server had not answered"


async def let_publish_settle(call: CallParts, published_at: float | None) -> None:
    """Right after the microphone's publish, hold the Leave until the server has answered it.

    `publish_track` returns before the server answered the offer it starts, and the server
    sends two participant updates with that answer. The SDK closes the signal socket right
    after the Leave, and when the server writes to it then, its writer fails and closes the
    socket before its reader took the Leave (livekit-server `RTCService.ServeHTTP`): the
    participant stays in the room until the room closes, for some of the hang-ups in that
    window (how many: see BENCHMARKS.md). The answer shows as the sender's first outbound-rtp
    stats; the updates do not show
    through the SDK, hence the short wait after the answer.
    """
    if call.mic_track is None or published_at is None:
        return
    deadline = published_at + PUBLISH_SETTLE_S
    while time.monotonic() < deadline:
        try:
            stats = await asyncio.wait_for(call.mic_track.get_stats(), deadline - time.monotonic())
        except Exception:
            return
        if any(s.WhichOneof("stats") == "outbound_rtp" for s in stats):
            await asyncio.sleep(min(PUBLISH_UPDATES_AFTER_ANSWER_S, deadline - time.monotonic()))
            return
        await asyncio.sleep(PUBLISH_ANSWER_POLL_S)
