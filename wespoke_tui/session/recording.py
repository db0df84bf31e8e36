"""`--record DIR` (and the TUI's record key): what is kept of a call, written as it goes.

For each recording, four files named `<start>-<call id>` in DIR:
- `.wav`   stereo 48 kHz: the caller left (what was sent: silence while muted), the assistant
           right (what was played), time-aligned as heard (`wespoke_tui.audio.recording`);
- `.jsonl` the final transcript lines, tool events and notices, one JSON object a line, each
           with `t` (seconds into the recording) and `timestamp` (epoch seconds);
- `.txt`   the same transcript for people: `[mm:ss] You: …`;
- `.json`  a summary: call id, assistant, start, duration, and the turns measured in the audio
           (when the caller stopped speaking, when the assistant's answer was heard).
Everything is flushed about once a second (`flush()`), so a killed process loses at most that.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np

from wespoke_tui.audio.base import SAMPLE_RATE
from wespoke_tui.audio.meter import rms_dbfs
from wespoke_tui.audio.recording import ASSISTANT, CALLER, FLUSH_INTERVAL_S, StereoTimeline, StereoWavFile
from wespoke_tui.errors import RECORDING_ERROR, CallError
from wespoke_tui.events import (
    CallEnding,
    CallEvent,
    ErrorEvent,
    KnowledgeUsed,
    RecordingChanged,
    ToolEvent,
    TranscriptItem,
)
from wespoke_tui.i18n import Texts
from wespoke_tui.presenter import role_words, tool_words
from wespoke_tui.session.turns import TurnTimer


class CallRecording:
    """One recording of one call; `close()` writes the last of it."""

    def __init__(self, directory: Path, call_id: str, assistant_name: str | None, texts: Texts,
                 *, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._t = texts
        self._clock = clock
        self._wall = wall
        self.started_wall = wall()
        stamp = datetime.fromtimestamp(self.started_wall, timezone.utc).strftime("%Y%m%d-%H%M%S")
        stem = directory / f"{stamp}-{_safe(call_id)}"
        self.paths = {kind: stem.with_suffix(f".{kind}") for kind in ("wav", "jsonl", "txt", "json")}
        self.call_id = call_id
        self.assistant_name = assistant_name
        self._wav = StereoWavFile(self.paths["wav"])
        self.timeline = StereoTimeline(self._wav.append, clock=clock)
        self.turns = TurnTimer()
        self._jsonl: IO[str] = open(self.paths["jsonl"], "w", encoding="utf-8", newline="\n")
        self._txt: IO[str] = open(self.paths["txt"], "w", encoding="utf-8", newline="\n")
        self._started = clock()
        self._final_ids: set[str] = set()
        self.closed = False
        self._write_summary()

    @property
    def directory(self) -> Path:
        return self.paths["wav"].parent

    # ---- audio

    def caller(self, frame: np.ndarray, heard_at: float, *, exact: bool = False) -> None:
        at = self.timeline.add(CALLER, frame, heard_at, exact=exact)
        self.turns.add(CALLER, at, frame.size, rms_dbfs(frame))

    def assistant(self, frame: np.ndarray, heard_at: float, *, exact: bool = False) -> None:
        at = self.timeline.add(ASSISTANT, frame, heard_at, exact=exact)
        self.turns.add(ASSISTANT, at, frame.size, rms_dbfs(frame))

    # ---- the transcript

    def event(self, event: CallEvent) -> None:
        if isinstance(event, TranscriptItem):
            if not event.final or event.id in self._final_ids or not event.text.strip():
                return
            self._final_ids.add(event.id)
            self._line({"type": "transcript", "id": event.id, "role": event.role, "text": event.text},
                       f"{role_words(event.role, self._t)}: {event.text}", event.timestamp)
        elif isinstance(event, ToolEvent):
            self._line({"type": "tool", "phase": event.phase, "tool_name": event.tool_name},
                       f"· {tool_words(event.phase, event.tool_name, self._t)}", event.timestamp)
        elif isinstance(event, KnowledgeUsed):
            self._line({"type": "knowledge", "sources": list(event.sources)},
                       f"· {self._t('knowledge.used', sources=', '.join(event.sources))}", event.timestamp)
        elif isinstance(event, CallEnding):
            self._line({"type": "call_ending", "reason": event.reason, "message": event.message},
                       f"· {event.message or self._t('call_ending.notice')}", None)

    def _line(self, record: dict[str, Any], text: str, timestamp: float | None) -> None:
        seconds = self._clock() - self._started
        record = {**record, "t": round(seconds, 3), "timestamp": timestamp if timestamp is not None else self._wall()}
        self._jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")
        minutes, rest = divmod(int(seconds), 60)
        self._txt.write(f"[{minutes:02d}:{rest:02d}] {' '.join(text.split())}\n")

    # ---- keeping it

    def flush(self, *, summary: bool = True) -> None:
        """Write what has settled; `summary` False leaves the summary file for the next one."""
        if self.closed:
            return
        self.timeline.flush()
        self._jsonl.flush()
        self._txt.flush()
        if summary:
            self._write_summary()

    def close(self) -> None:
        if self.closed:
            return
        self.timeline.flush(final=True)
        self._wav.close()
        self._jsonl.close()
        self._txt.close()
        self._write_summary()
        self.closed = True

    def summary(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "assistant": self.assistant_name,
            "started_at": datetime.fromtimestamp(self.started_wall, timezone.utc).isoformat(),
            "duration_s": round(self._clock() - self._started, 3),
            "audio_seconds": round(self._wav.frames / SAMPLE_RATE, 3),
            "files": {kind: path.name for kind, path in self.paths.items()},
            "turns": list(self.turns.turns),
        }

    def _write_summary(self) -> None:
        path = self.paths["json"]
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.summary(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8", newline="\n")
        os.replace(temporary, path)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "call"


class CallRecorder:
    """The session's side of recording: on and off, and when each frame was heard.

    `directory` None: nothing can be recorded. Failures to write are said once as a non-fatal
    `RECORDING_ERROR` and stop the recording; the call goes on.
    """

    def __init__(self, directory: Path | None, texts: Texts, emit: Callable[[CallEvent], None],
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory
        self.recording: CallRecording | None = None
        self._t = texts
        self._emit = emit
        self._clock = clock
        self._input_latency_s = 0.0
        self._flushed_at = 0.0

    @property
    def active(self) -> bool:
        return self.recording is not None

    def start(self, call_id: str, assistant_name: str | None) -> bool:
        if self.recording is not None:
            return True
        if self.directory is None:
            return False
        try:
            self.recording = CallRecording(self.directory, call_id, assistant_name, self._t, clock=self._clock)
        except OSError as exc:
            self._failed(exc)
            return False
        self._emit(RecordingChanged(True, str(self.recording.paths["wav"])))
        return True

    def stop(self) -> None:
        recording, self.recording = self.recording, None
        if recording is None:
            return
        try:
            recording.close()
        except OSError as exc:
            self._failed(exc)
            return
        self._emit(RecordingChanged(False, str(recording.paths["wav"])))

    def mic(self, frame: np.ndarray, muted: bool, captured_at: float | None = None) -> None:
        """A microphone frame that just reached the session; `captured_at`, when the input knows
        it, is when its first sample entered the microphone (else: ~one frame and the device's
        latency ago)."""
        if self.recording is not None:
            now = self._clock()
            heard_at = captured_at if captured_at is not None else now - frame.size / SAMPLE_RATE - self._input_latency_s
            # An input's own time is on its sample clock (`SoundDeviceCapture`'s `DeviceClock`, a
            # file's); ours, taken when the frame reached the loop, jitters.
            self._guard(lambda: self.recording.caller(np.zeros_like(frame) if muted else frame, heard_at,
                                                      exact=captured_at is not None) if self.recording else None)
            if now - self._flushed_at >= FLUSH_INTERVAL_S and self.recording is not None:
                self._flushed_at = now
                self._guard(lambda: self.recording.flush(summary=False) if self.recording else None)

    def speaker(self, frame: np.ndarray, delay_s: float) -> None:
        """An assistant frame handed to the speaker now, heard `delay_s` from now."""
        if self.recording is not None:
            self._guard(self.recording.assistant, frame, self._clock() + delay_s)

    def played(self, block: np.ndarray, heard_at: float) -> None:
        """A block the speaker played, its first sample heard at `heard_at` on the output's own
        sample clock (`PlayedTap`)."""
        if self.recording is not None:
            self._guard(lambda: self.recording.assistant(block, heard_at, exact=True) if self.recording else None)

    def event(self, event: CallEvent) -> None:
        if self.recording is not None and not isinstance(event, RecordingChanged):
            self._guard(self.recording.event, event)

    def tick(self, counters: dict[str, float]) -> None:
        """About once a second: the devices' latencies as measured, and a flush (the microphone's
        frames flush more often; this one covers a call without a microphone)."""
        self._input_latency_s = float(counters.get("input_latency_ms", 0.0)) / 1000
        if self.recording is not None:
            self._flushed_at = self._clock()
            self._guard(self.recording.flush)

    def _guard(self, write: Callable[..., None], *args: Any) -> None:
        try:
            write(*args)
        except OSError as exc:  # a full disk, a removed folder: the call matters more
            recording, self.recording = self.recording, None
            if recording is not None:
                with contextlib.suppress(OSError):
                    recording.close()
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        error = CallError.of(RECORDING_ERROR, f"recording: {exc.strerror or exc}")
        self._emit(ErrorEvent(error, fatal=False))
        self._emit(RecordingChanged(False, None))
