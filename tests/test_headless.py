"""`wespoke-tui call --no-tui` as a user runs it: the installed console script, as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.signals import tone_wav
from tests.test_session import wait_until_gone

pytestmark = pytest.mark.timeout(60)

SCRIPT = Path(sys.executable).parent / "wespoke-tui"


class Headless:
    """A running `wespoke-tui call --no-tui`; stdout is read line by line as it comes."""

    def __init__(self, api: Any, *extra: str, lang: str = "en") -> None:
        args = [str(SCRIPT), "call", "--no-tui", "--api-key", api.api_key, "--assistant-id", api.assistant_id,
                "--api-url", api.url, "--lang", lang, *extra]
        env = {k: v for k, v in os.environ.items() if not k.startswith("WESPOKE_")}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()

    def wait_line(self, text: str, timeout: float = 15.0) -> None:
        with self._seen:
            ok = self._seen.wait_for(lambda: text in self.lines or self.proc.poll() is not None, timeout)
        assert ok and text in self.lines, f"no line {text!r}: {self.lines}"

    def finish(self, timeout: float = 10.0) -> tuple[int, str]:
        rc = self.proc.wait(timeout)
        self._reader.join(2)
        assert self.proc.stderr is not None
        return rc, self.proc.stderr.read()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
async def test_signal_hangs_up_before_exit(wespoke_stack, tmp_path: Path, sig: signal.Signals) -> None:
    api_server, livekit_server = wespoke_stack.api, wespoke_stack.livekit
    out_wav, log = tmp_path / "out.wav", tmp_path / "call.log"
    run = Headless(api_server, "--input-wav", str(tone_wav(tmp_path / "in.wav", 3.0)), "--output-wav", str(out_wav),
                   "--log-file", str(log), "--log-level", "info")
    await asyncio.to_thread(run.wait_line, "Connected")
    (record,) = api_server.calls.values()
    sent = time.monotonic()
    run.proc.send_signal(sig)
    try:
        gone_s = await wait_until_gone(livekit_server, record.room_name, record.identity, within_s=1.0)
    except AssertionError as exc:
        await asyncio.to_thread(run.finish)
        raise AssertionError(f"{exc}\n--- the call's log:\n{log.read_text(errors='replace')[-4000:]}") from None
    rc, err = await asyncio.to_thread(run.finish)
    print(f"{sig.name}: participant gone after {gone_s * 1000:.0f} ms, process exited after {(time.monotonic() - sent) * 1000:.0f} ms")
    assert rc == 0, err
    assert "Traceback" not in err
    assert run.lines[-2:] == ["Ending…", "Call ended"]
    assert record.ended  # /end went out before the exit
    assert out_wav.exists()


async def test_duration_ends_the_call_cleanly(wespoke_stack, tmp_path: Path) -> None:
    api_server = wespoke_stack.api
    out_wav = tmp_path / "out.wav"
    transcript = tmp_path / "t.jsonl"
    started = time.monotonic()
    run = Headless(api_server, "--input-wav", str(tone_wav(tmp_path / "in.wav", 3.0)), "--output-wav", str(out_wav),
                   "--transcript", str(transcript), "--duration", "2", lang="tr")
    rc, err = await asyncio.to_thread(run.finish, 15)
    assert rc == 0, err
    assistant_lines = [i for i, line in enumerate(run.lines) if line.startswith("asistan: ")]
    assert [line for line in run.lines if not line.startswith("asistan: ")] == [
        "Jeton alınıyor…", "Bağlanıyor…", "Bağlı", "Sonlandırılıyor…", "Arama bitti"
    ]
    assert all(run.lines.index("Bağlı") < i < run.lines.index("Sonlandırılıyor…") for i in assistant_lines)
    assert 2.0 <= time.monotonic() - started < 6.0
    (record,) = api_server.calls.values()
    assert record.ended
    records = read_records(transcript)
    assert [r["state"] for r in records if r["type"] == "state" and r["of"] == "call"] == [
        "requesting_token", "connecting", "connected", "ending", "ended"
    ]


async def test_delete_after_deletes_the_record_once_the_room_is_left(wespoke_stack, tmp_path: Path) -> None:
    api_server = wespoke_stack.api
    transcript = tmp_path / "t.jsonl"
    run = Headless(api_server, "--input-wav", str(tone_wav(tmp_path / "in.wav", 3.0)), "--output-wav",
                   str(tmp_path / "out.wav"), "--duration", "1", "--delete-after", "--transcript", str(transcript))
    rc, err = await asyncio.to_thread(run.finish, 15)
    assert rc == 0, err
    assert run.lines[-3:] == ["Ending…", "Call ended", "Call record deleted"]
    (record,) = api_server.calls.values()
    assert record.deleted and record.live_at_delete is False
    assert read_records(transcript)[-1]["type"] == "record_deleted"
    assert read_records(transcript)[-1]["call_id"] == record.call_id


async def test_a_refused_delete_after_exits_1_with_the_user_message(wespoke_stack, tmp_path: Path) -> None:
    api_server = wespoke_stack.api
    api_server.fail_next("delete", status=500)
    run = Headless(api_server, "--output-wav", str(tmp_path / "out.wav"), "--duration", "1", "--delete-after")
    rc, err = await asyncio.to_thread(run.finish, 15)
    assert rc == 1
    assert "Server error." in err and "Traceback" not in err and api_server.api_key not in err
    assert run.lines[-1] == "Call ended"
    (record,) = api_server.calls.values()
    assert not record.deleted


def read_records(path: Path) -> list[dict[str, Any]]:
    """The typed records of a `--transcript` file; each has its type and an epoch-seconds time."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    now = time.time()
    for record in records:
        assert record["type"] in ("transcript", "state", "tool", "error", "metrics", "call_ending", "record_deleted"), record
        assert isinstance(record["timestamp"], float) and now - 120 < record["timestamp"] <= now, record
    return records


