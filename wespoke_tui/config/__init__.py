"""Settings from flags > environment (`WESPOKE_*`) > TOML config file > defaults.

`load_settings(argv, env)` returns (command, Settings, HeadlessOptions) or raises
`ConfigError(option, message)`; `save_config` merges keys into the config file. The modules:

- `options.py`: the option table (flag, env variable, config-file type, help of each setting)
- `argv.py`: the argparse parser, its subcommands and the flags given before/after them
- `commands.py`: the commands, what `call`/`chat --no-tui` and `test` take, their checks
- `file.py`: the config file: where it is, reading it checked, writing it back
- `validation.py`: `ConfigError` and the value checks with their messages
- `precedence.py`: `load_settings`: each option from the highest source that sets it

Only standard-library modules are imported here: `wespoke-tui --help` must stay fast.
This module re-exports the names the rest of the code imports from `wespoke_tui.config`.
"""

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
