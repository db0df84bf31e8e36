"""Turn-taking measured in the audio: when the caller stopped speaking and when the assistant's
answer was heard, on one timeline of samples. The recording's summary lists the turns; the call
quality panel shows the last response time."""

from __future__ import annotations

from wespoke_tui.audio.base import SAMPLE_RATE
from wespoke_tui.audio.recording import ASSISTANT, CALLER

SPEECH_DBFS = -40.0  # a frame louder than this is speech (the rig's and a quiet room's floor is far below)
MIN_SPEECH_S = 0.2  # shorter bursts are not an utterance
END_OF_TURN_S = 0.4  # this much quiet after speech ends a caller's turn
MAX_PENDING_ONSETS = 8


class TurnTimer:
    """Finds the caller's turns and the assistant's answers on one timeline (in samples): the
    response time is from the end of the caller's speech to the first answer heard."""

    def __init__(self, rate: int = SAMPLE_RATE, *, keep_turns: bool = True) -> None:
        self.rate = rate
        self.turns: list[dict[str, float]] = []  # the recording's; `last_response_ms` for the rest
        self._speech = [_Runs(rate), _Runs(rate)]
        self._waiting_ends: list[int] = []  # caller turn ends without an answer yet
        self._onsets: list[int] = []  # assistant answer starts not matched yet
        self.last_response_ms: float | None = None
        self.keep_turns = keep_turns

    def add(self, side: int, at: int, size: int, dbfs: float) -> None:
        """A frame of `size` samples at sample `at` of the timeline, `dbfs` loud."""
        loud = dbfs > SPEECH_DBFS
        runs = self._speech[side]
        if side == CALLER:
            if loud and runs.idle:
                self._waiting_ends.clear()  # the caller speaks again: a turn still unanswered stays so
            ended = runs.push(at, size, loud)
            if ended is not None:
                self._waiting_ends.append(ended)
        elif runs.onset(at, size, loud):
            # Kept a little while (a caller's turn is known to have ended only END_OF_TURN_S
            # after it did, and a quick answer may start before that), but not for a whole call.
            self._onsets = [*self._onsets[-(MAX_PENDING_ONSETS - 1):], at]
        self._match()

    def _match(self) -> None:
        while self._waiting_ends and self._onsets:
            end = self._waiting_ends[0]
            later = [onset for onset in self._onsets if onset >= end]
            if not later:
                self._onsets.clear()
                return
            answer = later[0]
            self._onsets = [onset for onset in self._onsets if onset > answer]
            self._waiting_ends.pop(0)
            self.last_response_ms = (answer - end) * 1000 / self.rate
            if self.keep_turns:
                self.turns.append({"user_stopped_s": round(end / self.rate, 3),
                                   "assistant_started_s": round(answer / self.rate, 3),
                                   "response_ms": round(self.last_response_ms)})


class _Runs:
    """Speech runs of one side: an utterance is MIN_SPEECH_S of speech, ended by END_OF_TURN_S of quiet."""

    def __init__(self, rate: int) -> None:
        self._rate = rate
        self._start: int | None = None
        self._last_loud_end: int | None = None

    @property
    def idle(self) -> bool:
        """No utterance under way."""
        return self._start is None

    def push(self, at: int, size: int, loud: bool) -> int | None:
        """The end of an utterance (a sample) once its quiet has lasted END_OF_TURN_S, else None."""
        if loud:
            if self._start is None:
                self._start = at
            self._last_loud_end = at + size
            return None
        if self._start is None or self._last_loud_end is None:
            return None
        if at + size - self._last_loud_end < END_OF_TURN_S * self._rate:
            return None
        long_enough = self._last_loud_end - self._start >= MIN_SPEECH_S * self._rate
        end, self._start, self._last_loud_end = self._last_loud_end, None, None
        return end if long_enough else None

    def onset(self, at: int, size: int, loud: bool) -> bool:
        """True for the first loud frame after END_OF_TURN_S of quiet (or ever)."""
        quiet_before = self._last_loud_end is None or at - self._last_loud_end >= END_OF_TURN_S * self._rate
        if loud:
            self._last_loud_end = at + size
        return loud and quiet_before


class ResponseTimer:
    """A call's last response time, from its audio as heard: the microphone's frames when they
    were captured, the assistant's when they are played (times on the monotonic clock)."""

    def __init__(self) -> None:
        self._turns = TurnTimer(keep_turns=False)
        self._origin: float | None = None

    @property
    def last_ms(self) -> float | None:
        return self._turns.last_response_ms

    def caller(self, size: int, dbfs: float, heard_at: float) -> None:
        self._turns.add(CALLER, self._at(heard_at), size, dbfs)

    def assistant(self, size: int, dbfs: float, heard_at: float) -> None:
        self._turns.add(ASSISTANT, self._at(heard_at), size, dbfs)

    def _at(self, heard_at: float) -> int:
        if self._origin is None:
            self._origin = heard_at
        return round((heard_at - self._origin) * SAMPLE_RATE)
