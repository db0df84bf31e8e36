"""The microphone as the user sees it on the native path, where no frame reaches Python: read
from the room's statistics of the published source, `POLL_S` apart (the meter's own rate).

`audio_level` is the meter and the caller's side of the turn timing. Digital silence
(MICROPHONE_SILENT, as on the Python path) has to be read from the module's processed audio:
from exact zeros at the microphone its processing puts out a level of 0 or 1/32767 in turn, so
"energy that never grows" misses silent microphones; and a real floor can come out at one LSB
too while the gain control starts, so "no louder than one LSB" alone calls a working microphone
silent (what the rig showed of both: see BENCHMARKS.md). `ProcessedSilence`: a run
of polls no louder than one LSB (`SILENT_POWER`) counts once a poll in it had no energy at all,
which only exact zeros at the microphone gave.

The same statistics tell when the module lost its microphone: a source that runs counts samples
(`total_samples_duration`); one whose count stood for `LOST_AFTER_S` while unmuted is gone, and
the session moves the call to the Python path (`NativeView.lost`), once. The speaker has no such
figure here: the SDK's statistics carry no media-playout report, and the inbound stream's sample
count goes on with the sink suspended (on the rig). A removed speaker is the sound server's to
handle: PulseAudio moves the module's stream to the new default output (tested on the rig), as
Core Audio and Windows' default-device routing do.
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
from wespoke_tui.audio.meter import Level
from wespoke_tui.events import SILENCE_DBFS, CallEvent
from wespoke_tui.session.parts import CallParts
from wespoke_tui.session.silence import silence_event
from wespoke_tui.session.turns import ResponseTimer

log = logging.getLogger(__name__)

POLL_S = 0.1
STATS_TIMEOUT_S = 1.0
SILENT_POWER = (1.5 / 32767) ** 2  # mean level² of a source at most one LSB loud
LOST_AFTER_S = 2.0  # a device whose sample count stood this long is gone (a busy machine stalls < 1 s)


@dataclass(frozen=True, slots=True)
class NativeView:
    """What the level task needs of its session."""

    muted: Callable[[], bool]
    emit: Callable[[CallEvent], None]
    emit_levels: Callable[[Level], None]
    response: Callable[[], ResponseTimer]
    lost: Callable[[str], object]  # the module's microphone is gone: why, in words for the log


class DeviceWatch:
    """Whether a device that ran has stopped counting samples (see the module docstring)."""

    def __init__(self) -> None:
        self._count: float | None = None
        self._ran = False
        self._since = 0.0  # when the count last moved, or was not expected to

    def stopped(self, count: float, now: float, *, expected: bool = True) -> bool:
        moved = self._count is not None and count > self._count
        self._count = count
        self._ran = self._ran or moved
        if moved or not expected:
            self._since = now
        return self._ran and now - self._since >= LOST_AFTER_S


class ProcessedSilence:
    """Whether the module's microphone gives digital silence, poll by poll (module docstring)."""

    def __init__(self) -> None:
        self._zero_in_run = False

    def poll(self, energy_growth: float, duration_growth: float) -> bool:
        if duration_growth <= 0:
            return False
        if energy_growth <= 0:
            self._zero_in_run = True
        elif energy_growth > SILENT_POWER * duration_growth:
            self._zero_in_run = False
        return self._zero_in_run


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
    mic_watch, processed = DeviceWatch(), ProcessedSilence()
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
        now = time.monotonic()
        audio = source_audio(stats)
        if audio is None:
            continue
        if mic_watch.stopped(float(audio.total_samples_duration), now, expected=not view.muted()):
            view.lost(f"the native module's microphone stopped capturing for {LOST_AFTER_S:.0f} s")
            return
        dbfs = level_dbfs(float(audio.audio_level))
        view.emit_levels(Level(dbfs, dbfs))
        view.response().caller(round(POLL_S * SAMPLE_RATE), dbfs, now)
        ran = duration is not None and audio.total_samples_duration > duration
        silent = ran and energy is not None and duration is not None and processed.poll(
            audio.total_audio_energy - energy, audio.total_samples_duration - duration)
        energy, duration = float(audio.total_audio_energy), float(audio.total_samples_duration)
        if not ran:
            continue
        change = call.silence.frame(POLL_S, silent, view.muted())
        if (event := silence_event(change)) is not None:
            view.emit(event)
