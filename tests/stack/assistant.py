"""The test assistant: a separate process on the `livekit` rtc SDK that plays a Wespoke assistant.

    python -m tests.stack.assistant --url WS --token JWT --call-id ID --api-url URL [--report-frames]

It joins as `assistant-<callId>` (metadata `{"role":"assistant"}` comes with the token), publishes
one audio track, greets with a known tone once the user is there and subscribed (not with
--no-greeting), then echoes the user's microphone back frame by frame and sends every data message
of the contract once.

`lk.agent.state` follows what it does, but never holds up its audio: an update counts as done when
the server echoes it back (see `apply_attributes`).

Control (stdin, one JSON object a line):
    {"cmd":"barge_in","lead_s":1.0,"stop_tone":true}  long 660 Hz tone; after lead_s the `barge_in`
                                                      message is sent (and the tone stops, as an
                                                      agent that was interrupted would)
    {"cmd":"call_ending","reason":"...","message":"...","leave_after_s":null}
    {"cmd":"send","payload":{...}} | {"cmd":"send","raw":"..."}  (optional "topic")
    {"cmd":"tone","freq":440,"seconds":1.0,"dbfs":-12}
    {"cmd":"play","path":"/x.wav"}                    a 48 kHz mono WAV (reports tone_start/done)
    {"cmd":"stop_audio"}                              drop whatever is still queued to play
    {"cmd":"quit"}

Reports (stdout, one JSON object a line, flushed): see `report()` calls; every report has "event"
and "wall" (time.time()), most have "t" (seconds since the first user frame).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import math
import signal
import sys
import threading
import time
from typing import Any

import httpx
import numpy as np
from livekit import rtc

from tests.support.signals import power_dbfs, read_wav

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 480  # 10 ms
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE

GREETING_FREQ_HZ = 440.0
GREETING_PEAK_DBFS = -12.0
GREETING_SECONDS = 1.5
FADE_S = 0.010
BARGE_IN_TONE_HZ = 660.0
BARGE_IN_TONE_SECONDS = 10.0

SILENCE_DBFS = -96.0
SPEAKING_THRESHOLD_DBFS = -45.0  # echoed frames louder than this count as "speaking"
SPEAKING_HANG_S = 0.3
ECHO_MAX_FRAMES = 10  # echo backlog cap: older frames are dropped, so the echo never lags > 100 ms
OUTPUT_QUEUE_MS = 100

# The script of data messages sent once after the greeting (docs/api-contract.md, "Data messages").
STREAM_ID = "msg-stream-1"
STREAM_CHUNKS = ("Merhaba, ", "size nasıl ", "yardımcı olabilirim?")
STREAM_FULL_TEXT = "".join(STREAM_CHUNKS)
CONVERSATION_ITEM_ID = "conv-item-1"
CONVERSATION_ITEM_TEXT = "Bugün hava güzel."
TRANSCRIPTION_ID = "tr-1"
TRANSCRIPTION_PARTIAL = "merhaba ben"
TRANSCRIPTION_FINAL = "merhaba ben test kullanıcısı"
TEXT_STREAM_SEGMENT_ID = "seg-1"
TEXT_STREAM_TEXT = "standard transcription from lk.transcription"
TOOL_NAME = "lookup_weather"
METRICS = {"latency": 420, "duration": 1.2}
MALFORMED_PAYLOAD = b"{not json"
UNKNOWN_PAYLOAD = {"type": "mystery", "value": 1}
HISTORY_ONLY_MESSAGE = {"role": "assistant", "content": "only-in-history", "id": "hist-1"}

log = logging.getLogger("test-assistant")


def report(event: str, **fields: Any) -> None:
    """One JSON line on stdout; the test side (`AssistantProcess`) parses these."""
    sys.stdout.write(json.dumps({"event": event, "wall": time.time(), **fields}) + "\n")
    sys.stdout.flush()


def tone(freq: float, seconds: float, peak_dbfs: float, fade_s: float = FADE_S) -> np.ndarray:
    """A sine of `seconds` at `peak_dbfs` peak with linear fades in and out, int16 mono 48 kHz."""
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    amplitude = 32767.0 * 10 ** (peak_dbfs / 20.0)
    wave = amplitude * np.sin(2 * np.pi * freq * t)
    fade = min(int(fade_s * SAMPLE_RATE), n // 2)
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
        wave[:fade] *= ramp
        wave[n - fade :] *= ramp[::-1]
    return np.round(wave).astype(np.int16)


def data_messages(now_ms: int) -> list[bytes]:
    """Every contract message the assistant sends once, in order (plus a malformed and an unknown one)."""
    def enc(obj: dict[str, Any]) -> bytes:
        return json.dumps(obj, ensure_ascii=False).encode()

    msgs: list[bytes] = []
    acc = ""
    for i, chunk in enumerate(STREAM_CHUNKS):
        acc += chunk
        last = i == len(STREAM_CHUNKS) - 1
        msgs.append(
            enc(
                {
                    "type": "message",
                    "id": STREAM_ID,
                    "role": "assistant",
                    "content": acc if last else chunk,
                    "timestamp": now_ms,
                    "isFirstChunk": i == 0,
                    "isStreaming": not last,
                    "isComplete": last,
                }
            )
        )
    msgs.append(
        enc(
            {
                "type": "conversation_item",
                "id": CONVERSATION_ITEM_ID,
                "role": "assistant",
                "content": CONVERSATION_ITEM_TEXT,
                "timestamp": now_ms,
                "isComplete": True,
            }
        )
    )
    for seq, (text, final) in enumerate(((TRANSCRIPTION_PARTIAL, False), (TRANSCRIPTION_FINAL, True))):
        msgs.append(
            enc(
                {
                    "type": "transcription_stream",
                    "transcriptionId": TRANSCRIPTION_ID,
                    "text": text,
                    "isFinal": final,
                    "isStreaming": not final,
                    "sequence": seq,
                    "timestamp": now_ms,
                }
            )
        )
    for phase in ("tool_start", "tool_complete", "tool_failed", "tool_delayed"):
        msgs.append(
            enc(
                {
                    "type": phase,
                    "toolName": TOOL_NAME,
                    "toolType": "function",
                    "timestamp": now_ms,
                    "toolDetails": {"phase": phase, "args": {"city": "Istanbul"}},
                }
            )
        )
    msgs.append(enc({"type": "metrics", **METRICS}))
    msgs.append(MALFORMED_PAYLOAD)
    msgs.append(enc(UNKNOWN_PAYLOAD))
    return msgs


class Sound:
    """A buffer being played; `pos` advances 10 ms at a time."""

    def __init__(self, samples: np.ndarray, tag: str) -> None:
        self.samples = samples
        self.pos = 0
        self.tag = tag

    def take(self) -> np.ndarray | None:
        if self.pos >= self.samples.size:
            return None
        chunk = self.samples[self.pos : self.pos + FRAME_SAMPLES]
        self.pos += FRAME_SAMPLES
        if chunk.size < FRAME_SAMPLES:
            chunk = np.pad(chunk, (0, FRAME_SAMPLES - chunk.size))
        return chunk


class Assistant:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.room = rtc.Room()
        self.source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=OUTPUT_QUEUE_MS)
        self.sounds: list[Sound] = []
        self.sound_done: dict[str, asyncio.Event] = {}
        self.echo: collections.deque[np.ndarray] = collections.deque(maxlen=ECHO_MAX_FRAMES)
        self.echo_enabled = False
        self.user: rtc.RemoteParticipant | None = None
        self.user_present = asyncio.Event()
        self.user_subscribed = asyncio.Event()
        self.own_attribute_changes: list[dict[str, str]] = []  # as the server echoed them back
        self.own_attributes_changed = asyncio.Event()
        self.done = asyncio.Event()
        self.first_frame_at: float | None = None
        self.second_bucket: list[float] = [0.0, 0]  # sum of squares (normalised), frames
        self.total_frames = 0
        self.receiving: set[str] = set()  # the sids of the user's tracks being received, once each
        self.agent_state = ""
        self.last_loud_at = 0.0
        self.tasks: set[asyncio.Task[Any]] = set()

    # -- helpers ---------------------------------------------------------------------------
    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task failed", exc_info=task.exception())
            report("error", message=repr(task.exception()))

    def since_first_frame(self) -> float | None:
        return None if self.first_frame_at is None else round(time.monotonic() - self.first_frame_at, 4)

    async def set_state(self, state: str) -> None:
        if state == self.agent_state:
            return
        self.agent_state = state
        try:
            took_s = await self.apply_attributes({"lk.agent.state": state})
            report("agent_state", state=state, took_s=round(took_s, 3))
        except Exception as exc:  # noqa: BLE001 - the room may be going away
            log.warning("set_attributes failed: %s", exc)

    async def apply_attributes(self, attributes: dict[str, str], timeout: float = 5.0) -> float:
        """`set_attributes`, done once the server has applied it: its answer, or our own update
        echoed back (`participant_attributes_changed` for us), whichever comes first. Seconds taken.

        The answer alone is not enough: the livekit Rust SDK registers the waiter for a request's
        answer only after sending the request (local_participant.rs, `set_attributes`), so now and
        then an answer that comes back quickly is dropped and the call waits out its 5 s request
        timeout, though the update was applied (and seen by everyone) within milliseconds; the
        Python SDK does not even raise then. 5 calls in 140 here, on a quiet machine; a 5 s stall
        before a tone or before publishing our track shifted the audio the tests time.
        """
        began = time.monotonic()
        seen = len(self.own_attribute_changes)

        async def ask() -> BaseException | None:  # runs on when we stop waiting for it
            try:
                await self.room.local_participant.set_attributes(attributes)
            except Exception as exc:  # noqa: BLE001 - raised below if it still matters
                return exc
            if time.monotonic() - began > 1.0:  # the answer was lost: the SDK's timeout ended the call
                report("attributes_answer_late", attributes=attributes, took_s=round(time.monotonic() - began, 3))
            return None

        request = self.spawn(ask())

        def echoed() -> bool:
            return any(all(changed.get(k) == v for k, v in attributes.items())
                       for changed in self.own_attribute_changes[seen:])

        deadline = began + timeout
        while not request.done() and not echoed():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"set_attributes({attributes}) neither answered nor echoed in {timeout} s")
            self.own_attributes_changed.clear()
            changed = asyncio.ensure_future(self.own_attributes_changed.wait())
            await asyncio.wait({request, changed}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
        if request.done() and not request.cancelled() and request.result() is not None and not echoed():
            raise request.result()
        return time.monotonic() - began

    def on_attributes_changed(self, changed: dict[str, str], participant: rtc.Participant) -> None:
        if participant.identity == self.room.local_participant.identity:
            self.own_attribute_changes.append(dict(changed))
            self.own_attributes_changed.set()

    def play(self, samples: np.ndarray, tag: str) -> asyncio.Event:
        done = asyncio.Event()
        self.sound_done[tag] = done
        self.sounds.append(Sound(samples, tag))
        return done

    def stop_audio(self, tag: str | None = None) -> None:
        keep = [s for s in self.sounds if tag is not None and s.tag != tag]
        for s in self.sounds:
            if s not in keep:
                self.sound_done.pop(s.tag, asyncio.Event()).set()
        self.sounds = keep
        self.source.clear_queue()

    async def send_data(self, payload: bytes, topic: str = "") -> None:
        await self.room.local_participant.publish_data(payload, reliable=True, topic=topic)

    # -- the room ------------------------------------------------------------------------------
    def is_user(self, participant: rtc.RemoteParticipant) -> bool:
        return not participant.identity.startswith("assistant")

    def on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        if self.is_user(participant) and self.user is None:
            self.user = participant
            self.user_present.set()
            report("user_joined", identity=participant.identity)

    def on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if self.user is not None and participant.identity == self.user.identity:
            self.user = None
            self.user_present.clear()
            report("user_left", identity=participant.identity)
            self.spawn(self.exit_unless_user_returns())

    async def exit_unless_user_returns(self, grace_s: float | None = None) -> None:
        try:
            await asyncio.wait_for(self.user_present.wait(), grace_s or self.args.user_grace_s)
        except asyncio.TimeoutError:
            self.done.set()

    def on_track_subscribed(
        self, track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO or not self.is_user(participant):
            return
        if publication.name != "microphone":
            report("ignored_track", name=publication.name, identity=participant.identity)
            return
        if publication.sid in self.receiving:
            return  # subscribed while connecting, then found again among the publications
        self.receiving.add(publication.sid)
        report("user_track_subscribed", name=publication.name, identity=participant.identity)
        self.spawn(self.receive_user_audio(track))

    def on_track_mute(self, muted: bool, participant: rtc.Participant, publication: rtc.TrackPublication) -> None:
        if isinstance(participant, rtc.RemoteParticipant) and self.is_user(participant):
            report("track_muted", muted=muted, name=publication.name, t=self.since_first_frame())

    def on_data(self, packet: rtc.DataPacket) -> None:
        raw = bytes(packet.data)
        try:
            payload: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            payload = raw.decode("utf-8", "replace")
        sender = packet.participant.identity if packet.participant else None
        report("data", payload=payload, topic=packet.topic, sender=sender)

    # -- audio -----------------------------------------------------------------------------
    async def receive_user_audio(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1, frame_size_ms=10, capacity=100)
        try:
            async for ev in stream:
                samples = np.frombuffer(bytes(ev.frame.data), dtype=np.int16)
                now = time.monotonic()
                if self.first_frame_at is None:
                    self.first_frame_at = now
                    self.spawn(self.energy_ticker())
                x = samples.astype(np.float64) / 32768.0
                self.second_bucket[0] += float(np.dot(x, x))
                self.second_bucket[1] += samples.size
                self.total_frames += 1
                level = power_dbfs(samples)
                if self.args.report_frames:
                    report("frame_rms", t=round(now - self.first_frame_at, 4), rms_dbfs=round(level, 2))
                if self.echo_enabled:
                    self.echo.append(samples)
                    if level > SPEAKING_THRESHOLD_DBFS:
                        self.last_loud_at = now
        finally:
            await stream.aclose()

    async def energy_ticker(self) -> None:
        """Once a (wall-clock) second after the first user frame: RMS and frame count of that second."""
        assert self.first_frame_at is not None
        second = 0
        while not self.done.is_set():
            second += 1
            await asyncio.sleep(max(0.0, self.first_frame_at + second - time.monotonic()))
            energy, samples = self.second_bucket
            self.second_bucket = [0.0, 0]
            frames = int(samples) // FRAME_SAMPLES
            level = SILENCE_DBFS if samples == 0 or energy <= 0 else max(SILENCE_DBFS, 10 * math.log10(energy / samples))
            report(
                "energy",
                t=round(time.monotonic() - self.first_frame_at, 4),
                second=second - 1,
                rms_dbfs=round(level, 2),
                frames=frames,
                total_frames=self.total_frames,
            )

    async def player(self) -> None:
        """Every 10 ms, one frame: the sounds being played plus the echo, mixed, paced by the clock."""
        next_at = time.monotonic()
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        while not self.done.is_set():
            mix = np.zeros(FRAME_SAMPLES, dtype=np.int32)
            for sound in list(self.sounds):
                chunk = sound.take()
                if chunk is None:
                    self.sounds.remove(sound)
                    self.sound_done.pop(sound.tag, asyncio.Event()).set()
                else:
                    mix += chunk
            if self.echo:
                mix += self.echo.popleft()
            frame = np.clip(mix, -32768, 32767).astype(np.int16) if mix.any() else silence
            await self.source.capture_frame(
                rtc.AudioFrame(frame.tobytes(), SAMPLE_RATE, 1, FRAME_SAMPLES)
            )
            next_at += FRAME_S
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.2:
                next_at = time.monotonic()  # far behind (a stall): resync instead of bursting

    async def speaking_state(self) -> None:
        """While echoing, `lk.agent.state` follows the energy of what is echoed."""
        while not self.done.is_set():
            await asyncio.sleep(0.05)
            if not self.echo_enabled or any(s.tag for s in self.sounds):
                continue
            loud = time.monotonic() - self.last_loud_at < SPEAKING_HANG_S
            await self.set_state("speaking" if loud else "listening")

    # -- the script ------------------------------------------------------------------------------
    async def greet_then_script(self) -> None:
        await self.user_present.wait()
        if self.args.no_greeting:
            report("greeting_skipped")
        else:
            await self.greet()
        self.echo.clear()
        self.echo_enabled = not self.args.no_echo
        report("greeting_done")
        if not self.args.no_script:
            await self.send_script()

    async def greet(self) -> None:
        try:
            # Greet once the user can hear it: when it has subscribed to our track.
            await asyncio.wait_for(self.user_subscribed.wait(), 10.0)
        except asyncio.TimeoutError:
            report("warning", message="user did not subscribe to the assistant track within 10 s")
        await asyncio.sleep(self.args.greeting_delay_s)
        await self.set_state("speaking")
        report("greeting_start", freq=GREETING_FREQ_HZ, seconds=GREETING_SECONDS, peak_dbfs=GREETING_PEAK_DBFS)
        await self.play(tone(GREETING_FREQ_HZ, GREETING_SECONDS, GREETING_PEAK_DBFS), "greeting").wait()
        await self.set_state("listening")

    async def send_script(self) -> None:
        now_ms = int(time.time() * 1000)
        for payload in data_messages(now_ms):
            await self.send_data(payload)
            await asyncio.sleep(0.02)
        await self.room.local_participant.send_text(
            TEXT_STREAM_TEXT,
            topic="lk.transcription",
            attributes={"lk.transcription_final": "true", "lk.segment_id": TEXT_STREAM_SEGMENT_ID},
        )
        report("script_sent")
        await self.post_history_only_message()

    async def post_history_only_message(self) -> None:
        if not self.args.api_url:
            return
        url = f"{self.args.api_url.rstrip('/')}/_test/calls/{self.args.call_id}/messages"
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                resp = await client.post(url, json=HISTORY_ONLY_MESSAGE)
            report("history_posted", status=resp.status_code)
        except httpx.HTTPError as exc:
            report("history_posted", status=None, error=repr(exc))

    # -- control -----------------------------------------------------------------------------
    async def handle(self, cmd: dict[str, Any]) -> None:
        name = cmd.get("cmd")
        if name == "quit":
            self.done.set()
        elif name == "barge_in":
            self.spawn(self.barge_in(float(cmd.get("lead_s", 1.0)), bool(cmd.get("stop_tone", True))))
        elif name == "call_ending":
            msg = {"type": "call_ending", "reason": cmd.get("reason"), "message": cmd.get("message"),
                   "timestamp": int(time.time() * 1000)}
            await self.send_data(json.dumps(msg).encode())
            report("sent", payload=msg)
            if cmd.get("leave_after_s") is not None:
                await asyncio.sleep(float(cmd["leave_after_s"]))
                self.done.set()
        elif name == "send":
            payload = cmd["raw"].encode() if "raw" in cmd else json.dumps(cmd.get("payload")).encode()
            await self.send_data(payload, topic=cmd.get("topic", ""))
            report("sent", raw=payload.decode("utf-8", "replace"))
        elif name == "tone":
            samples = tone(float(cmd.get("freq", 440)), float(cmd.get("seconds", 1.0)), float(cmd.get("dbfs", -12)))
            tag = f"tone-{time.monotonic()}"
            self.spawn(self.play_reported(samples, tag, cmd))
        elif name == "play":
            samples, _ = read_wav(cmd["path"])
            self.spawn(self.play_reported(samples, f"play-{time.monotonic()}", cmd))
        elif name == "stop_audio":
            self.stop_audio()
            report("audio_stopped")
        else:
            report("error", message=f"unknown command {cmd!r}")

    async def play_reported(self, samples: np.ndarray, tag: str, cmd: dict[str, Any]) -> None:
        # The tone starts at the command (the next 10 ms frame); the state follows it.
        done = self.play(samples, tag)
        report("tone_start", **{k: v for k, v in cmd.items() if k != "cmd"})
        await self.set_state("speaking")
        await done.wait()
        await self.set_state("listening")
        report("tone_done")

    async def barge_in(self, lead_s: float, stop_tone: bool) -> None:
        await self.set_state("speaking")
        done = self.play(tone(BARGE_IN_TONE_HZ, BARGE_IN_TONE_SECONDS, GREETING_PEAK_DBFS), "barge-tone")
        report("barge_tone_start", freq=BARGE_IN_TONE_HZ)
        await asyncio.sleep(lead_s)
        await self.send_data(json.dumps({"type": "barge_in", "timestamp": int(time.time() * 1000)}).encode())
        report("barge_in_sent")
        if stop_tone:
            self.stop_audio("barge-tone")
            report("barge_tone_stopped")
        await done.wait()
        await self.set_state("listening")

    async def read_stdin(self) -> None:
        """Commands arrive on a thread (blocking readline) and are handled on the loop."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def reader() -> None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line)
            loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=reader, name="stdin-reader", daemon=True).start()
        while True:
            line = await queue.get()
            if line is None:
                return  # stdin closed: the test side went away; keep running until the room ends
            if not line.strip():
                continue
            try:
                cmd = json.loads(line)
            except ValueError:
                report("error", message=f"bad command line {line!r}")
                continue
            try:
                await self.handle(cmd)
            except Exception as exc:  # noqa: BLE001 - a bad command must not kill the assistant
                report("error", message=f"{cmd!r}: {exc!r}")

    # -- main ---------------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.done.set)
        self.spawn(self.read_stdin())  # quit works while joining too
        joining = asyncio.ensure_future(self.join())
        stopping = asyncio.ensure_future(self.done.wait())
        await asyncio.wait({joining, stopping}, return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if not joining.done():
            # Asked to stop while connecting: cancelling the connect may upset the FFI (python-sdks
            # #784), but the process is exiting anyway.
            joining.cancel()
        elif joining.exception() is not None:
            report("error", message=f"join failed: {joining.exception()!r}")
            code = 1
        else:
            await stopping
        stopping.cancel()
        await asyncio.gather(joining, stopping, return_exceptions=True)

        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(self.room.disconnect(), 5.0)
        except Exception as exc:  # noqa: BLE001 - leaving is best effort; the process exits anyway
            log.warning("disconnect: %r", exc)
        report("exited", code=code)
        return code

    async def join(self) -> None:
        room = self.room
        room.on("participant_connected", self.on_participant_connected)
        room.on("participant_disconnected", self.on_participant_disconnected)
        room.on("track_subscribed", self.on_track_subscribed)
        room.on("local_track_subscribed", self.on_local_track_subscribed)
        room.on("participant_attributes_changed", self.on_attributes_changed)
        room.on("track_muted", lambda p, pub: self.on_track_mute(True, p, pub))
        room.on("track_unmuted", lambda p, pub: self.on_track_mute(False, p, pub))
        room.on("data_received", self.on_data)
        room.on("reconnecting", lambda: report("reconnecting"))
        room.on("reconnected", lambda: report("reconnected"))
        room.on("disconnected", lambda reason: (report("disconnected", reason=str(reason)), self.done.set()))
        room.register_text_stream_handler("lk.chat", self.on_chat_text)

        await room.connect(self.args.url, self.args.token)
        await self.set_state("initializing")
        track = rtc.LocalAudioTrack.create_audio_track("assistant-voice", self.source)
        await room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        report("joined", identity=room.local_participant.identity, room=room.name)
        await self.set_state("listening")
        for participant in list(room.remote_participants.values()):
            self.on_participant_connected(participant)  # the user may have joined first
            for pub in participant.track_publications.values():
                if pub.track is not None and pub.subscribed:
                    self.on_track_subscribed(pub.track, pub, participant)  # type: ignore[arg-type]

        if self.user is None:  # the user may also have come and gone before we got here
            self.spawn(self.exit_unless_user_returns(self.args.user_wait_s))
        self.spawn(self.player())
        self.spawn(self.speaking_state())
        self.spawn(self.greet_then_script())

    def on_local_track_subscribed(self, _track: rtc.Track) -> None:
        if not self.user_subscribed.is_set():
            self.user_subscribed.set()
            report("user_subscribed")

    def on_chat_text(self, reader: rtc.TextStreamReader, participant_identity: str) -> None:
        async def read() -> None:
            text = await reader.read_all()
            report("chat", text=text, sender=participant_identity)

        self.spawn(read())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.stack.assistant")
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--call-id", required=True)
    p.add_argument("--api-url", default=None, help="base URL of the local API server (for /_test/…)")
    p.add_argument("--report-frames", action="store_true", help="report the RMS of every 10 ms user frame")
    p.add_argument("--no-echo", action="store_true")
    p.add_argument("--no-script", action="store_true", help="do not send the data messages after the greeting")
    p.add_argument("--no-greeting", action="store_true",
                   help="no greeting tone: the assistant is silent until a command makes it play")
    p.add_argument("--greeting-delay-s", type=float, default=0.3,
                   help="pause between the user's subscription and the greeting (media path warm-up)")
    p.add_argument("--user-grace-s", type=float, default=3.0,
                   help="how long to wait for a user who left to come back before exiting")
    p.add_argument("--user-wait-s", type=float, default=15.0,
                   help="how long to wait for a user who is not in the room when we join before exiting")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="assistant %(levelname)s %(message)s")
    args = parse_args(argv)

    async def amain() -> int:
        # Room and AudioSource bind to the running loop when created: build them inside it.
        return await Assistant(args).run()

    return asyncio.run(amain())


if __name__ == "__main__":
    sys.exit(main())
