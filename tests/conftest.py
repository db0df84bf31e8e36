"""Shared fixtures: the local stack (Wespoke API server, LiveKit server, test assistants, sound rig)."""

pytest_plugins = [
    "tests.stack.wespoke_fixtures",
    "tests.stack.livekit_fixtures",
    "tests.stack.pulse_fixtures",
    "tests.stack.agents_fixtures",
]
