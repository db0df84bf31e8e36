"""Settings from flags, `WESPOKE_*`, the config file, defaults: see README.md, "How the code is laid out"."""

# Only standard-library modules are imported here (`wespoke-tui --help` must stay fast); this module
# re-exports the names the rest of the code imports from `wespoke_tui.config`.
from wespoke_tui.config.commands import CMD_DEVICES, CMD_HEADLESS, CMD_TEST, CMD_TUI, HeadlessOptions
from wespoke_tui.config.file import save_config
from wespoke_tui.config.options import JITTER_DEFAULT_MS, PROG
from wespoke_tui.config.paths import default_config_path
from wespoke_tui.config.precedence import detect_lang, load_settings
from wespoke_tui.config.validation import ConfigError

__all__ = [
    "CMD_DEVICES",
    "CMD_HEADLESS",
    "CMD_TEST",
    "CMD_TUI",
    "JITTER_DEFAULT_MS",
    "PROG",
    "ConfigError",
    "HeadlessOptions",
    "default_config_path",
    "detect_lang",
    "load_settings",
    "save_config",
]