@pytest.mark.parametrize(("status", "message"), [(402, "Arama başlatmak için yeterli krediniz yok."), (500, "Sunucu hatası.")])
async def test_failed_call_exits_1_with_the_user_message(wespoke_stack, tmp_path: Path, status: int, message: str) -> None:
    api_server = wespoke_stack.api
    api_server.fail_next("token", status=status)
    run = Headless(api_server, "--output-wav", str(tmp_path / "out.wav"), lang="tr")
    rc, err = await asyncio.to_thread(run.finish)
    assert rc == 1
    assert message in err
    assert "Traceback" not in err and api_server.api_key not in err
    assert run.lines[-1] == "Başarısız"


async def test_hang_up_by_signal_during_token_fetch(wespoke_stack, tmp_path: Path) -> None:
    api_server = wespoke_stack.api
    api_server.fail_next("token", delay_s=5.0)
    run = Headless(api_server, "--output-wav", str(tmp_path / "out.wav"))
    await asyncio.to_thread(run.wait_line, "Getting token…")
    sent = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    rc, err = await asyncio.to_thread(run.finish)
    assert time.monotonic() - sent < 1.0
    assert rc == 0, err
    assert run.lines[-1] == "Call ended"


async def test_headless_call_hears_the_greeting_and_prints_the_transcript(wespoke_stack, tmp_path: Path) -> None:
    from tests.stack import assistant as script
    from tests.support.signals import dominant_hz
    from tests.test_session import loudest_window
    from wespoke_tui.audio.meter import rms_dbfs
    from wespoke_tui.audio.wav import read_wav_48k_mono

    wespoke_stack.assistant_options = {"no_echo": True}
    out_wav, transcript = tmp_path / "out.wav", tmp_path / "t.jsonl"
    run = Headless(wespoke_stack.api, "--output-wav", str(out_wav), "--transcript", str(transcript), "--duration", "6")
    rc, err = await asyncio.to_thread(run.finish, 20)
    assert rc == 0, err
    heard = read_wav_48k_mono(out_wav)
    greeting = loudest_window(heard, 1.2)
    assert abs(dominant_hz(greeting) - 440.0) < 5.0
    assert rms_dbfs(greeting) == pytest.approx(-15.05, abs=2.0)
    assert f"Assistant: {script.STREAM_FULL_TEXT}" in run.lines
    assert f"You: {script.TRANSCRIPTION_FINAL}" in run.lines
    assert f"Assistant: {script.HISTORY_ONLY_MESSAGE['content']}" in run.lines
    assert "assistant: speaking" in run.lines and "assistant: listening" in run.lines  # the greeting, then after
    for phase in ("tool running", "tool done", "tool failed", "tool delayed"):
        assert f"{phase}: {script.TOOL_NAME}" in run.lines
    records = read_records(transcript)
    items = [r for r in records if r["type"] == "transcript"]
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) and all(item["final"] for item in items)
    assert {script.STREAM_ID, script.CONVERSATION_ITEM_ID, script.TRANSCRIPTION_ID, script.TEXT_STREAM_SEGMENT_ID, "hist-1"} <= set(ids)
    (streamed,) = [i for i in items if i["id"] == script.TEXT_STREAM_SEGMENT_ID]
    assistant_speaking_at = next(r["timestamp"] for r in records if r.get("of") == "assistant" and r["state"] == "speaking")
    assert assistant_speaking_at < streamed["timestamp"] < time.time()  # the stream's own time, sent after the greeting
    assert [r["phase"] for r in records if r["type"] == "tool"] == ["start", "complete", "failed", "delayed"]
    assert {"speaking", "listening"} <= {r["state"] for r in records if r["type"] == "state" and r["of"] == "assistant"}
    metrics = [r for r in records if r["type"] == "metrics"]
    assert any(m["latency_ms"] == 420.0 and m["duration_s"] == 1.2 for m in metrics)
    assert 3 <= len(metrics) <= 8  # the audio health of a 6 s call, at most one a second
    assert all(b["timestamp"] - a["timestamp"] >= 0.95 for a, b in zip(metrics, metrics[1:]))
    assert err == ""


