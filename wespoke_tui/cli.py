"""Command line entry point (filled in by the foundation issue)."""


def main() -> int:
    return 0
