"""Calls against a real LiveKit Agents assistant (`tests.stack.agents_assistant`): dispatched by the
token's room configuration, hearing with the silero VAD, answering after a fixed think time,
speaking with espeak-ng, interruptible. Headless (`wespoke-tui call --no-tui` on WAV files) and
in the TUI (Textual Pilot on the real CallSession).

The worker is shared by the whole run (`agents_worker`); each test finds its own call in the
worker's log by room. Both clocks of that log are this machine's: "mono" is the same
CLOCK_MONOTONIC as this process's `time.monotonic()`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import api as lkapi
from livekit import rtc

from tests.bench.procstat import children_of
from tests.stack.agents_control import (
    ASSISTANT_ID,
    ASSISTANT_NAME,
    GREETING,
    REPO_ROOT,
    THINK_S,
    USER_TRANSCRIPT,
    agents_python,
    reply_to,
)
from tests.stack.agents_fixtures import AgentsStack
from tests.stack.livekit_server import LiveKitServer, _short_secret_ok
from tests.stack.wespoke_fixtures import start_wespoke_server
from tests.ui_support import FrozenClock, settings_for, until, widget_text
from wespoke_tui.audio.base import FRAME_SAMPLES, SAMPLE_RATE
from wespoke_tui.audio.meter import rms_dbfs
from wespoke_tui.audio.wav import WavBackend, read_wav_48k_mono, write_wav_48k_mono
from wespoke_tui.events import CallState
from wespoke_tui.session import CallSession
from wespoke_tui.settings import Settings
from wespoke_tui.ui.app import build_app
from wespoke_tui.ui.widgets.message_input import MessageInput
from wespoke_tui.ui.widgets.status_bar import StatusBar
from wespoke_tui.ui.widgets.transcript import Transcript, TranscriptLine

pytestmark = pytest.mark.timeout(150)

WESPOKE_TUI = Path(sys.executable).with_name("wespoke-tui")
SOUND_DBFS = -45.0  # a 10 ms block of the output louder than this is the assistant talking
MIN_INTERRUPTION_S = 0.5  # the worker's (and the framework's default) speech needed to interrupt
# How much of an answer the client may still play once the agent stopped speaking it (its state
# left "speaking"): the barge-in's "the assistant's audio stops within ~0.5 s".
STOP_WITHIN_S = 0.5


@functools.cache
def speech(text: str) -> np.ndarray:
    """The user's voice: espeak-ng at 48 kHz, -6 dBFS peak (what the VAD takes for speech)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True, capture_output=True, timeout=60)
        voice = read_wav_48k_mono(path).astype(np.float64)
    return np.round(voice * (0.5 * 32767 / max(1.0, float(np.abs(voice).max())))).astype(np.int16)


def timeline(total_s: float, *utterances: tuple[float, np.ndarray]) -> np.ndarray:
    samples = np.zeros(int(total_s * SAMPLE_RATE), dtype=np.int16)
    for at, voice in utterances:
        start = int(at * SAMPLE_RATE)
        samples[start : start + voice.size] = voice
    return samples


