"""The resolved settings of one run. `config/` builds them from flags, env, file and defaults."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DEFAULT_API_URL = "https://api.wespoke.ai"
# WebRTC's NetEQ absorbs the network; this covers frame phase and scheduling. A smaller default
# plays sooner on a quiet machine but underruns on a busy one (what 30 ms did: see
# BENCHMARKS.md, "Figures that were in module docstrings").
DEFAULT_JITTER_MS = 40
KEY_PREFIXES = ("pk_live_", "pk_test_")


def mask_key(key: str | None) -> str:
    """`pk_live_abcdef123` → `pk_live_…f123`; never more than the prefix and 4 last characters."""
    if not key:
        return "(none)"
    prefix = next((p for p in KEY_PREFIXES if key.startswith(p)), "")
    rest = key[len(prefix):]
    tail = rest[-4:] if len(rest) > 8 else ""
    return f"{prefix}…{tail}"


class AudioEngine(str, enum.Enum):
    """Which audio path a voice call on the sound devices takes."""

    NATIVE = "native"  # WebRTC's own audio device module (rtc.PlatformAudio), as a browser
    PYTHON = "python"  # PortAudio through sounddevice, with the SDK's APM from Python


@dataclass(slots=True)
class Settings:
    api_key: str | None = None
    assistant_id: str | None = None
    api_url: str = DEFAULT_API_URL
    origin: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    first_message: str | None = None
    system_prompt: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    lang: Literal["tr", "en"] = "en"
    input_device: str | None = None
    output_device: str | None = None
    aec: bool = True
    noise_suppression: bool = True
    auto_gain: bool = True
    jitter_buffer_ms: int = DEFAULT_JITTER_MS
    audio_engine: AudioEngine = field(default_factory=lambda: AudioEngine.NATIVE)
    log_file: Path | None = None
    log_level: str = "WARNING"
    demo: bool = False
    chat: bool = False  # a text chat instead of a voice call
    record_dir: Path | None = None  # where recordings go (the TUI's r key, --record)
    record_calls: bool = False  # record every call from its start (--record DIR)
    call_on_start: bool = False
    delete_after: bool = False
    mic_consent_given: bool = False
    config_path: Path | None = None

    def token_metadata(self) -> dict[str, Any]:
        """The `metadata` object of the token request."""
        meta: dict[str, Any] = dict(self.metadata)
        if self.user_id:
            meta["userId"] = self.user_id
        if self.session_id:
            meta["sessionId"] = self.session_id
        return meta

    def assistant_overrides(self) -> dict[str, Any] | None:
        """The `assistantOverrides` object, or None when nothing is overridden."""
        out: dict[str, Any] = dict(self.overrides)
        if self.first_message:
            out["firstMessage"] = self.first_message
        if self.system_prompt:
            out["systemPrompt"] = self.system_prompt
        if self.variables:
            out["variableValues"] = dict(self.variables)
        return out or None

    def __repr__(self) -> str:
        return f"Settings(api_key={mask_key(self.api_key)!r}, assistant_id={self.assistant_id!r}, api_url={self.api_url!r})"
