"""A microphone that gives digital silence (macOS or Windows without permission, a muted source):
after 2 s of exact zeros in an unmuted call, a non-fatal MICROPHONE_SILENT says how to grant the
permission; it clears when sound arrives. On the rig, the microphone's floor is taken away so
its source gives exact zeros, as such a microphone does."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import numpy as np

from tests.test_headless import Headless
from wespoke_tui.audio.wav import write_wav_48k_mono
from wespoke_tui.errors import MICROPHONE_SILENT, user_message
from wespoke_tui.i18n import text
from wespoke_tui.session.silence import SilenceChange, SilenceWatch


def test_two_seconds_of_exact_zeros_while_unmuted_begin_it_and_sound_ends_it() -> None:
    watch = SilenceWatch()
    assert [watch.frame(0.02, True, False) for _ in range(99)] == [None] * 99  # 1.98 s
    assert watch.frame(0.02, True, False) is SilenceChange.BEGAN
    assert watch.frame(0.02, True, False) is None  # said once
    assert watch.frame(0.02, False, False) is SilenceChange.ENDED
    muted = SilenceWatch()
    assert {muted.frame(0.02, True, True) for _ in range(500)} == {None}  # muted: the user's silence
    assert {muted.frame(0.02, True, False) for _ in range(50)} == {None}  # counted from the unmute
    sparse = SilenceWatch()
    for _ in range(20):  # a quiet room: never 2 s of exact zeros in a row
        assert {sparse.frame(0.02, True, False) for _ in range(90)} | {sparse.frame(0.02, False, False)} == {None}


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


async def wait_record(path: Path, predicate, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in read_records(path):
            if predicate(record):
                return record
        await asyncio.sleep(0.1)  # poll
    raise AssertionError(f"no such record in {timeout} s: {read_records(path)}")


async def test_a_microphone_giving_exact_zeros_is_said_with_the_fix_and_clears_when_sound_comes(
    wespoke_stack, sound_rig, tmp_path: Path
) -> None:
    t = np.arange(int(1.5 * 48000)) / 48000
    tone = tmp_path / "tone.wav"
    write_wav_48k_mono(tone, (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16))
    transcript = tmp_path / "t.jsonl"
    sound_rig.mic_floor_off()
    run = Headless(wespoke_stack.api, "--transcript", str(transcript))
    try:
        await asyncio.to_thread(run.wait_line, "Connected", 20.0)
        connected = time.time()
        silent = await wait_record(transcript, lambda r: r["type"] == "error", 15.0)
        sound_rig.play_into_mic(tone)
        cleared = await wait_record(transcript, lambda r: r["type"] == "error_cleared", 10.0)
    finally:
        run.proc.send_signal(signal.SIGINT)
        rc, err = await asyncio.to_thread(run.finish, 20)
    said = user_message(MICROPHONE_SILENT, "en", details={"platform": sys.platform})
    assert rc == 0, err
    assert (silent["code"], silent["message"], silent["fatal"]) == (MICROPHONE_SILENT, said, False)
    assert silent["timestamp"] - connected >= 1.9  # two seconds of it first
    assert cleared["code"] == MICROPHONE_SILENT and cleared["timestamp"] > silent["timestamp"]
    assert err.splitlines() == [said, text("notice.cleared.MICROPHONE_SILENT", "en")]
    assert [r["code"] for r in read_records(transcript) if r["type"] == "error"] == [MICROPHONE_SILENT]  # once
    assert "Failed" not in run.lines and run.lines[-1] == "Call ended"


async def test_a_microphone_with_its_floor_is_never_called_silent(wespoke_stack, sound_rig, tmp_path: Path) -> None:
    transcript = tmp_path / "t.jsonl"
    run = Headless(wespoke_stack.api, "--transcript", str(transcript), "--duration", "4")
    rc, err = await asyncio.to_thread(run.finish, 30)
    assert rc == 0, err
    assert err == "" and not [r for r in read_records(transcript) if r["type"].startswith("error")]


def test_the_status_line_shows_it_until_sound_comes_back() -> None:
    from wespoke_tui.errors import CallError
    from wespoke_tui.events import ErrorCleared, ErrorEvent
    from wespoke_tui.presenter import CallStatus, reduce

    error = CallError.of(MICROPHONE_SILENT, details={"platform": "darwin"})
    shown = reduce(CallStatus(), ErrorEvent(error, fatal=False), now=0.0, lang="en")
    assert shown.error is not None and "Privacy & Security → Microphone" in shown.error
    assert reduce(shown, ErrorCleared("OTHER"), now=0.0, lang="en") is shown
    assert reduce(shown, ErrorCleared(MICROPHONE_SILENT), now=0.0, lang="en").error is None
    turkish = reduce(CallStatus(), ErrorEvent(error, fatal=False), now=0.0, lang="tr")
    assert turkish.error is not None and "Gizlilik ve Güvenlik" in turkish.error
