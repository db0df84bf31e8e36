"""The microphone as the user sees it on the native path, where no frame reaches Python: read
from the room's statistics of the published source, `POLL_S` apart (the meter's own rate).

`audio_level` is the meter and the caller's side of the turn timing; `total_audio_energy` not
growing while the source runs is digital silence (MICROPHONE_SILENT, as on the Python path).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wespoke_tui.audio.base import SAMPLE_RATE
from wespoke_tui.audio.meter import SILENCE_DBFS, Level
from wespoke_tui.events import CallEvent
from wespoke_tui.session.parts import CallParts
from wespoke_tui.session.silence import silence_event
from wespoke_tui.session.turns import ResponseTimer

log = logging.getLogger(__name__)

POLL_S = 0.1
STATS_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class NativeView:
    """What the level task needs of its session."""

    muted: Callable[[], bool]
    emit: Callable[[CallEvent], None]
    emit_levels: Callable[[Level], None]
    response: Callable[[], ResponseTimer]
    lang: str = "en"


def source_audio(stats: Any) -> Any | None:
    """The audio figures of the published microphone source in a `get_rtc_stats()` answer."""
    for report in stats.publisher_stats:
        if report.HasField("media_source") and report.media_source.source.kind == "audio":
            return report.media_source.audio
    return None


def level_dbfs(audio_level: float) -> float:
    return SILENCE_DBFS if audio_level <= 0 else max(SILENCE_DBFS, 20 * math.log10(audio_level))


async def native_levels(view: NativeView, call: CallParts) -> None:
    energy: float | None = None
    duration: float | None = None
    while not call.hangup.is_set():
        await asyncio.sleep(POLL_S)
        room = call.room
        if room is None:
            continue
        try:
            stats = await asyncio.wait_for(room.get_rtc_stats(), STATS_TIMEOUT_S)
        except Exception:  # a room going away, a slow FFI: the next poll tries again
            log.debug("native levels unavailable", exc_info=True)
            continue
        audio = source_audio(stats)
        if audio is None:
            continue
        dbfs = level_dbfs(float(audio.audio_level))
        view.emit_levels(Level(dbfs, dbfs))
        view.response().caller(round(POLL_S * SAMPLE_RATE), dbfs, time.monotonic())
        ran = duration is not None and audio.total_samples_duration > duration
        silent = ran and energy is not None and audio.total_audio_energy <= energy
        energy, duration = float(audio.total_audio_energy), float(audio.total_samples_duration)
        if not ran:
            continue
        change = call.silence.frame(POLL_S, silent, view.muted())
        if (event := silence_event(change, view.lang)) is not None:  # type: ignore[arg-type]
            view.emit(event)
