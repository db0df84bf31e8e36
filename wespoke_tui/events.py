"""The typed events a call emits, and the interface every call controller offers.

The TUI and the headless runner consume the same stream; nothing here knows of Textual.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from wespoke_tui.errors import CallError

# The floor of every level in dBFS (`MicLevel`, `AssistantLevel`): digital silence reads this.
SILENCE_DBFS = -96.0


class CallState(enum.StrEnum):
    IDLE = "idle"
    REQUESTING_TOKEN = "requesting_token"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    ENDING = "ending"
    ENDED = "ended"
    FAILED = "failed"

    @property
    def in_call(self) -> bool:
        """True while there is something to hang up."""
        return self in (
            CallState.REQUESTING_TOKEN,
            CallState.CONNECTING,
            CallState.CONNECTED,
            CallState.RECONNECTING,
        )


class AgentState(enum.StrEnum):
    """The `lk.agent.state` participant attribute of LiveKit agents."""

    INITIALIZING = "initializing"
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"


class Role(enum.StrEnum):
    """Who said a transcript line; the parsers map what the wire says (`agent`, `human`, …) onto these."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


class ToolPhase(enum.StrEnum):
    """Where one of the assistant's tool calls is, as the user is told (`tool.<phase>` texts).

    Each wire names them its own way (`tool_start` in the room, `tool:started` in a chat); its
    parser maps those onto these.
    """

    START = "start"
    COMPLETE = "complete"
    FAILED = "failed"
    DELAYED = "delayed"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a controller's conversation carries: the UI shows meters and the mic only with audio."""

    audio: bool
    text: bool


VOICE = Capabilities(audio=True, text=True)
TEXT_ONLY = Capabilities(audio=False, text=True)


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: CallState
    previous: CallState
    error: CallError | None = None


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The token request succeeded: what the API said about the call."""

    call_id: str
    room_name: str | None = None
    assistant_id: str | None = None
    assistant_name: str | None = None


@dataclass(frozen=True, slots=True)
class MicLevel:
    """RMS and held peak of the microphone in dBFS; measured while muted too."""

    rms_dbfs: float
    peak_dbfs: float
    muted: bool


@dataclass(frozen=True, slots=True)
class AssistantLevel:
    rms_dbfs: float
    peak_dbfs: float


@dataclass(frozen=True, slots=True)
class AssistantSpeaking:
    speaking: bool


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    state: AgentState


@dataclass(frozen=True, slots=True)
class MuteChanged:
    muted: bool


@dataclass(frozen=True, slots=True)
class TranscriptItem:
    """One message of the conversation; `added` the first time its id is seen, then `updated`."""

    id: str
    role: Role
    text: str
    final: bool
    added: bool
    timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class ToolEvent:
    phase: ToolPhase
    tool_name: str
    tool_type: str | None = None
    details: Any = None
    timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class KnowledgeUsed:
    """The assistant answered from its knowledge base: the sources it names (titles or ids)."""

    sources: tuple[str, ...]
    timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class MetricsEvent:
    latency_ms: float | None = None
    duration_s: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BargeIn:
    pass


@dataclass(frozen=True, slots=True)
class CallEnding:
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """An error the user should see. `fatal` ones come with the move to `failed`."""

    error: CallError
    fatal: bool


@dataclass(frozen=True, slots=True)
class ErrorCleared:
    """A non-fatal error that was a state (MICROPHONE_SILENT) is over: sound came back."""

    code: str


@dataclass(frozen=True, slots=True)
class ReconnectAttempt:
    attempt: int
    max_attempts: int


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    remaining: int | None
    limit: int | None
    reset_at: str | None = None


@dataclass(frozen=True, slots=True)
class AudioHealth:
    """Counters of the audio engine, sent about once a second during a call."""

    playback_underruns: int = 0
    playback_overruns: int = 0
    playback_trims: int = 0
    capture_dropped_frames: int = 0
    capture_queue_depth: int = 0
    playback_queue_ms: float = 0.0


class QualityLevel(enum.StrEnum):
    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"


@dataclass(frozen=True, slots=True)
class CallQuality:
    """The call's connection and audio, about once a second (`wespoke_tui.session.quality`).

    None: not measured (yet). Rates and loss are over the last interval; `underruns` over the
    last `UNDERRUN_WINDOW_S` seconds.
    """

    level: QualityLevel
    rtt_ms: float | None = None
    jitter_ms: float | None = None
    packet_loss_pct: float | None = None
    bitrate_in_kbps: float | None = None
    bitrate_out_kbps: float | None = None
    playback_buffer_ms: float | None = None
    underruns: int = 0
    aec_delay_ms: float | None = None
    response_ms: float | None = None


@dataclass(frozen=True, slots=True)
class RecordingChanged:
    """A recording of the call started (`path`: its WAV) or stopped (`path` None if it failed)."""

    active: bool
    path: str | None


@dataclass(frozen=True, slots=True)
class CallRecordDeleted:
    """The ended call's record is gone from the call history (`DELETE /api/v1/calls/{id}`)."""

    call_id: str


CallEvent = (
    StateChanged
    | CallStarted
    | MicLevel
    | AssistantLevel
    | AssistantSpeaking
    | AgentStateChanged
    | MuteChanged
    | TranscriptItem
    | ToolEvent
    | KnowledgeUsed
    | MetricsEvent
    | BargeIn
    | CallEnding
    | ErrorEvent
    | ErrorCleared
    | ReconnectAttempt
    | RateLimitInfo
    | AudioHealth
    | CallRecordDeleted
    | RecordingChanged
    | CallQuality
)


class CallController(Protocol):
    """What the UI and the headless runner drive: the voice session, the offline demo and the
    text chat (`wespoke_tui.controllers.make_controller` picks one).

    A "call" here is one conversation of any kind: a text chat goes through the same states
    (connecting, connected, ending, ended or failed), mutes nothing and deletes no record.
    """

    capabilities: Capabilities

    @property
    def state(self) -> CallState: ...

    @property
    def muted(self) -> bool: ...

    def events(self) -> AsyncIterator[CallEvent]:
        """The event stream for the controller's whole life (many calls); ends after `aclose()`."""
        ...

    async def start(self) -> None:
        """Begin a call: token, room, devices. Returns once connected or failed."""
        ...

    async def hang_up(self) -> None:
        """End the call from any state; always leaves the room and closes devices."""
        ...

    async def set_muted(self, muted: bool) -> None: ...

    async def send_text(self, text: str) -> None: ...

    async def set_recording(self, on: bool) -> bool:
        """Start or stop recording the call in progress (`RecordingChanged` says so); False when
        this controller or this moment cannot (no call, no audio)."""
        ...

    async def delete_record(self) -> bool:
        """Delete the last call's record from the call history, only once that call has ended.

        True when it is gone (`CallRecordDeleted` says so); False when there is none to delete
        or the call is not over (nothing is sent), or the API refused (an `ErrorEvent` says why).
        """
        ...

    async def aclose(self) -> None:
        """Hang up if needed and release everything; the controller is done."""
        ...