def onset_s(voice: np.ndarray) -> float:
    """Where the sound in `voice` starts (espeak-ng leads with a little silence)."""
    blocks = voice[: voice.size // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    loud = [i for i, block in enumerate(blocks) if rms_dbfs(block) > SOUND_DBFS]
    return loud[0] * FRAME_SAMPLES / SAMPLE_RATE


def sound_blocks(samples: np.ndarray) -> np.ndarray:
    """Start times (s) of the 10 ms blocks louder than SOUND_DBFS."""
    blocks = samples[: samples.size // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    loud = np.array([rms_dbfs(block) > SOUND_DBFS for block in blocks], dtype=bool)
    return np.flatnonzero(loud) * FRAME_SAMPLES / SAMPLE_RATE


def after(records: list[dict[str, Any]], record: dict[str, Any], name: str, **match: Any) -> dict[str, Any]:
    """The first report `name` (matching) that comes after `record` in the worker's log."""
    later = records[records.index(record) + 1 :]
    found = next((r for r in later if r.get("event") == name and all(r.get(k) == v for k, v in match.items())), None)
    assert found is not None, f"no {name} {match} after this {record['event']} in the worker's log"
    return found


def assert_worker_stayed_offline(stack: AgentsStack) -> None:
    assert stack.worker.log.events("network_blocked") == []


def test_parts_run_offline_with_the_model_from_the_wheel() -> None:
    """The VAD, STT, LLM and TTS of the assistant on their own, in the agents venv, with the network
    guard on: silero's weights come from the plugin's wheel, the VAD takes espeak-ng speech for
    speech, the STT describes it, the LLM answers after its think time, and a socket to anywhere
    but loopback is refused."""
    done = subprocess.run(
        [str(agents_python()), "-m", "tests.stack.agents_assistant", "--self-check", "--log-file", "/dev/null"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=90,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout.strip().splitlines()[-1])
    model = Path(doc["vad_model"])
    assert model.is_file() and model.is_relative_to(Path(doc["silero_package"]))
    assert "site-packages" in model.parts
    assert doc["tts_audio_s"] > 2.0 and doc["tts_peak"] > 3000
    types = [e["type"] for e in doc["stt_events"]]
    assert types == ["start_of_speech", "end_of_speech", "final_transcript"], doc["stt_events"]
    heard = doc["stt_events"][-1]["text"]
    match = USER_TRANSCRIPT.match(heard)
    assert match and 2.0 <= float(match.group(1)) <= doc["tts_audio_s"], heard
    assert doc["llm_answer"] == reply_to("are you there")
    assert THINK_S <= doc["llm_s"] < THINK_S + 1.0
    assert all(v.startswith("refused:") for v in doc["network"].values()), doc["network"]


async def test_headless_call_greets_answers_and_is_interrupted(agents_stack: AgentsStack, tmp_path: Path) -> None:
    """One headless call on WAV files: the greeting (the call's first-message override, which
    reaches the agent in its dispatch metadata); an utterance answered after the think time; a
    second utterance that cuts the answer (barge-in) and is answered in full. States, transcript
    and timing are checked on the client's output and against the worker's log."""
    greeting = "Good day, this greeting comes from the first message of the call."
    first, second = speech("hello there, how are you today"), speech("wait a moment")
    first_at, second_at = 9.0, 16.0  # greeting done by the first; the first's answer playing at the second
    mic = tmp_path / "in.wav"
    write_wav_48k_mono(mic, timeline(second_at + 20, (first_at, first), (second_at, second)))
    out_wav, transcript = tmp_path / "out.wav", tmp_path / "t.jsonl"
    args = [str(WESPOKE_TUI), "call", "--no-tui", "--api-key", agents_stack.api.api_key,
            "--assistant-id", ASSISTANT_ID, "--api-url", agents_stack.api.url, "--lang", "en",
            "--first-message", greeting, "--input-wav", str(mic), "--output-wav", str(out_wav),
            "--transcript", str(transcript),
            "--duration", "35", "--log-file", str(tmp_path / "call.log"), "--log-level", "info"]
    done = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    (call,) = agents_stack.api.calls.values()
    job = agents_stack.job_for(call.call_id)
    room = job["room"]
    assert room == call.room_name
    agents_stack.worker.log.wait_for("job_ended", lambda r: r["room"] == room, timeout=20)  # it left with us

    # -- the worker's view: what it heard, when it answered, what got cut
    log = agents_stack.events(room)
    items = [(r["role"], r["text"], r["interrupted"]) for r in log if r["event"] == "conversation_item"]
    heard = [r["text"] for r in log if r["event"] == "user_transcript" and r["final"]]
    assert len(heard) == 2 and all(USER_TRANSCRIPT.match(t) for t in heard), heard
    first_heard, second_heard = heard
    assert float(USER_TRANSCRIPT.match(first_heard).group(1)) > float(USER_TRANSCRIPT.match(second_heard).group(1))
    assert json.loads(job["dispatch_metadata"])["assistantOverrides"] == {"firstMessage": greeting}
    assert items[0] == ("assistant", greeting, False)
    assert items[1] == ("user", first_heard, False)
    role, cut_text, interrupted = items[2]
    assert role == "assistant" and interrupted, items
    assert reply_to(first_heard).startswith(cut_text) and len(cut_text) < len(reply_to(first_heard))
    assert items[3:] == [("user", second_heard, False), ("assistant", reply_to(second_heard), False)], items

    first_final = next(r for r in log if r["event"] == "user_transcript" and r["text"] == first_heard)
    thinking = after(log, first_final, "agent_state", state="thinking")
    answering = after(log, thinking, "agent_state", state="speaking")
    # The answer comes after the LLM's think time, and not much later.
    assert THINK_S <= answering["mono"] - first_final["mono"] < THINK_S + 1.5
    barge = after(log, answering, "user_state", state="speaking")
    stopped = after(log, answering, "agent_state")
    assert stopped["state"] == "listening" and stopped["mono"] > barge["mono"]
    # The agent gave way once the user had spoken for the interruption's minimum.
    assert stopped["mono"] - barge["mono"] < MIN_INTERRUPTION_S + 0.5
    spoke_s = stopped["mono"] - answering["mono"]
    assert_worker_stayed_offline(agents_stack)

    # -- what the client played (the output WAV is time-aligned with the call)
    out = read_wav_48k_mono(out_wav)
    sound = sound_blocks(out)
    first_end = first_at + first.size / SAMPLE_RATE
    second_start, second_end = second_at + onset_s(second), second_at + second.size / SAMPLE_RATE
    greeted = sound[sound < first_at]
    assert greeted.size * FRAME_SAMPLES / SAMPLE_RATE > 1.5, "the greeting was not heard"
    assert rms_dbfs(out[int(greeted[0] * SAMPLE_RATE) : int(greeted[-1] * SAMPLE_RATE)]) > -35.0
    # The next answer cannot start before the user's turn ended (VAD silence, endpointing, think time).
    cut = sound[(sound > first_end) & (sound < second_end + 0.8)]
    assert cut.size, "the answer to the first utterance was not heard"
    assert cut[0] < second_start, "the answer had not started when the user spoke again"
    heard_s = cut[-1] + FRAME_SAMPLES / SAMPLE_RATE - cut[0]
    assert heard_s <= spoke_s + STOP_WITHIN_S, f"played {heard_s:.2f} s of an answer the agent spoke for {spoke_s:.2f} s"
    # What the user lives through: the agent's VAD takes the speech in, it must last the
    # interruption's minimum, and the client stops. A loose bound; the two above are the tight ones.
    talked_over_s = cut[-1] + FRAME_SAMPLES / SAMPLE_RATE - second_start
    print(f"barge-in: the agent gave way {stopped['mono'] - barge['mono']:.2f} s after its VAD heard the user; "
          f"the client played {heard_s - spoke_s:+.2f} s more than it spoke; "
          f"quiet {talked_over_s:.2f} s into the user's speech")
    assert talked_over_s < MIN_INTERRUPTION_S + 2.0, f"still talking {talked_over_s:.2f} s into the user's speech"
    last = sound[sound > second_end + 0.8]
    assert last.size * FRAME_SAMPLES / SAMPLE_RATE > 2.0, "the answer to the second utterance was not heard"

    # -- the client's words: states (debounced) and final transcript lines on stdout
    lines = done.stdout.splitlines()
    states = [line for line in lines if line.startswith("assistant: ")]
    assert {"assistant: listening", "assistant: thinking", "assistant: speaking"} <= set(states), lines
    assert ("assistant: thinking", "assistant: speaking") in zip(states, states[1:]), states
    assert f"Assistant: {greeting}" in lines
    assert f"You: {first_heard}" in lines and f"You: {second_heard}" in lines
    assert f"Assistant: {cut_text}" in lines and f"Assistant: {reply_to(second_heard)}" in lines

    # -- the client's records: typed, timestamped; the transcript final and in order
    records = [json.loads(line) for line in transcript.read_text(encoding="utf-8").splitlines()]
    assert records and all(isinstance(r.get("type"), str) and isinstance(r.get("timestamp"), float) for r in records)
    assert all(call.created_at - 1 < r["timestamp"] < time.time() for r in records)
    said = sorted((r for r in records if r["type"] == "transcript"), key=lambda r: r["timestamp"])
    assert all(r["final"] for r in said)
    assert [(r["role"], r["text"]) for r in said] == [
        ("assistant", greeting), ("user", first_heard), ("assistant", cut_text),
        ("user", second_heard), ("assistant", reply_to(second_heard)),
    ]
    assistant_states = [r for r in records if r["type"] == "state" and r["of"] == "assistant"]
    assert {"listening", "thinking", "speaking"} <= {r["state"] for r in assistant_states}
    for i, record in enumerate(assistant_states[:-1]):
        if record["state"] == "thinking":  # the think time is there to be seen
            assert assistant_states[i + 1]["timestamp"] - record["timestamp"] >= THINK_S - 0.1
    call_states = [r["state"] for r in records if r["type"] == "state" and r["of"] == "call"]
    assert call_states == ["requesting_token", "connecting", "connected", "ending", "ended"]


class CuedMicrophone:
    """Silence in real-time 10 ms frames until `say()`; notes when each utterance began to go out."""

    def __init__(self) -> None:
        self._queue: list[np.ndarray] = []
        self._closed = False
        self.said_at: list[float] = []  # time.monotonic() of each utterance's first sounding frame

    async def start(self) -> None:
        pass

    def say(self, voice: np.ndarray) -> None:
        lead = int(onset_s(voice) * SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES
        padded = np.concatenate((voice, np.zeros(-voice.size % FRAME_SAMPLES, dtype=np.int16)))
        self._queue.append(padded[lead:])

    async def frames(self) -> AsyncIterator[np.ndarray]:
        loop = asyncio.get_running_loop()
        start, index = loop.time(), 0
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        playing: np.ndarray | None = None
        while not self._closed:
            delay = start + index * 0.01 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing: one 10 ms frame
            index += 1
            if playing is None and self._queue:
                playing = self._queue.pop(0)
                self.said_at.append(time.monotonic())
            if playing is None:
                yield silence
                continue
            frame, playing = playing[:FRAME_SAMPLES], playing[FRAME_SAMPLES:]
            if playing.size == 0:
                playing = None
            yield frame

    async def aclose(self) -> None:
        self._closed = True


class TimedSpeaker:
    """Notes when each frame of the assistant came (time.monotonic()) and how loud it was."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, float]] = []

    async def start(self) -> None:
        pass

    def write(self, frame: np.ndarray) -> None:
        now = time.monotonic()
        for i in range(0, frame.size, FRAME_SAMPLES):
            self.frames.append((now, rms_dbfs(frame[i : i + FRAME_SAMPLES])))

    def clear(self) -> None:
        pass  # nothing waits here to be played: each frame counts as played when written

    def sounding(self, start: float = 0.0, end: float = float("inf")) -> list[float]:
        """When each frame louder than SOUND_DBFS came, between `start` and `end`."""
        return [t for t, level in self.frames if start <= t <= end and level > SOUND_DBFS]

    async def aclose(self) -> None:
        pass


class CuedBackend:
    def __init__(self) -> None:
        self.input = CuedMicrophone()
        self.output = TimedSpeaker()

    def open_input(self) -> CuedMicrophone:
        return self.input

    def open_output(self) -> TimedSpeaker:
        return self.output

    def health(self) -> dict[str, float]:
        return {}


async def test_tui_call_shows_states_takes_typed_text_and_yields_to_the_user(agents_stack: AgentsStack) -> None:
    """The app on the real CallSession: the greeting heard and shown; the assistant's states in the
    status bar; a typed line delivered once (lk.chat) and answered; speaking over the answer cuts
    it, and the speaker plays at most STOP_WITHIN_S more of it once the agent gave way."""
    backend = CuedBackend()
    settings = settings_for("en", api_url=agents_stack.api.url, api_key=agents_stack.api.api_key,
                            assistant_id=ASSISTANT_ID)
    app = build_app(settings, lambda s: CallSession(s, lambda: backend), clock=FrozenClock(), cursor_blink=False)
    shown: list[str] = []  # the status bar's "Assistant is: …" as rendered, each change once

    async def watch_status_bar() -> None:
        # The state is sampled often; the bar is rendered (a whole-screen composite, too dear to
        # do every few ms) once per change, a frame after it, to read what it shows.
        seen = None
        while True:
            await asyncio.sleep(0.02)  # poll
            if app.status.agent_state == seen:
                continue
            seen = app.status.agent_state
            await asyncio.sleep(0.05)  # pacing: a frame after the change, for the bar to be rendered
            text = " ".join(widget_text(app.query_one(StatusBar)).split())
            word = text.split("Assistant is: ", 1)[1].split(" ")[0] if "Assistant is: " in text else ""
            if word and (not shown or shown[-1] != word):
                shown.append(word)

    def lines() -> list[str]:
        return [line.render().plain for line in app.query_one(Transcript).query(TranscriptLine)]

    async with app.run_test(size=(110, 34)) as pilot:
        watcher = asyncio.get_running_loop().create_task(watch_status_bar())
        try:
            await pilot.press("c")
            await until(pilot, lambda: app.status.state is CallState.CONNECTED, timeout=30)
            call_id = app.status.call_id
            assert call_id
            job = await asyncio.to_thread(agents_stack.job_for, call_id)
            room = job["room"]
            await until(pilot, lambda: f"{ASSISTANT_NAME}: {GREETING}" in lines(), timeout=30)
            assert backend.output.sounding(), "the greeting never reached the speaker"

            typed = "tell me something"
            before = len(shown)
            box = app.query_one(MessageInput)
            await pilot.click("#message-input")
            # Filled in at once: Pilot waits for the app to idle after each key, and a live call
            # (meters at 15 Hz) keeps it busy, so typing key by key takes seconds a key.
            box.value = typed
            await pilot.press("enter")
            await until(pilot, lambda: f"{ASSISTANT_NAME}: {reply_to(typed)}" in lines(), timeout=40)
            assert lines().count(f"You: {typed}") == 1
            received = agents_stack.events(room, "text_input")
            assert [(r["text"], r["topic"], r["sender"]) for r in received] == [(typed, "lk.chat", f"user-{call_id}")]
            record = agents_stack.api.calls[call_id]
            assert [m["content"] for m in record.messages if m["role"] == "user"] == [typed]  # /messages too, once
            assert {"listening", "thinking", "speaking"} <= set(shown), shown
            answering = shown[before:]
            assert "thinking" in answering and "speaking" in answering[answering.index("thinking") :], shown
            # The line is final once all its text came, a little before its audio ends: the next
            # line waits for the agent to finish, or it would cut this answer short.
            played = await asyncio.to_thread(
                agents_stack.worker.log.wait_for, "conversation_item",
                lambda r: r["room"] == room and r["role"] == "assistant" and r["mono"] > received[0]["mono"],
            )
            assert (played["text"], played["interrupted"]) == (reply_to(typed), False)

            # Speak over the next answer, a second into it.
            typed_again = "and one more thing"
            box.value = typed_again
            await pilot.press("enter")
            request = await asyncio.to_thread(
                agents_stack.worker.log.wait_for, "text_input", lambda r: r["room"] == room and r["text"] == typed_again
            )
            speaking = await asyncio.to_thread(
                agents_stack.worker.log.wait_for, "agent_state",
                lambda r: r["room"] == room and r["state"] == "speaking" and r["mono"] > request["mono"],
            )
            await until(pilot, lambda: time.monotonic() > speaking["mono"] + 1.0, timeout=10)
            backend.input.say(speech("wait a moment"))
            stopped = await asyncio.to_thread(
                agents_stack.worker.log.wait_for, "agent_state",
                lambda r: r["room"] == room and r["mono"] > speaking["mono"] and r["state"] != "speaking", 20,
            )
            said_at = backend.input.said_at[-1]
            assert stopped["state"] == "listening" and stopped["mono"] > said_at
            assert stopped["mono"] - said_at < MIN_INTERRUPTION_S + 1.5  # loose: the VAD lags on a busy machine
            cut_item = await asyncio.to_thread(
                agents_stack.worker.log.wait_for, "conversation_item",
                lambda r: r["room"] == room and r["role"] == "assistant" and r["mono"] > stopped["mono"], 20,
            )
            assert cut_item["interrupted"] and reply_to(typed_again).startswith(cut_item["text"])
            assert len(cut_item["text"]) < len(reply_to(typed_again))
            await until(pilot, lambda: f"{ASSISTANT_NAME}: {cut_item['text']}" in lines(), timeout=20)  # final, as played
            heard = await asyncio.to_thread(
                agents_stack.worker.log.wait_for, "user_transcript",
                lambda r: r["room"] == room and r["final"] and r["mono"] > said_at, 20,
            )
            await until(pilot, lambda: f"You: {heard['text']}" in lines(), timeout=20)
            # An answer to the interruption comes in turn; what played before it began was the cut one.
            await until(pilot, lambda: f"{ASSISTANT_NAME}: {reply_to(heard['text'])}" in lines(), timeout=40)
            next_answer = agents_stack.worker.log.wait_for(
                "agent_state", lambda r: r["room"] == room and r["state"] == "speaking" and r["mono"] > stopped["mono"]
            )
            # What still reached the speaker once the agent gave way: the audio on its way then (the
            # agent's 200 ms source queue, the network, the client's buffers). Counted as audio, not
            # as the time it came at, which a busy machine stretches.
            tail = backend.output.sounding(stopped["mono"], next_answer["mono"])
            tail_s = len(tail) * FRAME_SAMPLES / SAMPLE_RATE
            barge = agents_stack.worker.log.wait_for(
                "user_state", lambda r: r["room"] == room and r["state"] == "speaking" and r["mono"] > said_at
            )
            print(f"barge-in: the agent's VAD heard the user {barge['mono'] - said_at:.2f} s after the first sound, "
                  f"gave way {stopped['mono'] - barge['mono']:.2f} s later; then the speaker played {tail_s:.2f} s "
                  f"more of it, the last {max(tail, default=stopped['mono']) - stopped['mono']:.2f} s after")
            assert tail_s <= STOP_WITHIN_S, f"{tail_s:.2f} s of the answer played after the agent gave way"
            assert max(tail, default=stopped["mono"]) - stopped["mono"] < STOP_WITHIN_S + 1.5  # loose: when it came

            order = [line for line in lines() if line.startswith(("You: ", f"{ASSISTANT_NAME}: "))]
            assert order == [
                f"{ASSISTANT_NAME}: {GREETING}", f"You: {typed}", f"{ASSISTANT_NAME}: {reply_to(typed)}",
                f"You: {typed_again}", f"{ASSISTANT_NAME}: {cut_item['text']}", f"You: {heard['text']}",
                f"{ASSISTANT_NAME}: {reply_to(heard['text'])}",
            ], order
            assert not [line for line in lines() if line.endswith(" …")]  # every line final

        finally:
            watcher.cancel()  # the hang-up's confirmation covers the status bar
        await pilot.press("escape", "h", "y")  # out of the message box, then hang up
        await until(pilot, lambda: app.status.state is CallState.ENDED, timeout=15)
    await asyncio.to_thread(agents_stack.worker.log.wait_for, "job_ended", lambda r: r["room"] == room, 20)
    assert await agents_stack.livekit.list_participants(room) == []
    assert_worker_stayed_offline(agents_stack)


@pytest.mark.parametrize(
    ("kind", "metadata", "on_lk_chat"),
    [
        ("agent", None, True),  # a plain LiveKit Agents assistant: only lk.chat reaches it
        ("agent", {"role": "assistant"}, False),  # the backend's own agent: /messages reaches it
        ("standard", {"role": "assistant"}, False),  # not an agent at all (the test assistant's kind)
    ],
    ids=["plain-agent", "wespoke-agent", "standard"],
)
async def test_typed_text_takes_lk_chat_only_to_a_plain_agent(
    livekit_server: LiveKitServer, kind: str, metadata: dict[str, str] | None, on_lk_chat: bool
) -> None:
    """The rule of `CallSession.send_text`, against a participant this test plays: every line goes
    to /messages; it also goes on lk.chat, to the assistant alone, only when that is kind AGENT
    without the Wespoke `role: assistant` metadata."""
    server = start_wespoke_server(livekit_url=livekit_server.url)
    settings = Settings(api_key=server.api_key, assistant_id=server.assistant_id, api_url=server.url, lang="en",
                        mic_consent_given=True)
    session = CallSession(settings, lambda: WavBackend(None, None))
    assistant = rtc.Room()
    chat: list[tuple[str, str]] = []
    readers: set[asyncio.Task[None]] = set()

    async def read(reader: rtc.TextStreamReader, sender: str) -> None:
        chat.append((sender, await reader.read_all()))

    def on_chat(reader: rtc.TextStreamReader, sender: str) -> None:
        task = asyncio.get_running_loop().create_task(read(reader, sender))
        readers.add(task)
        task.add_done_callback(readers.discard)

    assistant.register_text_stream_handler("lk.chat", on_chat)
    try:
        await session.start()
        call = server.calls[session.call_id]
        token = (
            lkapi.AccessToken(livekit_server.api_key, livekit_server.api_secret)
            .with_identity("agent-under-test").with_kind(kind)  # type: ignore[arg-type]
            .with_grants(lkapi.VideoGrants(room_join=True, room=call.room_name, agent=kind == "agent"))
        )
        if metadata is not None:
            token = token.with_metadata(json.dumps(metadata))
        with _short_secret_ok():
            jwt = token.to_jwt()
        await assistant.connect(livekit_server.url, jwt)
        deadline = time.monotonic() + 10
        while (seen := session.room.remote_participants.get("agent-under-test") if session.room else None) is None:
            assert time.monotonic() < deadline, "the session never saw the participant"
            await asyncio.sleep(0.02)  # poll
        kinds = {"agent": rtc.ParticipantKind.PARTICIPANT_KIND_AGENT, "standard": rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD}
        assert seen.kind == kinds[kind]

        await session.send_text("hello there")
        assert [m["content"] for m in call.messages if m["role"] == "user"] == ["hello there"]
        # A marker after it, on the same path: once it is in, anything send_text put on lk.chat is too.
        assert session.room is not None
        await session.room.local_participant.send_text(
            "marker", topic="lk.chat", destination_identities=["agent-under-test"]
        )
        deadline = time.monotonic() + 10
        while not any(text == "marker" for _, text in chat):
            assert time.monotonic() < deadline, f"the marker never arrived: {chat}"
            await asyncio.sleep(0.02)  # poll
        caller = f"user-{call.call_id}"
        assert chat == ([(caller, "hello there")] if on_lk_chat else []) + [(caller, "marker")]
    finally:
        await session.hang_up()
        await session.aclose()
        await assistant.disconnect()
        server.stop()


PARENT = """
import sys, time
from pathlib import Path
from tests.stack.agents_control import AgentsWorker
worker = AgentsWorker(sys.argv[1], Path(sys.argv[2]), agent_name=sys.argv[3]).start()
print(worker.proc.pid, flush=True)
time.sleep(600)  # scenario: the parent lives until the test kills it
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # exited, not yet reaped by init
    except FileNotFoundError:
        return True


def test_worker_leaves_with_a_dead_test_process(agents_livekit: LiveKitServer, tmp_path: Path) -> None:
    """A worker whose test process is SIGKILLed shuts down by itself, cleanly, and it never had a
    child process that could outlive it (jobs run on threads)."""
    log_path = tmp_path / "worker.jsonl"
    # Under a name of its own: no call of another test is dispatched to it.
    parent = subprocess.Popen([sys.executable, "-c", PARENT, agents_livekit.url, str(log_path), "orphan-check"],
                              cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert children_of(pid) == []
        parent.kill()
        parent.wait(timeout=5)
        deadline = time.monotonic() + 20
        while not _gone(pid):
            assert time.monotonic() < deadline, "the worker outlived its test process"
            time.sleep(0.05)  # poll
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=5)
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    events = [(r["event"], r.get("reason"), r.get("code")) for r in records if r.get("event") in ("stopping", "stopped")]
    assert events == [("stopping", "stdin closed", None), ("stopped", None, 0)]
