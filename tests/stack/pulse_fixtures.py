"""The sound rig fixture: a private PulseAudio server whose null sinks are this process's devices.

Session-scoped: one daemon for the whole run. Tests that change it (echo path, removing the
mic) restore it. PortAudio reads its environment when it initialises, so the fixture points
this process at the rig and re-initialises sounddevice; subprocesses get `pulse_rig.env`.
A missing `pulseaudio` fails the test that needs the rig; it never skips.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stack.pulse_rig import PulseRig


@pytest.fixture(scope="session")
def pulse_rig() -> Iterator[PulseRig]:
    rig = PulseRig().start()
    try:
        rig.apply_to_process()
        yield rig
    finally:
        rig.stop()


@pytest.fixture
def sound_rig(pulse_rig: PulseRig) -> Iterator[PulseRig]:
    """The session rig, put back as it was after each test (echo path off, no feed playing, mic
    and speaker present)."""
    yield pulse_rig
    pulse_rig.stop_feeds()
    pulse_rig.remove_echo_path()
    pulse_rig.stop_recording()
    pulse_rig.restore_mic()
    pulse_rig.restore_speaker()
