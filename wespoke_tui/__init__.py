"""wespoke-tui: talk to a Wespoke AI voice assistant from a terminal."""

__version__ = "0.1.0"
