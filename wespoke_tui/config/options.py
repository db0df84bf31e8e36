"""The option table: every setting's name, flag, environment variable, config-file type and help.

`argv.py` builds the flags from it, `file.py` checks the config file's keys against it and
`precedence.py` looks each option up in flags, environment and file by it.
"""

from __future__ import annotations

from dataclasses import dataclass

from wespoke_tui.settings import DEFAULT_API_URL, DEFAULT_JITTER_MS

PROG = "wespoke-tui"

LANGS = ("tr", "en")
AUDIO_ENGINES = ("native", "python")
LOG_LEVELS = ("debug", "info", "warning", "error")
JITTER_MIN_MS, JITTER_MAX_MS = 20, 500
JITTER_DEFAULT_MS = DEFAULT_JITTER_MS


@dataclass(frozen=True, slots=True)
class Option:
    key: str  # argparse dest and config-file key
    flag: str
    help: str
    env: str | None = None
    metavar: str | None = None  # None: a store_true switch
    repeat: bool = False  # action="append"
    file_type: str = "str"  # what the config file may hold: str | bool | int | device | table


OPTIONS: tuple[Option, ...] = (
    Option("api_key", "--api-key", "Wespoke public embed key (pk_live_… or pk_test_…).",
           "WESPOKE_API_KEY", "KEY"),
    Option("assistant_id", "--assistant-id", "Assistant to call.", "WESPOKE_ASSISTANT_ID", "ID"),
    Option("api_url", "--api-url", f"Wespoke API base URL (default {DEFAULT_API_URL}); "
           "plain http:// only for localhost.", "WESPOKE_API_URL", "URL"),
    Option("origin", "--origin", "Origin header to send, one of the key's allowed sites, "
           "e.g. https://example.com.", "WESPOKE_ORIGIN", "ORIGIN"),
    Option("user_id", "--user-id", "metadata.userId of the call.", "WESPOKE_USER_ID", "ID"),
    Option("session_id", "--session-id", "metadata.sessionId of the call.",
           "WESPOKE_SESSION_ID", "ID"),
    Option("metadata", "--metadata", "Extra call metadata; repeatable. VALUE is JSON if it "
           "parses, else a string.", None, "KEY=VALUE", repeat=True, file_type="table"),
    Option("first_message", "--first-message", "Override the assistant's first message.",
           "WESPOKE_FIRST_MESSAGE", "TEXT"),
    Option("system_prompt", "--system-prompt", "Override the system prompt.",
           "WESPOKE_SYSTEM_PROMPT", "TEXT"),
    Option("system_prompt_file", "--system-prompt-file", "Read the system prompt override "
           "from a UTF-8 file (not with --system-prompt).", "WESPOKE_SYSTEM_PROMPT_FILE", "PATH"),
    Option("variables", "--var", "A variableValues entry of the assistant; repeatable.",
           None, "NAME=VALUE", repeat=True, file_type="table"),
    Option("overrides", "--override", "Any other assistantOverrides key, VALUE in JSON; "
           "repeatable (e.g. --override recordingEnabled=false).",
           None, "KEY=JSON", repeat=True, file_type="table"),
    Option("lang", "--lang", "Language of the interface and messages: tr or en "
           "(default from LC_ALL / LC_MESSAGES / LANG).", "WESPOKE_LANG", "{tr,en}"),
    Option("input_device", "--input-device", "Microphone: device index, or (part of) its name, "
           "optionally with its host API as the devices screen saves it: 'Mic (USB) [Windows "
           "WASAPI]'. A name listed under several host APIs means the default API's device.",
           "WESPOKE_INPUT_DEVICE", "DEVICE", file_type="device"),
    Option("output_device", "--output-device", "Speaker: device index, or (part of) its name, "
           "optionally with its host API, as for --input-device.",
           "WESPOKE_OUTPUT_DEVICE", "DEVICE", file_type="device"),
    Option("audio_engine", "--audio-engine", "Audio path of a voice call on the sound devices: native "
           "(the default: WebRTC's own device module, capture, echo cancellation and playout in "
           "native code, as a browser) or python (PortAudio through sounddevice). A call whose "
           "native module cannot start, or loses its microphone, goes on the python path by itself and "
           "says so.",
           "WESPOKE_AUDIO_ENGINE", "{native,python}"),
    Option("no_aec", "--no-aec", "Turn off echo cancellation.", "WESPOKE_NO_AEC",
           file_type="bool"),
    Option("no_ns", "--no-ns", "Turn off noise suppression.", "WESPOKE_NO_NS", file_type="bool"),
    Option("no_agc", "--no-agc", "Turn off automatic gain control.", "WESPOKE_NO_AGC",
           file_type="bool"),
    Option("jitter_ms", "--jitter-ms", f"Playback jitter buffer target in ms "
           f"({JITTER_MIN_MS}-{JITTER_MAX_MS}, default {JITTER_DEFAULT_MS}; it grows by itself "
           f"after an underrun).", "WESPOKE_JITTER_MS", "N",
           file_type="int"),
    Option("log_file", "--log-file", "Write a log to this file (nothing is logged otherwise).",
           "WESPOKE_LOG_FILE", "PATH"),
    Option("log_level", "--log-level", "Log level: debug, info, warning or error "
           "(default warning).", "WESPOKE_LOG_LEVEL", "{debug,info,warning,error}"),
    Option("demo", "--demo", "Talk to a built-in offline echo assistant: no key, no network.",
           "WESPOKE_DEMO", file_type="bool"),
    Option("chat", "--chat", "Text chat with the assistant instead of a voice call: no "
           "microphone, no speaker (the app switches between the two with t).",
           "WESPOKE_CHAT", file_type="bool"),
    Option("call_on_start", "--call-on-start", "Start the call as soon as the app opens.",
           "WESPOKE_CALL_ON_START", file_type="bool"),
    Option("record", "--record", "Record every call into DIR: a stereo WAV (you left, the assistant "
           "right), the transcript (.jsonl and .txt) and a summary (.json), written as the call "
           "goes. Without it, r in the app records into the recordings folder: Linux "
           "$XDG_DATA_HOME/wespoke-tui/recordings (~/.local/share/… when unset), macOS "
           "~/Library/Application Support/wespoke-tui/recordings, Windows "
           "%%LOCALAPPDATA%%\\wespoke-tui\\recordings.",
           "WESPOKE_RECORD", "DIR"),
    Option("delete_after", "--delete-after", "After each call, delete its record from the call "
           "history (only once the call has ended; deleting never ends a call).",
           "WESPOKE_DELETE_AFTER", file_type="bool"),
    Option("config", "--config", "Config file. Default: Linux "
           "$XDG_CONFIG_HOME/wespoke-tui/config.toml (~/.config/… when unset), macOS "
           "~/Library/Application Support/wespoke-tui/config.toml, Windows "
           "%%LOCALAPPDATA%%\\wespoke-tui\\config.toml; while that file does not exist, one an "
           "older version left in ~/.config/wespoke-tui is used. The app writes it private: mode "
           "0600 (only you and root can read it) on Linux and macOS; on Windows, which has no "
           "modes, it keeps your profile folder's permissions (you, SYSTEM and Administrators).",
           "WESPOKE_CONFIG", "PATH"),
)
BY_KEY = {o.key: o for o in OPTIONS}
# Keys only the config file holds (written by the TUI).
FILE_ONLY_TYPES = {"mic_consent_given": "bool"}
CONFIG_KEYS: frozenset[str] = frozenset(
    {o.key for o in OPTIONS if o.key != "config"} | set(FILE_ONLY_TYPES)
)