async def test_json_prints_the_records_on_stdout_instead_of_text(wespoke_stack, tmp_path: Path) -> None:
    out_wav, transcript = tmp_path / "out.wav", tmp_path / "t.jsonl"
    run = Headless(wespoke_stack.api, "--input-wav", str(tone_wav(tmp_path / "in.wav", 3.0)), "--output-wav", str(out_wav),
                   "--transcript", str(transcript), "--json", "--duration", "3")
    rc, err = await asyncio.to_thread(run.finish, 20)
    assert rc == 0, err
    assert err == ""
    printed = [json.loads(line) for line in run.lines]  # every line is one JSON object
    assert printed == read_records(transcript)
    assert [r["state"] for r in printed if r["type"] == "state" and r["of"] == "call"] == [
        "requesting_token", "connecting", "connected", "ending", "ended"
    ]
    assert any(r["type"] == "state" and r["of"] == "assistant" for r in printed)


async def test_a_missing_microphone_is_said_on_stderr_and_the_call_goes_on_listen_only(
    wespoke_stack, sound_rig, tmp_path: Path
) -> None:
    from wespoke_tui.errors import MICROPHONE_ERROR, user_message

    transcript = tmp_path / "t.jsonl"
    run = Headless(wespoke_stack.api, "--input-device", "no-such-microphone-xyz", "--transcript", str(transcript))
    # The call went on without a microphone: the greeting came (a busy machine starts the assistant
    # late, so the test waits for it rather than giving the call a fixed length), then Ctrl+C.
    await asyncio.to_thread(run.wait_line, "assistant: speaking", 20.0)
    run.proc.send_signal(signal.SIGINT)
    rc, err = await asyncio.to_thread(run.finish, 20)
    assert rc == 0, err
    said = user_message(MICROPHONE_ERROR, "en")
    assert err.splitlines() == [said]  # once, one line, no traceback
    assert wespoke_stack.api.api_key not in err + "".join(run.lines)
    assert run.lines[:3] == ["Getting token…", "Connecting…", "Connected"] and run.lines[-1] == "Call ended"
    assert "Ending…" in run.lines and "Failed" not in run.lines
    records = read_records(transcript)
    assert [(r["code"], r["message"], r["fatal"]) for r in records if r["type"] == "error"] == [(MICROPHONE_ERROR, said, False)]
    assert "failed" not in [r["state"] for r in records if r["type"] == "state"]


async def test_demo_runs_headless_without_any_server(tmp_path: Path) -> None:
    args = [str(SCRIPT), "call", "--no-tui", "--demo", "--lang", "en", "--input-wav", str(tone_wav(tmp_path / "in.wav", 3.0)),
            "--output-wav", str(tmp_path / "out.wav"), "--duration", "2"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WESPOKE_")}
    done = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, timeout=20, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == ["Getting token…", "Connecting…", "Connected"] and lines[-2:] == ["Ending…", "Call ended"]
    assert (tmp_path / "out.wav").stat().st_size > 48000  # the demo's greeting was played into the file
