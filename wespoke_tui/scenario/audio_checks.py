"""Audio checks of a scenario run, read from its stereo recording (caller left, assistant right):
talk-over outside barge-in turns, dead air inside an answer, a missed reply, an answer too quiet
or clipped. Findings are per turn; the scenario's `[gates] audio` says which fail a turn.

What the checks look at, in 20 ms windows (`WINDOW_S`) of each channel:
- **sound**: a window whose RMS is above its channel's threshold: `SILENCE_DBFS` (−50 dBFS), or
  `FLOOR_MARGIN_DB` (12 dB) above the channel's own noise floor (the 10th percentile of its
  windows' RMS) when that is higher, at most `MAX_THRESHOLD_DBFS` (−30 dBFS). Not relative to the
  channel's speech level: one quiet answer among loud ones would vanish (a missed reply instead
  of a `level` finding). An answer quieter than −50 dBFS is silence here.
- **a turn's window**: from its start (the caller's speech began; a typed turn: the text sent; a
  wait: its start) to the next turn's start, or the recording's end. The greeting before turn 1
  is no turn's.
- **the answer**: the sound on the right from the turn's end to the window's end; sound already
  under way at the turn's end (the previous answer going on under a barge-in, an echo) is not part
  of it when `CARRY_QUIET_S` of silence and then more sound follow. Less than `MIN_REPLY_S` of sound
  is no answer.

The checks:
- `talk_over` (not in barge-in turns): both sides speaking at once, each side's pauses up to
  `BRIDGE_S` filled in (the gaps between syllables and words); stretches shorter than
  `MIN_OVERLAP_S` (0.2 s) are left out (an echo's tail, the jitter where one side stops and the
  other starts). Value: the ms of the stretches kept.
- `dead_air`: the longest silence between the answer's first and last sound, over `DEAD_AIR_S`
  (2.0 s, exclusive; measured to the window, so up to 40 ms short). Value: its ms.
- `missed_reply` (spoken turns): no answer in the window. Value: the window's seconds after the
  turn's end.
- `level`: the answer's RMS over its sound windows under `QUIET_DBFS` (−35 dBFS), or more than
  `CLIPPED_RATIO` (0.1 %) of its samples (first to last sound) at full scale (+32767 or −32768).
  Value: the dBFS, or the clipped fraction; `detail` says which.

Times: the runner's turn times are epoch seconds; the recording's `.json` summary gives the wall
time its recorder was made (`started_at`, to the microsecond), which is not quite the WAV's t=0:
that is when the first frame laid on the timeline was heard (in a scenario call, most often the
microphone's next frame, up to 20 ms later; an assistant frame queued ahead of the player, later
still). `check_recording` lines the spans up with the caller's channel: the runner's `ended_at`
of a spoken turn is the sample after its last one above −40 dBFS, which the left channel has too
(`align`: the median of the spoken turns' differences, each looked for within `ALIGN_SEARCH_S`).

One read of the WAV (the header with stdlib `wave`, the samples read straight into numpy), the
windows' levels in blocks: a 10-minute call is checked in 0.1-0.3 s on a busy 2-core machine
(tests/test_audio_checks.py measures it).
"""

from __future__ import annotations

import json
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wespoke_tui.scenario.model import Action, AudioCheck

if TYPE_CHECKING:
    from wespoke_tui.scenario.runner import RunResult

WINDOW_S = 0.02
SILENCE_DBFS = -50.0
FLOOR_MARGIN_DB = 12.0
FLOOR_PERCENTILE = 10
MAX_THRESHOLD_DBFS = -30.0
BRIDGE_S = 0.3
MIN_OVERLAP_S = 0.2
DEAD_AIR_S = 2.0
MIN_REPLY_S = 0.2
CARRY_QUIET_S = 0.5
QUIET_DBFS = -35.0
CLIPPED_RATIO = 0.001
SPEECH_LEVEL = 328  # the runner's end of speech: the last |sample| above this (−40 dBFS)
ALIGN_SEARCH_S = 0.5  # the caller's speech end is looked for this far either side of the runner's
ALIGN_QUIET_S = 0.15  # an end of speech is followed by this much below SPEECH_LEVEL
BLOCK_WINDOWS = 4096  # one side's windows converted to float at a time (16 MB at 48 kHz)
FULL_SCALE = 32768.0


@dataclass(frozen=True, slots=True)
class AudioFinding:
    """One thing the recording shows about a turn: which check, its measure, and where."""

    check: AudioCheck
    turn: int
    value: float  # ms of talk-over, ms of dead air, s of a missed reply's window, dBFS or clipped fraction
    at_s: float | None = None  # seconds into the recording
    detail: str = ""  # for people: what was found, with the limit


