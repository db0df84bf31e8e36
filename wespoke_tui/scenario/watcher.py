"""What a scenario call shows its runner: the assistant's states, its words and the caller's words
as the assistant transcribed them, tools, metrics, barge-in reports, the call's end; and the
waits on them (an answer over, an answer's first sound, the assistant falling silent).

An answer is over when the assistant, having spoken after the turn, is back to listening
(`lk.agent.state`), or, for an assistant that sends no states, when its audio has been quiet for
`QUIET_END_S`; at the latest after the turn's timeout.

The assistant fell silent (a barge-in's stop): the last frame louder than ANSWER_DBFS played
before a quiet window (`find_stop`). For an assistant that sends its states (`lk.agent.state`),
the window is STOP_QUIET_S with its state away from speaking in it (LiveKit Agents goes to
listening as it gives way), or STOP_QUIET_MAX_S whatever the states say; for one that sends none,
STOP_QUIET_LONG_S. The short window is longer than the pauses inside speech (espeak-ng pauses up
to 0.35 s at a colon or between sentences) and shorter than an assistant's way from a barge-in to
its next answer (the end of the caller's speech, the end-of-turn delay, thinking: about 1 s and
more). The state is what tells a stop from a gap in the sound's arrival, which a loaded machine
makes long: under two CPU hogs, 0.6-0.7 s inside a greeting, and once 1.2 s or more (the client's
own process starved), while the assistant, still speaking, said so.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

from wespoke_tui.errors import Lang, describe
from wespoke_tui.events import (
    AgentState,
    AgentStateChanged,
    BargeIn,
    CallController,
    CallEnding,
    CallStarted,
    CallState,
    ErrorEvent,
    MetricsEvent,
    RecordingChanged,
    Role,
    StateChanged,
    ToolEvent,
    TranscriptItem,
)
from wespoke_tui.scenario.devices import ListeningSpeaker

QUIET_END_S = 1.5
STOP_QUIET_S = 0.6  # quiet this long, with the assistant's state away from speaking meanwhile: it stopped
STOP_QUIET_MAX_S = 3.0  # quiet this long, whatever its states say: it stopped
STOP_QUIET_LONG_S = 1.2  # quiet this long, from an assistant that sends no states: it stopped
TICK_S = 0.05  # how often a wait looks again when no event came (the speaker's frames come often)


def left_speaking(states: list[tuple[float, AgentState]], start: float, end: float) -> bool:
    """Whether the assistant's state was other than speaking at some moment from `start` to `end`
    (False without states)."""
    i = bisect_right(states, start, key=lambda s: s[0])
    if i and states[i - 1][1] is not AgentState.SPEAKING:
        return True
    return any(state is not AgentState.SPEAKING for at, state in states[i:] if at <= end)


def find_stop(loud_at: list[float], spoke_at: float, now: float,
              states: list[tuple[float, AgentState]] | None = None) -> float | None:
    """When the assistant fell silent for the caller who began speaking at `spoke_at`: the time of
    the last loud frame before the first quiet window that ends after `spoke_at` (see the module's
    docstring for the windows; `states`: the assistant's, time-ordered, [] when it sends none).
    That is at or before `spoke_at` when it was quiet already then, `spoke_at` when it was never
    loud; None while it is still talking (no such window yet by `now`). `loud_at` is in order."""
    states = states or []

    def quiet_enough(last: float, until: float) -> bool:
        gap = until - last
        if not states:
            return gap >= STOP_QUIET_LONG_S
        return gap >= STOP_QUIET_MAX_S or (gap >= STOP_QUIET_S and left_speaking(states, last, until))

    start = bisect_right(loud_at, spoke_at)
    if not start:  # never loud before: it was quiet already
        return spoke_at
    previous = loud_at[start - 1]
    for later in loud_at[start:]:
        if quiet_enough(previous, later):
            return previous
        previous = later
    return previous if quiet_enough(previous, now) else None


def talking_at(loud_at: list[float], at: float, states: list[tuple[float, AgentState]] | None = None) -> bool:
    """Whether the assistant was talking at `at`: a loud frame within STOP_QUIET_LONG_S before it,
    or its state speaking then."""
    i = bisect_right(loud_at, at)
    if i and at - loud_at[i - 1] < STOP_QUIET_LONG_S:
        return True
    j = bisect_right(states or [], at, key=lambda s: s[0])
    return bool(j) and (states or [])[j - 1][1] is AgentState.SPEAKING


class CallWatcher:
    """Reads the call's events and answers what the runner asks: has the assistant answered?"""

    def __init__(self, controller: CallController, speaker: ListeningSpeaker, lang: Lang = "en", *,
                 text_only: bool = False) -> None:
        self._lang: Lang = lang
        self.text_only = text_only  # a text chat: an answer is over when its message is complete
        self.completed: dict[str, float] = {}  # assistant item id → first seen, once it is final
        self.speaker = speaker
        self.changed = asyncio.Event()
        speaker.on_loud = self.changed.set
        self.agent_states: list[tuple[float, AgentState]] = []
        self.texts: dict[str, tuple[float, str]] = {}  # assistant item id → (first seen, latest text)
        self.user_texts: dict[str, tuple[float, str]] = {}  # the caller's words as the assistant heard them
        self.barge_ins: list[float] = []  # the assistant's `barge_in` messages
        self.tools: list[tuple[float, str]] = []
        self.metrics: list[tuple[float, dict[str, Any]]] = []
        self.ended_at: float | None = None
        self.ending: CallEnding | None = None
        self.call_id: str | None = None
        self.recording: str | None = None
        self.error: str | None = None
        self.error_code: str | None = None
        self._task = asyncio.get_running_loop().create_task(self._read(controller))

    async def _read(self, controller: CallController) -> None:
        async for event in controller.events():
            now = time.monotonic()
            match event:
                case AgentStateChanged(state=state):
                    self.agent_states.append((now, state))
                case TranscriptItem(role=Role.ASSISTANT, id=item_id, text=text, final=final):
                    first = self.texts.get(item_id, (now, ""))[0]
                    self.texts[item_id] = (first, text)
                    if final:
                        self.completed[item_id] = first
                case TranscriptItem(role=Role.USER, id=item_id, text=text) if not item_id.startswith("typed-"):
                    first = self.user_texts.get(item_id, (now, ""))[0]
                    self.user_texts[item_id] = (first, text)
                case BargeIn():
                    self.barge_ins.append(now)
                case ToolEvent(tool_name=name):
                    self.tools.append((now, name))
                case MetricsEvent(raw=raw, latency_ms=latency):
                    self.metrics.append((now, dict(raw) or {"latency_ms": latency}))
                case CallEnding():
                    self.ending = event
                case CallStarted(call_id=call_id):
                    self.call_id = call_id
                case RecordingChanged(path=path) if path:
                    self.recording = path
                case ErrorEvent(error=error, fatal=True):
                    self.error = describe(error, self._lang)
                    self.error_code = error.code
                case StateChanged(state=state) if state in (CallState.ENDED, CallState.FAILED, CallState.ENDING):
                    self.ended_at = self.ended_at or now
            self.changed.set()

    async def close(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._task, 5)

    def ended_since(self, since: float) -> bool:
        return self.ended_at is not None and self.ended_at >= since

    def answer_over(self, since: float, now: float, *, fresh: bool = False) -> bool:
        """Whether the answer after `since` is over. `fresh`: it must begin after `since` (a state
        of speaking carried over from before is an answer that was cut, not this one)."""
        if self.ended_since(since):
            return True
        if self.text_only:
            return any(first >= since for first in self.completed.values())
        before = [s for t, s in self.agent_states if t < since]
        # Still speaking when the turn ended (an echo, an answer begun early) counts as speaking.
        states = [(since, before[-1])] if before and not fresh else []
        states += [(t, s) for t, s in self.agent_states if t >= since]
        spoke = [t for t, s in states if s is AgentState.SPEAKING]
        if spoke and any(t > spoke[0] and s in (AgentState.LISTENING, AgentState.IDLE) for t, s in states):
            return True
        if not self.agent_states:  # an assistant without states: its audio tells
            loud = self.speaker.loud_at[bisect_left(self.speaker.loud_at, since):]
            return bool(loud) and now - loud[-1] >= QUIET_END_S
        return False

    async def wait_for(self, condition: Callable[[float], bool], deadline: float) -> bool:
        """True once `condition(now)` holds; False at `deadline`. Looks again at every event of the
        call, every loud frame played, and every TICK_S."""
        while True:
            now = time.monotonic()
            if condition(now):
                return True
            if now >= deadline:
                return False
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(TICK_S, deadline - now))

    async def wait_answer(self, since: float, timeout: float, *, fresh: bool = False) -> bool:
        """True once the answer after `since` is over; False at the timeout."""
        return await self.wait_for(lambda now: self.answer_over(since, now, fresh=fresh), since + timeout)

    def first_sound(self, since: float) -> float | None:
        loud = self.speaker.loud_at
        i = bisect_left(loud, since)
        return loud[i] if i < len(loud) else None

    async def wait_first_sound(self, since: float, deadline: float) -> float | None:
        """The first loud frame played at or after `since`, once there is one; None at `deadline`
        or when the call ended first."""
        await self.wait_for(lambda now: self.first_sound(since) is not None or self.ended_since(since), deadline)
        return self.first_sound(since)

    async def wait_stop(self, spoke_at: float, watch_s: float) -> float | None:
        """When the assistant fell silent for the caller who began speaking at `spoke_at` (see
        `find_stop`); None when it was still talking `watch_s` after."""
        limit = spoke_at + watch_s

        def decided(now: float) -> bool:
            return find_stop(self.speaker.loud_at, spoke_at, now, self.agent_states) is not None

        await self.wait_for(decided, limit + max(STOP_QUIET_MAX_S, STOP_QUIET_LONG_S))
        stop = find_stop(self.speaker.loud_at, spoke_at, time.monotonic(), self.agent_states)
        return stop if stop is not None and stop <= limit else None
