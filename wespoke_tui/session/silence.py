"""A microphone that gives digital silence: every sample exactly zero for `SILENT_AFTER_S` of an
unmuted call. A real microphone always has some noise; exact zeros are what macOS and Windows
deliver to a terminal that has no permission to use it, and what a muted or suspended source
gives on Linux. Said once as a non-fatal MICROPHONE_SILENT, cleared when sound arrives.
"""

from __future__ import annotations

import enum
import logging
import sys

from wespoke_tui.errors import MICROPHONE_SILENT, CallError
from wespoke_tui.events import CallEvent, ErrorCleared, ErrorEvent

log = logging.getLogger(__name__)

SILENT_AFTER_S = 2.0


class SilenceChange(enum.Enum):
    BEGAN = "began"
    ENDED = "ended"


class SilenceWatch:
    """Fed every microphone frame: says when digital silence began (after SILENT_AFTER_S of it
    while unmuted) and when it ended."""

    def __init__(self, after_s: float = SILENT_AFTER_S) -> None:
        self._after_s = after_s
        self._zero_s = 0.0
        self.silent = False

    def frame(self, seconds: float, digital_silence: bool, muted: bool) -> SilenceChange | None:
        if not digital_silence:
            self._zero_s = 0.0
            if self.silent:
                self.silent = False
                return SilenceChange.ENDED
            return None
        if muted:  # the user's choice: silence then says nothing of the device
            self._zero_s = 0.0
            return None
        self._zero_s += seconds
        if not self.silent and self._zero_s >= self._after_s:
            self.silent = True
            return SilenceChange.BEGAN
        return None


def silence_event(change: SilenceChange | None) -> CallEvent | None:
    """What the user is told of a change: the non-fatal notice with the fix for this OS, or its end."""
    if change is SilenceChange.BEGAN:
        log.warning("the microphone gives digital silence (every sample zero)")
        return ErrorEvent(CallError.of(MICROPHONE_SILENT, details={"platform": sys.platform}), fatal=False)
    if change is SilenceChange.ENDED:
        log.info("the microphone gives sound again")
        return ErrorCleared(MICROPHONE_SILENT)
    return None