@dataclass(frozen=True, slots=True)
class TurnSpan:
    """A turn on the recording's timeline (seconds from its t=0)."""

    number: int
    start_s: float  # the caller's speech began (a typed turn: the text sent; a wait: its start)
    end_s: float  # the answer is looked for from here: the caller's speech ended, the text sent
    spoken: bool = True  # say / say_wav: a missing answer is a `missed_reply`
    barge_in: bool = False  # talk-over is the point of it
    until_s: float | None = None  # the window's end; None: the next span's start, or the recording's end


@dataclass(frozen=True, slots=True)
class TurnAudio:
    """The figures of one turn, with or without findings."""

    number: int
    window_s: tuple[float, float]
    answer_s: tuple[float, float] | None  # its first and last sound; None: no answer
    answer_dbfs: float | None  # RMS over the answer's sound windows
    peak_dbfs: float | None
    clipped: float  # fraction of the answer's samples at full scale
    longest_gap_ms: float  # inside the answer
    overlap_ms: float  # talk-over kept (also measured in barge-in turns, where it is no finding)
    findings: tuple[AudioFinding, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        def r(x: float | None, n: int = 1) -> float | None:
            return None if x is None else round(x, n)

        return {"turn": self.number, "window_s": [round(t, 3) for t in self.window_s],
                "answer_s": None if self.answer_s is None else [round(t, 3) for t in self.answer_s],
                "answer_dbfs": r(self.answer_dbfs), "peak_dbfs": r(self.peak_dbfs), "clipped": round(self.clipped, 6),
                "longest_gap_ms": round(self.longest_gap_ms), "overlap_ms": round(self.overlap_ms),
                "findings": [{"check": f.check.value, "value": round(f.value, 6), "at_s": r(f.at_s, 3),
                              "detail": f.detail} for f in self.findings]}


@dataclass(frozen=True, slots=True)
class RecordingAudio:
    """What `check_recording` found: each turn's figures and findings."""

    seconds: float  # the recording's length
    shift_s: float  # added to the spans' times to line them up with the caller's channel
    thresholds_dbfs: tuple[float, float]  # sound on the caller's side, on the assistant's
    turns: dict[int, TurnAudio] = field(default_factory=dict)

    def findings(self) -> dict[int, list[AudioFinding]]:
        return {number: list(turn.findings) for number, turn in self.turns.items()}


class _Levels:
    """The recording read once: samples, and each 20 ms window's level and sound per channel."""

    def __init__(self, wav: Path) -> None:
        with open(wav, "rb") as raw:
            with wave.open(raw) as f:  # reads the header, up to the samples
                if f.getnchannels() != 2 or f.getsampwidth() != 2:
                    raise ValueError(f"{wav}: not a 16-bit stereo WAV")
                self.rate, frames = f.getframerate(), f.getnframes()
            data = np.empty((frames, 2), dtype="<i2")  # read straight in: no copy of 100 MB of bytes
            got = raw.readinto(data.data.cast("B"))
        self.data = data[:got // 4]
        self.size = round(self.rate * WINDOW_S)
        count: int = self.data.shape[0] // self.size
        power = np.empty((count, 2), dtype=np.float64)
        for side in (0, 1):
            windows = self.data[:count * self.size, side].reshape(count, self.size)  # a view
            for first in range(0, count, BLOCK_WINDOWS):
                block = windows[first:first + BLOCK_WINDOWS].astype(np.float32)  # contiguous: einsum's fast path
                power[first:first + BLOCK_WINDOWS, side] = np.einsum("ws,ws->w", block, block)
        power /= self.size * FULL_SCALE**2
        self.power = power
        self.dbfs = 10 * np.log10(np.maximum(power, 1e-10))
        self.thresholds = tuple(_threshold(self.dbfs[:, side]) for side in (0, 1))
        self.sound = self.dbfs > np.array(self.thresholds)
        bridge = round(BRIDGE_S / WINDOW_S)  # over the whole call: a pause at a turn's start is one too
        self.speaking = np.stack([_bridged(self.sound[:, side], bridge) for side in (0, 1)], axis=1)
        self.count = count
        self.seconds = self.data.shape[0] / self.rate

    def window(self, seconds: float) -> int:
        return min(max(int(seconds / WINDOW_S + 1e-9), 0), self.count)  # 0.06 / 0.02 is 2.99…

    def seconds_of(self, window: int) -> float:
        return window * WINDOW_S


def _threshold(dbfs: np.ndarray) -> float:
    if not dbfs.size:
        return SILENCE_DBFS
    floor = float(np.percentile(dbfs, FLOOR_PERCENTILE))
    return max(SILENCE_DBFS, min(floor + FLOOR_MARGIN_DB, MAX_THRESHOLD_DBFS))


def check_recording(wav: Path, spans: Sequence[TurnSpan], *, align: bool = True) -> RecordingAudio:
    """Check each turn of `spans` in the stereo recording `wav`. `align`: move the spans to where
    the caller's channel has the ends of the spoken turns (see the module's docstring).
    Raises OSError (unreadable) or ValueError (not a 16-bit stereo WAV)."""
    levels = _Levels(wav)
    shift = _shift(levels, spans) if align else 0.0
    ordered = sorted((replace(s, start_s=s.start_s + shift, end_s=s.end_s + shift,
                              until_s=None if s.until_s is None else s.until_s + shift) for s in spans),
                     key=lambda s: s.start_s)
    turns = {}
    for i, span in enumerate(ordered):
        until = span.until_s if span.until_s is not None else (
            ordered[i + 1].start_s if i + 1 < len(ordered) else levels.seconds)
        turns[span.number] = _check_turn(levels, span, until)
    return RecordingAudio(levels.seconds, shift, (levels.thresholds[0], levels.thresholds[1]), turns)


def _check_turn(levels: _Levels, span: TurnSpan, until: float) -> TurnAudio:
    first, last = levels.window(span.start_s), max(levels.window(span.start_s), levels.window(until))
    findings: list[AudioFinding] = []
    number = span.number

    # Talk-over: both sides speaking, pauses bridged; short stretches left out.
    both = levels.speaking[first:last, 0] & levels.speaking[first:last, 1]
    starts, ends = _runs(both)
    kept = (ends - starts) >= round(MIN_OVERLAP_S / WINDOW_S)
    overlap_ms = float((ends - starts)[kept].sum()) * WINDOW_S * 1000
    if overlap_ms and not span.barge_in:
        at = levels.seconds_of(first + int(starts[kept][0]))
        findings.append(AudioFinding(AudioCheck.TALK_OVER, number, overlap_ms, at,
                                     f"both sides spoke at once for {overlap_ms:.0f} ms (from {at:.2f} s)"))

    # The answer: the assistant's sound from the turn's end, past what was still going on then.
    begin = min(max(levels.window(span.end_s), first), last)
    sound = levels.sound[begin:last, 1]
    offset = _carried_over(sound, begin > 0 and bool(levels.sound[begin - 1, 1]))
    heard = np.flatnonzero(sound[offset:]) + offset + begin
    window = (levels.seconds_of(first), levels.seconds_of(last))
    if heard.size * WINDOW_S < MIN_REPLY_S:
        if span.spoken:
            wait = max(until - span.end_s, 0.0)
            findings.append(AudioFinding(AudioCheck.MISSED_REPLY, number, wait, span.end_s,
                                         f"no answer in the {wait:.1f} s after the turn"))
        return TurnAudio(number, window, None, None, None, 0.0, 0.0, overlap_ms, tuple(findings))

    # Dead air: the longest silence between the answer's first and last sound.
    gaps = np.diff(heard) - 1
    longest = int(gaps.max()) if gaps.size else 0
    gap_ms = longest * WINDOW_S * 1000
    if longest * WINDOW_S > DEAD_AIR_S:
        at = levels.seconds_of(int(heard[int(np.argmax(gaps))]) + 1)
        findings.append(AudioFinding(AudioCheck.DEAD_AIR, number, gap_ms, at,
                                     f"{gap_ms / 1000:.1f} s of silence inside the answer (from {at:.2f} s; "
                                     f"limit {DEAD_AIR_S:g} s)"))

    # Level: RMS over the sound windows; clipping over every sample from first to last sound.
    answer_dbfs = 10 * float(np.log10(max(float(levels.power[heard, 1].mean()), 1e-10)))
    samples = levels.data[int(heard[0]) * levels.size:(int(heard[-1]) + 1) * levels.size, 1]
    high, low = int(samples.max()), int(samples.min())
    peak_dbfs = 20 * float(np.log10(max(high, -low, 1) / FULL_SCALE))
    clipped = np.count_nonzero((samples == 32767) | (samples == -32768)) / samples.size
    answer = (levels.seconds_of(int(heard[0])), levels.seconds_of(int(heard[-1]) + 1))
    if clipped > CLIPPED_RATIO:
        findings.append(AudioFinding(AudioCheck.LEVEL, number, clipped, answer[0],
                                     f"clipped: {clipped:.2%} of the answer's samples at full scale "
                                     f"(limit {CLIPPED_RATIO:.1%})"))
    if answer_dbfs < QUIET_DBFS:
        findings.append(AudioFinding(AudioCheck.LEVEL, number, answer_dbfs, answer[0],
                                     f"too quiet: the answer at {answer_dbfs:.1f} dBFS (limit {QUIET_DBFS:g} dBFS)"))
    return TurnAudio(number, window, answer, answer_dbfs, peak_dbfs, clipped, gap_ms, overlap_ms, tuple(findings))


def _carried_over(sound: np.ndarray, before: bool) -> int:
    """Where the answer begins in `sound` (the assistant's windows from the turn's end): past
    the sound under way at the turn's end when silence and more sound follow it, else 0."""
    if not sound.size or not (before or sound[0]):
        return 0
    quiet = round(CARRY_QUIET_S / WINDOW_S)
    starts, ends = _runs(~sound)
    for start, end in zip(starts, ends, strict=True):
        if end - start >= quiet and end < sound.size:
            return int(end)
    return 0


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The starts and ends (exclusive) of the True runs of a boolean array."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _bridged(mask: np.ndarray, gap: int) -> np.ndarray:
    """`mask` with its False runs of at most `gap` between True ones made True."""
    on = np.flatnonzero(mask)
    if on.size < 2:
        return mask
    holes = np.diff(on) - 1
    fill = (holes > 0) & (holes <= gap)
    marks = np.zeros(mask.size + 1, dtype=np.int32)
    np.add.at(marks, on[:-1][fill] + 1, 1)
    np.add.at(marks, on[1:][fill], -1)
    return mask | (np.cumsum(marks[:-1]) > 0)


def _shift(levels: _Levels, spans: Sequence[TurnSpan]) -> float:
    """How far the spoken turns' ends sit from where the caller's channel has them (the median)."""
    caller, rate = levels.data[:, 0], levels.rate
    search, quiet = round(ALIGN_SEARCH_S * rate), round(ALIGN_QUIET_S * rate)
    shifts = []
    for span in spans:
        if not span.spoken:
            continue
        expected = round(span.end_s * rate)
        low, high = max(expected - search, 0), min(expected + search + quiet, caller.size)
        if high <= low:
            continue
        loud = np.flatnonzero(np.abs(caller[low:high].astype(np.int32)) > SPEECH_LEVEL)
        if not loud.size:
            continue
        ends = loud[np.append(np.diff(loud) > quiet, True)] + 1 + low  # each followed by `quiet` of silence
        ends = ends[(ends + quiet <= high) & (np.abs(ends - expected) <= search)]
        if ends.size:
            shifts.append(int(ends[np.argmin(np.abs(ends - expected))]) - expected)
    return float(np.median(shifts)) / rate if shifts else 0.0


# ---- from a run ------------------------------------------------------------------------------


def recording_start(wav: Path) -> float:
    """The epoch seconds of the recording's start, from its `.json` summary's `started_at`."""
    summary = json.loads(wav.with_suffix(".json").read_text(encoding="utf-8"))
    try:
        return datetime.fromisoformat(summary["started_at"]).timestamp()
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{wav.with_suffix('.json')}: no valid 'started_at'") from None


def spans_from(run: RunResult, start: float | None = None) -> list[TurnSpan]:
    """The turns of `run` on its recording's timeline (`start`: its epoch t=0, else from the
    summary). A turn without times (the call had ended before it) has no span. A spoken turn
    without `spoke_at` starts at its `ended_at` (its own speech is then outside its window)."""
    if run.recording is None:
        raise ValueError("the run has no recording")
    if start is None:
        start = recording_start(Path(run.recording))
    spans = []
    for result in run.turns:
        turn = result.turn
        began = result.spoke_at if result.spoke_at is not None else result.ended_at
        if began is None:
            continue
        ended = result.ended_at if turn.action is not Action.WAIT and result.ended_at is not None else began
        spans.append(TurnSpan(turn.number, began - start, ended - start, spoken=turn.spoken, barge_in=turn.barge_in))
    return spans


def check_run(run: RunResult) -> RecordingAudio | None:
    """`check_recording` of a run's recording (None: the run was not recorded)."""
    if run.recording is None:
        return None
    return check_recording(Path(run.recording), spans_from(run))
