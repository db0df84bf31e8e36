"""The local stack itself: the real LiveKit server, API tokens it accepts, and the test assistant.

The "user" here is a plain `rtc.Room` client, so these tests check the stack without `CallSession`.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pytest
from livekit import rtc

from tests.stack import assistant as script
from tests.stack import livekit_server as lk_module
from tests.stack.assistant_control import make_dispatcher
from tests.stack.livekit_fixtures import Stack
from tests.stack.livekit_server import LiveKitServer, LiveKitServerError
from tests.stack.wespoke_fixtures import start_wespoke_server
from tests.support.signals import dominant_hz, rms_dbfs, sine_at
from tests.support.waiting import eventually

SR = 48_000


def answers(server: LiveKitServer) -> bool:
    try:
        with urllib.request.urlopen(server.http_url, timeout=0.5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


# --------------------------------------------------------------------------- the LiveKit server


def test_server_starts_answers_restarts_and_stops(livekit_server: LiveKitServer) -> None:
    assert livekit_server.running and answers(livekit_server)
    assert livekit_server.startup_seconds is not None and livekit_server.startup_seconds < 10
    print(f"livekit-server startup: {livekit_server.startup_seconds * 1000:.0f} ms")
    port = livekit_server.port
    assert asyncio.run(livekit_server.list_rooms()) == []

    livekit_server.restart()
    assert livekit_server.port == port and answers(livekit_server)

    livekit_server.freeze()
    assert not answers(livekit_server)  # a stopped process accepts nothing in time
    livekit_server.thaw()
    assert answers(livekit_server)

    livekit_server.stop()
    assert not livekit_server.running and not answers(livekit_server)
    livekit_server.start()
    livekit_server.kill()
    assert not livekit_server.running and not answers(livekit_server)


def test_two_servers_run_side_by_side(livekit_server: LiveKitServer, tmp_path: Any) -> None:
    other = LiveKitServer(log_dir=tmp_path / "other")
    try:
        other.start()
        assert {other.port, other.rtc_tcp_port, other.rtc_udp_port}.isdisjoint(
            {livekit_server.port, livekit_server.rtc_tcp_port, livekit_server.rtc_udp_port}
        )
        assert answers(other) and answers(livekit_server)
    finally:
        other.stop()
    assert answers(livekit_server)


def test_missing_binary_is_a_clear_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(lk_module, "BINARY", "livekit-server-that-does-not-exist")
    with pytest.raises(LiveKitServerError, match="not found on PATH"):
        LiveKitServer(log_dir=tmp_path).start()


# --------------------------------------------------------------------------- a user client


@dataclass
class UserClient:
    """A bare `rtc.Room` user: records what it hears, the data it gets and the assistant's state."""

    room: rtc.Room = field(default_factory=rtc.Room)
    audio: list[tuple[float, np.ndarray]] = field(default_factory=list)
    data: list[tuple[bytes, str | None]] = field(default_factory=list)
    texts: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    agent_states: list[str] = field(default_factory=list)
    assistant: rtc.RemoteParticipant | None = None
    source: rtc.AudioSource | None = None
    publication: rtc.LocalTrackPublication | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def connect(self, url: str, token: str) -> None:
        room = self.room
        room.on("track_subscribed", self._on_track)
        room.on("data_received", lambda pk: self.data.append((bytes(pk.data), pk.topic)))
        room.on("participant_connected", self._on_participant)
        room.on("participant_attributes_changed", self._on_attributes)
        room.register_text_stream_handler("lk.transcription", self._on_text)
        await room.connect(url, token)
        for p in room.remote_participants.values():
            self._on_participant(p)
        self.source = rtc.AudioSource(SR, 1, queue_size_ms=50)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", self.source)
        self.publication = await room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        # Keep the mic track alive with silence, as a real client's capture loop would.
        self.tasks.append(asyncio.create_task(self._silence()))

    async def _silence(self) -> None:
        self.sending: np.ndarray | None = None
        silence = np.zeros(480, dtype=np.int16)
        next_at = time.monotonic()
        while True:
            chunk = silence
            if self.sending is not None and self.sending.size:
                chunk, self.sending = self.sending[:480], self.sending[480:]
                if chunk.size < 480:
                    chunk = np.pad(chunk, (0, 480 - chunk.size))
            assert self.source is not None
            await self.source.capture_frame(rtc.AudioFrame(chunk.tobytes(), SR, 1, 480))
            next_at += 0.01
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))  # pacing: one 10 ms mic frame

    def say(self, samples: np.ndarray) -> None:
        """Queue samples on the mic (played in real time by the capture loop)."""
        self.sending = samples

    def _on_participant(self, p: rtc.RemoteParticipant) -> None:
        if json.loads(p.metadata or "{}").get("role") == "assistant":
            self.assistant = p
            if "lk.agent.state" in p.attributes:
                self.agent_states.append(p.attributes["lk.agent.state"])

    def _on_attributes(self, changed: dict[str, str], p: rtc.Participant) -> None:
        if "lk.agent.state" in changed:
            self.agent_states.append(changed["lk.agent.state"])

    def _on_track(self, track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
        async def read() -> None:
            stream = rtc.AudioStream(track, sample_rate=SR, num_channels=1, frame_size_ms=10)
            async for ev in stream:
                self.audio.append((time.monotonic(), np.frombuffer(bytes(ev.frame.data), np.int16).copy()))

        self.tasks.append(asyncio.create_task(read()))

    def _on_text(self, reader: rtc.TextStreamReader, identity: str) -> None:
        async def read() -> None:
            text = await reader.read_all()
            self.texts.append((text, dict(reader.info.attributes), identity))

        self.tasks.append(asyncio.create_task(read()))

    def heard_since(self, since: float) -> np.ndarray:
        chunks = [a for t, a in self.audio if t >= since]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    def payloads(self) -> list[Any]:
        out: list[Any] = []
        for raw, _topic in self.data:
            try:
                out.append(json.loads(raw))
            except ValueError:
                out.append(raw)
        return out

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.room.disconnect()


async def request_token(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        resp = await client.post(
            "/api/v1/embed/token",
            json={"assistantId": stack.assistant_id},
            headers={"Authorization": f"Bearer {stack.api_key}"},
        )
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    await eventually(predicate, timeout, what=what)


def loud_frames(samples: np.ndarray, above_dbfs: float = -30.0) -> list[int]:
    """The offsets of the 10 ms frames of `samples` louder than `above_dbfs`."""
    return [i for i in range(0, samples.size - 480, 480) if rms_dbfs(samples[i : i + 480]) > above_dbfs]


def sine_reported(energy: list[dict[str, Any]]) -> bool:
    """Whether the assistant's per-second reports hold a quiet second after a loud one: a sound the
    user sent has ended and every second it was in has been reported."""
    loud = [e["rms_dbfs"] > -30 for e in energy]
    return any(a and not b for a, b in zip(loud, loud[1:], strict=False))


async def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


# --------------------------------------------------------------------------- token + assistant


async def test_api_token_is_accepted_and_the_assistant_greets_echoes_and_sends_everything(
    wespoke_stack: Stack,
) -> None:
    data = await request_token(wespoke_stack)
    call_id, room_name = data["callId"], data["roomName"]
    assert data["url"] == wespoke_stack.livekit.url
    user = UserClient()
    await user.connect(data["url"], data["token"])  # the API's token, accepted by the real server
    try:
        assistant = await in_thread(wespoke_stack.assistant_for, call_id, 10)
        assert wespoke_stack.assistants[-1] is assistant
        await in_thread(assistant.wait_for, "joined", None, 20)
        identities = await wespoke_stack.livekit.list_participants(room_name)
        assert set(identities) == {f"user-{call_id}", f"assistant-{call_id}"}
        await wait_until(lambda: user.assistant is not None, 10, "the assistant participant")

        # Greeting: 440 Hz at -12 dBFS peak (-15 dBFS RMS) for 1.5 s.
        start = await in_thread(assistant.wait_for, "greeting_start", None, 20)
        await in_thread(assistant.wait_for, "greeting_done", None, 20)
        await wait_until(lambda: len(loud_frames(user.heard_since(0))) >= 120
                         and user.agent_states and user.agent_states[-1] == "listening", 10,
                         "the greeting heard and the assistant listening again")
        heard = user.heard_since(0)
        loud = np.array([rms_dbfs(heard[i : i + 480]) > -30 for i in range(0, heard.size - 480, 480)])
        assert loud.sum() >= 120, f"only {loud.sum()} loud 10 ms frames of greeting heard"
        first_loud = int(np.argmax(loud)) * 480
        greeting = heard[first_loud : first_loud + int(1.2 * SR)]
        assert abs(dominant_hz(greeting) - script.GREETING_FREQ_HZ) < 5
        assert rms_dbfs(greeting) == pytest.approx(script.GREETING_PEAK_DBFS - 3.01, abs=2.0)
        assert "speaking" in user.agent_states and user.agent_states[-1] == "listening"
        assert start["freq"] == script.GREETING_FREQ_HZ

        # Every data message of the contract, the standard transcription, and the history-only one.
        await in_thread(assistant.wait_for, "script_sent", None, 10)
        posted = await in_thread(assistant.wait_for, "history_posted", None, 10)
        assert posted["status"] == 200
        await wait_until(lambda: len(user.data) >= 13 and user.texts, 10, "the scripted data messages")
        payloads = user.payloads()
        types = [p["type"] for p in payloads if isinstance(p, dict)]
        assert types == ["message"] * 3 + ["conversation_item", "transcription_stream", "transcription_stream",
                                           "tool_start", "tool_complete", "tool_failed", "tool_delayed",
                                           "metrics", "mystery"]
        assert script.MALFORMED_PAYLOAD in payloads
        assert payloads[2]["content"] == script.STREAM_FULL_TEXT and payloads[2]["isComplete"] is True
        assert {p["id"] for p in payloads[:3]} == {script.STREAM_ID}
        text, attrs, sender = user.texts[0]
        assert text == script.TEXT_STREAM_TEXT and sender == f"assistant-{call_id}"
        assert attrs["lk.transcription_final"] == "true" and attrs["lk.segment_id"] == script.TEXT_STREAM_SEGMENT_ID
        record = wespoke_stack.api.calls[call_id]
        assert [m["id"] for m in record.messages if m.get("content") == "only-in-history"] == ["hist-1"]

        # Echo: 2 s of 1 kHz at -12 dBFS peak come back, and the assistant reports their energy.
        said_at = time.monotonic()
        user.say(sine_at(1000, 2.0, 0.25))
        await wait_until(lambda: len(loud_frames(user.heard_since(said_at))) >= 150, 10, "the echo heard")
        echoed = user.heard_since(said_at)
        loud = loud_frames(echoed)
        assert len(loud) >= 150, f"only {len(loud)} echoed loud frames"
        round_trip_s = loud[0] / SR
        print(f"echo round trip (user mic → assistant → user): {round_trip_s * 1000:.0f} ms")
        assert round_trip_s < 1.0
        echo_block = echoed[loud[10] : loud[10] + SR]
        assert abs(dominant_hz(echo_block) - 1000) < 5
        assert rms_dbfs(echo_block) == pytest.approx(-15.05, abs=2.0)
        # Every second the sine was in has been reported once a quiet second follows a loud one.
        await in_thread(assistant.wait_until, lambda evs: sine_reported([e for e in evs if e["event"] == "energy"]), 10)
        loud_seconds = [e for e in assistant.events("energy") if e["rms_dbfs"] > -30]
        complete_seconds = assistant.events("energy")[:-1]
        # ~100 frames a second arrive; a loaded machine may shift a few into the next second.
        assert loud_seconds and sum(e["frames"] for e in complete_seconds) >= 90 * len(complete_seconds)
        # A whole second of the 1 kHz sine reads its RMS within 1 dB (-15.05 dBFS).
        assert max(e["rms_dbfs"] for e in loud_seconds) == pytest.approx(-15.05, abs=1.0)
    finally:
        await user.close()
    # The user left: the assistant leaves too (after its grace period) and exits cleanly.
    exited = await in_thread(assistant.wait_for, "exited", None, 15)
    assert exited and assistant.proc.wait(timeout=5) == 0
    assert await wespoke_stack.livekit.list_participants(room_name) == []


async def test_assistant_commands_mute_reports_and_a_user_who_joined_first(livekit_server: LiveKitServer, tmp_path: Any) -> None:
    from tests.stack.assistant_control import AssistantProcess

    room_name, call_id = "room-first", "c-first"
    user = UserClient()
    await user.connect(livekit_server.url, livekit_server.token(f"user-{call_id}", room_name))
    token = livekit_server.token(f"assistant-{call_id}", room_name, metadata=json.dumps({"role": "assistant"}))
    assistant = AssistantProcess(
        livekit_server.url, token, call_id, None, options={"report_frames": True, "no_script": True}, log_dir=tmp_path
    )
    try:
        joined = await in_thread(assistant.wait_for, "user_joined", None, 20)  # the user was there first
        assert joined["identity"] == f"user-{call_id}"
        await in_thread(assistant.wait_for, "greeting_done", None, 20)
        await in_thread(assistant.wait_for, "frame_rms", None, 5)
        assert not assistant.events("script_sent")

        assistant.send({"cmd": "send", "raw": "plain bytes"})
        assistant.send({"cmd": "send", "payload": {"type": "metrics", "latency": 7}})
        assistant.send({"cmd": "call_ending", "reason": "silence", "message": "bye"})
        await wait_until(lambda: len(user.data) >= 3, 10, "the commanded data messages")
        payloads = user.payloads()
        assert b"plain bytes" in payloads
        assert {"type": "metrics", "latency": 7} in payloads
        ending = next(p for p in payloads if isinstance(p, dict) and p.get("type") == "call_ending")
        assert ending["reason"] == "silence" and ending["message"] == "bye"

        # barge_in: a 660 Hz tone starts, the message comes after lead_s, and the tone stops.
        assistant.send({"cmd": "barge_in", "lead_s": 0.8})
        await wait_until(lambda: any(isinstance(p, dict) and p.get("type") == "barge_in" for p in user.payloads()), 10, "barge_in")
        barge_at = time.monotonic()
        await wait_until(lambda: user.heard_since(barge_at + 0.5).size >= int(0.5 * SR), 10, "0.5 s heard after barge_in")
        before = user.heard_since(barge_at - 0.6)[: int(0.4 * SR)]
        after = user.heard_since(barge_at + 0.5)
        assert abs(dominant_hz(before) - script.BARGE_IN_TONE_HZ) < 5 and rms_dbfs(before) > -25
        assert rms_dbfs(after) < -50, "the tone went on after barge_in"

        # Mute: the assistant sees the track muted and (per frame) silence, then audio after unmute.
        said_wall = time.time()
        user.say(sine_at(1000, 10.0, 0.25))
        await in_thread(assistant.wait_for, "frame_rms", lambda e: e["wall"] >= said_wall and e["rms_dbfs"] > -20, 10)
        assert user.publication is not None and user.publication.track is not None
        muted_wall = time.time()
        user.publication.track.mute()
        await in_thread(assistant.wait_for, "track_muted", lambda e: e["muted"] is True, 5)
        await asyncio.sleep(0.5)  # a window: the track held muted for 0.5 s
        unmuted_wall = time.time()
        user.publication.track.unmute()
        unmuted = await in_thread(assistant.wait_for, "track_muted", lambda e: e["muted"] is False, 5)
        await in_thread(assistant.wait_for, "frame_rms", lambda e: e["t"] >= unmuted["t"] + 0.3 and e["rms_dbfs"] > -20, 10)
        frames = assistant.events("frame_rms")
        silent = [f["wall"] for f in frames if f["wall"] >= muted_wall and f["rms_dbfs"] < -60]
        assert silent, "no silence at the assistant after the mute"
        # From the first silent frame until the caller unmuted, nothing but silence: what came
        # before it was sent before the mute (a loaded assistant drains its queue late), what
        # came after the unmute call may be the new audio (it can overtake the unmute signal).
        during = [f for f in frames if silent[0] <= f["wall"] < unmuted_wall]
        after_unmute = [f for f in frames if f["t"] >= unmuted["t"] + 0.3]
        assert all(f["rms_dbfs"] < -60 for f in during), "audio kept arriving while muted"
        loud_again = [f["wall"] for f in frames if f["wall"] >= unmuted_wall and f["rms_dbfs"] > -20]
        print(f"track.mute() → silence at the assistant: {(silent[0] - muted_wall) * 1000:.0f} ms; "
              f"unmute → audio: {(loud_again[0] - unmuted_wall) * 1000:.0f} ms; "
              f"frames while muted: {len(during)}")
        assert silent[0] - muted_wall < 1.0
        assert after_unmute and max(f["rms_dbfs"] for f in after_unmute) > -20
        assert all(e["frames"] >= 0 for e in assistant.events("energy"))

        # A tone on command, then quit.
        user.say(np.zeros(0, np.int16))
        # The assistant echoes what it hears; on a loaded machine its echo queue runs late, so the
        # tone waits until the user hears the echo of the 1000 Hz end.
        await wait_until(lambda: rms_dbfs(user.heard_since(time.monotonic() - 0.3)) < -50, 10, "the echo to end")
        tone_at = time.monotonic()
        assistant.send({"cmd": "tone", "freq": 880, "seconds": 0.6, "dbfs": -6})
        await in_thread(assistant.wait_for, "tone_done", None, 10)
        await wait_until(lambda: len(loud_frames(user.heard_since(tone_at))) >= 30, 10, "the tone heard")
        heard = user.heard_since(tone_at)
        assert abs(dominant_hz(heard) - 880) < 5
        assistant.send({"cmd": "quit"})
        await in_thread(assistant.wait_for, "exited", None, 10)
        await wait_until(lambda: not user.room.remote_participants, 5, "the assistant leaving")
    finally:
        assistant.stop()
        await user.close()


async def test_stack_close_stops_every_assistant_and_both_servers(tmp_path: Any) -> None:
    livekit = LiveKitServer(log_dir=tmp_path)
    livekit.start()
    dispatch, pool = make_dispatcher(livekit, log_dir=tmp_path)
    api = start_wespoke_server(livekit_url=livekit.url, dispatch=dispatch)
    stack = Stack(livekit, api, pool)
    api_url = api.url
    try:
        stack.assistant_options = {"no_script": True, "user_grace_s": 30}
        calls = [await request_token(stack) for _ in range(2)]
        procs = [await in_thread(stack.assistant_for, c["callId"], 10) for c in calls]
        for proc in procs:
            await in_thread(proc.wait_for, "joined", None, 20)
            assert proc.options == {"no_script": True, "user_grace_s": 30}
        assert stack.settings(lang="tr").lang == "tr" and stack.settings().api_url == api.url
    finally:
        stack.close()
    assert all(p.proc.poll() is not None for p in procs)
    assert not livekit.running and not answers(livekit)
    with pytest.raises(httpx.ConnectError):
        httpx.get(api_url, timeout=1)


def test_assistant_stops_while_still_connecting(livekit_server: LiveKitServer, tmp_path: Any) -> None:
    """quit (and SIGTERM) end the assistant even when its connect hangs on a frozen server."""
    from tests.stack.assistant_control import AssistantProcess

    livekit_server.freeze()
    token = livekit_server.token("assistant-frozen", "frozen", metadata=json.dumps({"role": "assistant"}))
    procs = [AssistantProcess(livekit_server.url, token, f"frozen{i}", None, log_dir=tmp_path) for i in range(2)]
    try:
        time.sleep(1.5)  # scenario: both reach Room.connect (they report nothing before it) and hang there
        assert all(p.running for p in procs) and not any(p.events("joined") for p in procs)
        started = time.monotonic()
        procs[0].send({"cmd": "quit"})
        procs[1].proc.terminate()
        for p in procs:
            p.proc.wait(timeout=8)
            assert p.wait_for("exited", timeout=1)
        print(f"assistants stopped while connecting in {time.monotonic() - started:.2f} s")
    finally:
        livekit_server.thaw()
        for p in procs:
            p.stop()
