"""What a connected call reports while it runs: the audio health and the call's quality every
`HEALTH_INTERVAL_S`, the message history every `POLL_INTERVAL_S` (the web SDK's fallback for
lost data messages), and a mute to the API.

A report that fails (no figures, a slow room, an API error) is logged and tried again at the next
tick; it never ends the call.
"""

from __future__ import annotations

import asyncio
import logging

from wespoke_tui.errors import CallError
from wespoke_tui.events import AudioHealth
from wespoke_tui.session.host import SessionHost
from wespoke_tui.session.parts import HEALTH_INTERVAL_S, POLL_INTERVAL_S, QUALITY_STATS_TIMEOUT_S, CallParts
from wespoke_tui.session.playback import Playback
from wespoke_tui.session.recording import CallRecorder

log = logging.getLogger(__name__)


class CallReports:
    """The running call's reports, for `CallSession`."""

    def __init__(self, host: SessionHost, recorder: CallRecorder, playback: Playback) -> None:
        self._host = host
        self._recorder = recorder
        self._playback = playback

    async def report_health(self, call: CallParts) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            if call.backend is None:
                continue
            try:
                counters = call.backend.health()
            except Exception:
                log.debug("audio health unavailable", exc_info=True)
                continue
            log.debug("audio health: %s", counters)
            if call.output is not None:
                self._playback.record_played(call)  # also while no assistant track plays
            self._recorder.tick(counters)
            self._host.emit(
                AudioHealth(
                    playback_underruns=int(counters.get("playback_underruns", 0)),
                    playback_overruns=int(counters.get("playback_overruns", 0)),
                    playback_trims=int(counters.get("playback_trims", 0)),
                    capture_dropped_frames=int(counters.get("capture_dropped_frames", 0)),
                    capture_queue_depth=int(counters.get("capture_queue_depth", 0)),
                    playback_queue_ms=float(counters.get("playback_queue_ms", 0.0)),
                )
            )
            await self._report_quality(call, counters)

    async def _report_quality(self, call: CallParts, counters: dict[str, float]) -> None:
        if call.room is None or call.hangup.is_set():
            return
        try:
            stats = await asyncio.wait_for(call.room.get_rtc_stats(), QUALITY_STATS_TIMEOUT_S)
        except Exception:  # a room going away, a slow FFI: the next second tries again
            log.debug("call statistics unavailable", exc_info=True)
            return
        if call.hangup.is_set() or not (stats.publisher_stats or stats.subscriber_stats):
            return  # a room being left has no figures to show, only zeros
        self._host.emit(call.quality.sample(list(stats.publisher_stats), list(stats.subscriber_stats), counters,
                                            call.response.last_ms))

    async def poll_messages(self, call: CallParts) -> None:
        """The web SDK's fallback for data messages lost on the way: the history, every 2 s."""
        assert call.token is not None and call.token.call_id and call.data is not None
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            try:
                messages = await self._host.api().list_messages(call.token.call_id)
            except CallError as exc:
                log.info("message poll failed: %s", exc)
                continue
            for event in call.data.history(messages):
                self._host.emit(event)

    async def tell_api_muted(self, call_id: str, muted: bool) -> None:
        try:
            await self._host.api().set_muted(call_id, muted)
        except CallError as exc:
            log.warning("telling the API about mute=%s failed: %s", muted, exc)
