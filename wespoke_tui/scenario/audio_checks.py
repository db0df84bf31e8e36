"""Audio checks of a scenario run, read from its stereo recording (caller left, assistant right):
talk-over outside barge-in turns, dead air inside an answer, a missed reply, an answer too quiet
or clipped. Findings are per turn; the scenario's `[gates] audio` says which fail a turn.
"""

from __future__ import annotations

from dataclasses import dataclass

from wespoke_tui.scenario.model import AudioCheck


@dataclass(frozen=True, slots=True)
class AudioFinding:
    """One thing the recording shows about a turn: which check, its measure, and where."""

    check: AudioCheck
    turn: int
    value: float  # the measure: ms of talk-over, ms of dead air, dBFS of the answer, ratio clipped
    at_s: float | None = None  # seconds into the recording
