"""The call-quality figures: the room's WebRTC statistics, the audio engine's counters and the
last response time, as one `CallQuality` a second, rated good, fair or poor.

Thresholds (a figure past `fair` makes the call fair, past `poor` poor; the worst one wins):

| figure                                   | fair above | poor above |
|------------------------------------------|------------|------------|
| round-trip time to the server            | 300 ms     | 600 ms     |
| jitter of the assistant's audio          | 30 ms      | 60 ms      |
| packets of the assistant's audio lost    | 2 %        | 8 %        |
| playback underruns in the last 10 s      | 0          | 3          |

They follow the ITU-T G.114 guidance (a one-way delay past 150 ms is noticed, past 300 ms it
disturbs a conversation) and what WebRTC's own audio concealment hides (a couple of percent of
loss, tens of ms of jitter).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from wespoke_tui.events import CallQuality, QualityLevel

RTT_MS = (300.0, 600.0)
JITTER_MS = (30.0, 60.0)
LOSS_PCT = (2.0, 8.0)
UNDERRUNS = (0, 3)
UNDERRUN_WINDOW_S = 10.0


def rate(quality: CallQuality) -> QualityLevel:
    """The level the figures of `quality` call for (its own `level` is ignored)."""
    checks = [
        (quality.rtt_ms, RTT_MS),
        (quality.jitter_ms, JITTER_MS),
        (quality.packet_loss_pct, LOSS_PCT),
        (float(quality.underruns), (float(UNDERRUNS[0]), float(UNDERRUNS[1]))),
    ]
    level = QualityLevel.GOOD
    for value, (fair, poor) in checks:
        if value is None:
            continue
        if value > poor:
            return QualityLevel.POOR
        if value > fair:
            level = QualityLevel.FAIR
    return level


class QualityMonitor:
    """Turns successive statistics into per-interval figures."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}
        self._last_at: float | None = None
        self._underruns: deque[tuple[float, float]] = deque()

    def sample(self, publisher: list[Any], subscriber: list[Any], counters: Mapping[str, float],
               response_ms: float | None) -> CallQuality:
        """`publisher` / `subscriber`: the room's `get_rtc_stats()` lists (`rtc.stats.RtcStats`)."""
        now = self._clock()
        elapsed = None if self._last_at is None else now - self._last_at
        self._last_at = now
        totals = {"received": 0.0, "lost": 0.0, "bytes_in": 0.0, "bytes_out": 0.0}
        jitter: list[float] = []
        rtts: list[float] = []
        # One peer connection carries both directions when the server offers it (the subscriber
        # list is then empty), so the two lists are read as one.
        for stats in [*publisher, *subscriber]:
            kind = stats.WhichOneof("stats")
            if kind == "inbound_rtp" and stats.inbound_rtp.stream.kind == "audio":
                received = stats.inbound_rtp.received
                totals["received"] += received.packets_received
                totals["lost"] += max(0, received.packets_lost)
                totals["bytes_in"] += stats.inbound_rtp.inbound.bytes_received
                jitter.append(received.jitter * 1000)
            elif kind == "outbound_rtp" and stats.outbound_rtp.stream.kind == "audio":
                totals["bytes_out"] += stats.outbound_rtp.sent.bytes_sent
            elif kind == "candidate_pair":
                rtts.extend(_pair_rtt_ms(stats))
        deltas = {k: v - self._last.get(k, 0.0) for k, v in totals.items()} if self._last else None
        self._last = totals
        loss = bitrate_in = bitrate_out = None
        if deltas is not None and elapsed:
            packets = deltas["received"] + deltas["lost"]
            loss = 100.0 * deltas["lost"] / packets if packets > 0 else 0.0
            bitrate_in = max(0.0, deltas["bytes_in"]) * 8 / 1000 / elapsed
            bitrate_out = max(0.0, deltas["bytes_out"]) * 8 / 1000 / elapsed
        quality = CallQuality(
            level=QualityLevel.GOOD,
            rtt_ms=min(rtts) if rtts else None,
            jitter_ms=max(jitter) if jitter else None,
            packet_loss_pct=loss,
            bitrate_in_kbps=bitrate_in,
            bitrate_out_kbps=bitrate_out,
            playback_buffer_ms=counters.get("playback_queue_ms"),
            underruns=self._recent_underruns(now, counters.get("playback_underruns")),
            aec_delay_ms=counters.get("aec_delay_ms"),
            response_ms=response_ms,
        )
        return CallQuality(**{**_fields(quality), "level": rate(quality)})

    def _recent_underruns(self, now: float, total: float | None) -> int:
        if total is None:
            return 0
        self._underruns.append((now, total))
        while self._underruns and self._underruns[0][0] < now - UNDERRUN_WINDOW_S:
            self._underruns.popleft()
        return int(total - self._underruns[0][1])


def _pair_rtt_ms(stats: Any) -> list[float]:
    """The nominated pair's RTT once a STUN check has been answered. On loopback the RTT is below
    the stats' 1 ms resolution and reads 0.0, which is a measurement, not a missing one."""
    pair = stats.candidate_pair.candidate_pair
    if not pair.nominated or pair.responses_received == 0:
        return []
    if pair.current_round_trip_time > 0:
        return [pair.current_round_trip_time * 1000]
    return [pair.total_round_trip_time / pair.responses_received * 1000]


def _fields(quality: CallQuality) -> dict[str, Any]:
    return {name: getattr(quality, name) for name in quality.__dataclass_fields__}
