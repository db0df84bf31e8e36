"""CallSession against the real LiveKit server, the local Wespoke API server and the test assistant."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from tests.stack.livekit_server import free_port
from tests.support.events import EventRecorder
from tests.support.signals import dominant_hz
from tests.support.waiting import eventually
from wespoke_tui.api import WespokeClient
from wespoke_tui.audio.wav import WavBackend
from wespoke_tui.errors import (
    ASSISTANT_NOT_FOUND,
    CONNECTION_ERROR,
    DOMAIN_NOT_ALLOWED,
    INSUFFICIENT_CREDITS,
    INVALID_REQUEST,
    RATE_LIMITED,
    SERVER_ERROR,
    UNAUTHORIZED,
    UNKNOWN_ERROR,
    USER_MESSAGES,
    describe,
)
from wespoke_tui.events import CallRecordDeleted, CallState, ErrorEvent, StateChanged
from wespoke_tui.session import CallSession
from wespoke_tui.settings import Settings

pytestmark = pytest.mark.timeout(60)


CONNECT_RETRY_FIRST_WAIT_S = 2.0


def make_settings(api: Any, **kw: Any) -> Settings:
    return Settings(api_key=api.api_key, assistant_id=api.assistant_id, api_url=api.url, **kw)


async def wait_until_gone(livekit: Any, room_name: str, identity: str, within_s: float) -> float:
    """Seconds until `identity` is no longer in the room; fails after `within_s`."""
    start = time.monotonic()
    while True:
        present = await livekit.list_participants(room_name)
        elapsed = time.monotonic() - start
        if identity not in present:
            return elapsed
        assert elapsed < within_s, f"{identity} still in {room_name} after {elapsed:.2f} s: {present}"
        await asyncio.sleep(0.05)  # poll


# ---------------------------------------------------------------- connect and hang up


def our_tasks() -> list[asyncio.Task[Any]]:
    """Tasks still alive besides the test itself."""
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and not t.done()]


async def test_token_is_accepted_call_connects_and_hang_up_leaves_the_room(wespoke_stack) -> None:
    api_server, livekit_server = wespoke_stack.api, wespoke_stack.livekit
    session = CallSession(make_settings(api_server), lambda: WavBackend(None, None))
    events = EventRecorder(session)
    started = time.monotonic()
    await session.start()
    setup_s = time.monotonic() - started
    assert session.state == CallState.CONNECTED, events.of(ErrorEvent)
    assert events.states() == [CallState.REQUESTING_TOKEN, CallState.CONNECTING, CallState.CONNECTED]
    record = api_server.calls[session.call_id]
    assert record.identity in await livekit_server.list_participants(record.room_name)
    print(f"call setup (token request → connected): {setup_s * 1000:.0f} ms")
    assert setup_s < 3.0

    hung_up = time.monotonic()
    await session.hang_up()
    gone_s = await wait_until_gone(livekit_server, record.room_name, record.identity, within_s=1.0)
    print(f"hang-up → server lists no participant of ours: {(time.monotonic() - hung_up) * 1000:.0f} ms (poll {gone_s * 1000:.0f} ms)")
    assert events.states()[-2:] == [CallState.ENDING, CallState.ENDED]
    # /end goes out in the background, right after the disconnect.
    await eventually(lambda: record.ended, timeout=2.0, what="the call ended on the API server")
    await session.aclose()
    await events.aclose()
    assert our_tasks() == []


async def test_session_runs_several_calls_in_a_row(wespoke_stack) -> None:
    api_server = wespoke_stack.api
    session = CallSession(make_settings(api_server), lambda: WavBackend(None, None))
    events = EventRecorder(session)
    ids = []
    for _ in range(2):
        await session.start()
        assert session.state == CallState.CONNECTED
        ids.append(session.call_id)
        await session.hang_up()
        assert session.state == CallState.ENDED
    await session.aclose()  # waits for the background `/end` requests
    await events.aclose()
    assert len(set(ids)) == 2 and all(api_server.calls[i].ended for i in ids)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, INVALID_REQUEST),
        (401, UNAUTHORIZED),
        (402, INSUFFICIENT_CREDITS),
        (403, DOMAIN_NOT_ALLOWED),
        (404, ASSISTANT_NOT_FOUND),
        (429, RATE_LIMITED),
        (500, SERVER_ERROR),
        (418, UNKNOWN_ERROR),
    ],
)
async def test_failing_token_request_fails_the_call_without_a_room(wespoke_stack, status: int, code: str) -> None:
    api_server, livekit_server = wespoke_stack.api, wespoke_stack.livekit
    api_server.fail_next("token", status=status)
    session = CallSession(make_settings(api_server, lang="tr"), lambda: WavBackend(None, None))
    events = EventRecorder(session)
    await session.start()
    assert session.state == CallState.FAILED
    assert events.states() == [CallState.REQUESTING_TOKEN, CallState.FAILED]
    final = events.of(StateChanged)[-1]
    assert final.error is not None and final.error.code == code and describe(final.error, "tr").startswith(USER_MESSAGES[code]["tr"])
    fatal = [e for e in events.of(ErrorEvent) if e.fatal]
    assert [e.error.code for e in fatal] == [code]
    assert session.room is None
    assert await livekit_server.list_rooms() == []
    await session.aclose()
    await events.aclose()


async def test_unreachable_livekit_fails_with_connection_error_after_three_attempts(wespoke_stack) -> None:
    api_server = wespoke_stack.api
    api_server.livekit_url = f"ws://127.0.0.1:{free_port()}"  # nothing listens there
    session = CallSession(make_settings(api_server), lambda: WavBackend(None, None))
    events = EventRecorder(session)
    started = time.monotonic()
    await session.start()
    elapsed = time.monotonic() - started
    assert session.state == CallState.FAILED
    assert events.of(StateChanged)[-1].error.code == CONNECTION_ERROR
    # Three attempts with 2 s and 3 s between them.
    assert 5.0 <= elapsed < 9.0, elapsed
    await session.aclose()
    await events.aclose()
    assert our_tasks() == []


async def test_rejected_livekit_token_is_not_retried(wespoke_stack) -> None:
    api_server = wespoke_stack.api
    api_server.livekit_api_secret = "not-the-secret-of-this-server-at-all"
    session = CallSession(make_settings(api_server), lambda: WavBackend(None, None))
    events = EventRecorder(session)
    started = time.monotonic()
    await session.start()
    elapsed = time.monotonic() - started
    final = events.of(StateChanged)[-1]
    assert final.state == CallState.FAILED and final.error.code == CONNECTION_ERROR
    assert elapsed < CONNECT_RETRY_FIRST_WAIT_S, elapsed  # failed at once: no second attempt
    assert "401" in final.error.message and "eyJ" not in final.error.message  # no JWT in the error
    await session.aclose()
    await events.aclose()


async def test_hang_up_during_token_fetch(wespoke_stack) -> None:
    api_server = wespoke_stack.api
    api_server.fail_next("token", delay_s=3.0)
    session = CallSession(make_settings(api_server), lambda: WavBackend(None, None))
    events = EventRecorder(session)
    start = asyncio.create_task(session.start())
    await events.wait_for(lambda e: isinstance(e, StateChanged) and e.state == CallState.REQUESTING_TOKEN)
    await asyncio.sleep(0.2)  # scenario: hang up 0.2 s into the (held) token fetch
    hung_up = time.monotonic()
    await session.hang_up()
    assert time.monotonic() - hung_up < 0.5
    await asyncio.wait_for(start, 1.0)
    assert events.states() == [CallState.REQUESTING_TOKEN, CallState.ENDING, CallState.ENDED]
    assert session.room is None
    await session.aclose()
    await events.aclose()


async def test_hang_up_during_connect_lets_connect_finish_then_leaves(wespoke_stack) -> None:
    api_server, livekit_server = wespoke_stack.api, wespoke_stack.livekit
    session = CallSession(make_settings(api_server), lambda: WavBackend(None, None))
    events = EventRecorder(session)
    start = asyncio.create_task(session.start())
    await events.wait_for(lambda e: isinstance(e, StateChanged) and e.state == CallState.CONNECTING)
    await session.hang_up()  # Room.connect is in flight now
    await asyncio.wait_for(start, 5.0)
    assert CallState.CONNECTED not in events.states()
    assert events.states()[-2:] == [CallState.ENDING, CallState.ENDED]
    (record,) = api_server.calls.values()
    await wait_until_gone(livekit_server, record.room_name, record.identity, within_s=1.0)
    await session.aclose()
    await events.aclose()
    assert our_tasks() == []


@pytest.mark.parametrize("attempt", range(3))
async def test_hang_up_during_a_held_connect_leaves_once_the_join_is_answered(wespoke_stack, monkeypatch, attempt: int) -> None:
    # The server frozen during the connect answers the join late: a Leave sent before its token
    # refresh and its answer to the publisher's offer was lost for 4 % of such hang-ups (the
    # participant stayed 21 s). At the Leave both must have come in.
    api_server, livekit_server = wespoke_stack.api, wespoke_stack.livekit
    session = CallSession(make_settings(api_server), lambda: WavBackend(None, None))
    events = EventRecorder(session)
    refreshed_tokens: list[str] = []
    at_leave: list[tuple[bool, bool]] = []
    disconnect = rtc.Room.disconnect

    async def disconnect_noting_the_join(room: rtc.Room, **kw: Any) -> None:
        stats = await room.get_rtc_stats()
        publisher_up = any(
            s.WhichOneof("stats") == "transport"
            and s.transport.transport.dtls_state == rtc.stats.DtlsTransportState.DTLS_TRANSPORT_CONNECTED
            for s in stats.publisher_stats
        )
        at_leave.append((bool(refreshed_tokens), publisher_up))
        await disconnect(room, **kw)

    connect = rtc.Room.connect

    async def connect_noting_token_refreshes(room: rtc.Room, *args: Any, **kw: Any) -> None:
        room.on("token_refreshed", lambda: refreshed_tokens.append("refresh"))
        await connect(room, *args, **kw)

    monkeypatch.setattr(rtc.Room, "connect", connect_noting_token_refreshes)
    monkeypatch.setattr(rtc.Room, "disconnect", disconnect_noting_the_join)
    start = asyncio.create_task(session.start())
    await events.wait_for(lambda e: isinstance(e, StateChanged) and e.state == CallState.CONNECTING)
    livekit_server.freeze()
    try:
        await asyncio.sleep(0.2)  # scenario: hang up 0.2 s into the frozen connect
        hang_up = asyncio.create_task(session.hang_up())
        await asyncio.sleep(0.5)  # scenario: the server stays frozen 0.5 s with the hang-up in flight
    finally:
        livekit_server.thaw()
    await asyncio.wait_for(asyncio.gather(start, hang_up), 10.0)
    assert CallState.CONNECTED not in events.states()
    assert at_leave == [(True, True)]
    (record,) = api_server.calls.values()
    await wait_until_gone(livekit_server, record.room_name, record.identity, within_s=1.0)
    await session.aclose()
    await events.aclose()


async def test_hang_up_right_after_connect_leaves_once_the_microphone_is_negotiated(wespoke_stack) -> None:
    # A Leave sent before the server answered the offer that published the microphone is lost
    # now and then (1-3 % of such hang-ups), and the server keeps the participant: whether the
    # answer was there when the Leave went out is what fails every time without the wait.
    api_server, livekit_server = wespoke_stack.api, wespoke_stack.livekit
    session = CallSession(make_settings(api_server), lambda: WavBackend(None, None))
    await session.start()
    room = session.room
    assert session.state == CallState.CONNECTED and room is not None
    (publication,) = room.local_participant.track_publications.values()
    negotiated_at_leave: list[bool] = []
    disconnect = room.disconnect

    async def disconnect_noting_the_answer(**kw: Any) -> None:
        stats = await publication.track.get_stats()
        negotiated_at_leave.append(any(s.WhichOneof("stats") == "outbound_rtp" for s in stats))
        await disconnect(**kw)

    room.disconnect = disconnect_noting_the_answer  # type: ignore[method-assign]
    record = api_server.calls[session.call_id]
    await session.hang_up()
    assert negotiated_at_leave == [True]
    await wait_until_gone(livekit_server, record.room_name, record.identity, within_s=1.0)
    await session.aclose()


async def test_the_record_is_deleted_only_once_the_room_is_left(wespoke_stack) -> None:
    api_server = wespoke_stack.api
    session = CallSession(make_settings(api_server), lambda: WavBackend(None, None))
    events = EventRecorder(session)
    await session.start()
    record = api_server.calls[session.call_id]
    assert await session.delete_record() is False  # the call is live: nothing is sent
    assert not record.deleted and not any(r.method == "DELETE" for r in record.requests)
    await session.hang_up()
    assert await session.delete_record() is True
    assert record.deleted and record.live_at_delete is False
    assert record.ended and record.ended_at <= record.deleted_at  # /end had its answer first
    assert await session.delete_record() is True  # once: no second DELETE
    assert sum(r.method == "DELETE" for r in record.requests) == 1
    await session.aclose()
    await events.aclose()  # the stream is drained once the session is closed
    assert events.of(CallRecordDeleted) == [CallRecordDeleted(record.call_id)]


async def test_the_servers_check_tells_a_delete_during_a_live_call(wespoke_stack) -> None:
    # What the test above relies on: a DELETE that does come during the call is seen as such.
    api_server = wespoke_stack.api
    session = CallSession(make_settings(api_server), lambda: WavBackend(None, None))
    await session.start()
    record = api_server.calls[session.call_id]
    async with WespokeClient(api_server.url, api_server.api_key) as client:
        await client.delete_call(record.call_id)
    assert record.deleted and record.live_at_delete is True
    await session.aclose()


async def test_a_refused_delete_says_why_and_keeps_the_call_ended(wespoke_stack) -> None:
    api_server = wespoke_stack.api
    session = CallSession(make_settings(api_server, lang="tr"), lambda: WavBackend(None, None))
    events = EventRecorder(session)
    await session.start()
    await session.hang_up()
    api_server.fail_next("delete", status=500)
    assert await session.delete_record() is False
    error = await events.wait_for(lambda e: isinstance(e, ErrorEvent))
    assert not error.fatal and describe(error.error, "tr").startswith("Sunucu hatası.")
    assert session.state == CallState.ENDED
    assert await session.delete_record() is True  # a second try goes through
    await session.aclose()
    await events.aclose()


# ---------------------------------------------------------------- audio both ways

def _sine(hz: float, seconds: float, rms_dbfs_level: float) -> np.ndarray:
    t = np.arange(int(seconds * 48000)) / 48000
    amplitude = 32768 * 10 ** (rms_dbfs_level / 20) * np.sqrt(2)
    return np.round(amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def loudest_window(samples: np.ndarray, seconds: float) -> np.ndarray:
    """The `seconds`-long stretch of `samples` with the most energy (10 ms steps)."""
    n = int(seconds * 48000)
    energy = np.concatenate(([0.0], np.cumsum(samples.astype(np.float64) ** 2)))
    starts = np.arange(0, max(1, samples.size - n), 480)
    sums = energy[np.minimum(starts + n, samples.size)] - energy[starts]
    start = int(starts[int(np.argmax(sums))])
    return samples[start : start + n]


# What the assistant should receive, second by second: plateaus of known level and pitch.
# The first plateau is a lead-in: the assistant's first second starts when our first frame
# reaches it, some way into the file; every later plateau holds at least one whole bucket.
PLATEAU_S = 2.5
PLATEAUS = [(200.0, -25.0), (300.0, -20.0), (500.0, -35.0), (700.0, -12.0)]
# Opus at speech bitrates keeps a steady tone's level to well under a dB; the budget also covers
# the unknown alignment between our clock and the assistant's one-second buckets.
ENERGY_TOLERANCE_DB = 3.0


async def test_greeting_is_heard_and_the_assistant_receives_what_is_sent(wespoke_stack, tmp_path: Path) -> None:
    from wespoke_tui.audio.meter import rms_dbfs
    from wespoke_tui.audio.wav import read_wav_48k_mono, write_wav_48k_mono

    wespoke_stack.assistant_options = {"no_script": True, "no_echo": True}  # only the greeting comes back
    in_wav, out_wav = tmp_path / "in.wav", tmp_path / "out.wav"
    write_wav_48k_mono(in_wav, np.concatenate([_sine(hz, PLATEAU_S, level) for hz, level in PLATEAUS]))
    backend = WavBackend(in_wav, out_wav)
    session = CallSession(wespoke_stack.settings(), lambda: backend)
    events = EventRecorder(session)
    await session.start()
    assert session.state == CallState.CONNECTED
    loop = asyncio.get_running_loop()
    assert backend.input is not None and backend.input.started_at is not None
    sent_wall = time.time() - (loop.time() - backend.input.started_at)  # wall time of our first frame
    assistant = wespoke_stack.assistant_for(session.call_id)
    await asyncio.to_thread(assistant.wait_for, "greeting_done")
    await asyncio.to_thread(
        assistant.wait_for, "energy", lambda e: e["second"] >= int(PLATEAU_S * len(PLATEAUS)) + 1, 20
    )
    await session.hang_up()
    await session.aclose()
    await events.aclose()
    from wespoke_tui.events import AgentState, AgentStateChanged, AssistantLevel, AssistantSpeaking

    assert AssistantSpeaking(True) in events.of(AssistantSpeaking)  # active speakers, while it greeted
    assert AgentStateChanged(AgentState.SPEAKING) in events.of(AgentStateChanged)
    assert max(level.rms_dbfs for level in events.of(AssistantLevel)) > -25.0

    # The greeting: a 440 Hz tone with -12 dBFS peaks (-15 dBFS RMS) for 1.5 s.
    heard = read_wav_48k_mono(out_wav)
    greeting = loudest_window(heard, 1.2)
    print(f"greeting heard: {rms_dbfs(greeting):.1f} dBFS RMS at {dominant_hz(greeting):.0f} Hz")
    assert abs(dominant_hz(greeting) - 440.0) < 5.0
    assert rms_dbfs(greeting) == pytest.approx(-15.05, abs=2.0)

    # The user's audio at the assistant: each one-second bucket that lies inside one plateau
    # (allowing 150 ms either way for the network) has that plateau's level. A bucket is placed
    # in our WAV by the frames received before and in it (10 ms each), from where the first one
    # was sent: a loaded assistant that takes its frames late fills its wall-clock seconds with
    # later audio, so the seconds themselves drift from the WAV.
    reports = assistant.events("energy")
    first_frame_wall = reports[0]["wall"] - reports[0]["t"]
    offset = first_frame_wall - sent_wall  # where in our WAV the first frame the assistant got was
    checked: set[int] = set()
    received = 0
    for report in reports:
        begin = offset + received / 100
        received = report["total_frames"]
        end = offset + received / 100
        for index, (_, level) in enumerate(PLATEAUS):
            lo, hi = index * PLATEAU_S, (index + 1) * PLATEAU_S
            if lo + 0.15 <= begin and end <= hi - 0.15:
                print(f"second {report['second']}: sent {level:.1f} dBFS, received {report['rms_dbfs']:.1f} dBFS")
                assert report["rms_dbfs"] == pytest.approx(level, abs=ENERGY_TOLERANCE_DB)
                checked.add(index)
    assert checked >= set(range(1, len(PLATEAUS))), (offset, reports)


# A silent gap in the mic signal at a known time: when the assistant sees it tells the one-way
# latency of the media path (encoder, network, jitter buffer) right before the mute.
PROBE_AT_S = 3.0
PROBE_GAP_S = 0.3
# The mute itself must take effect within this, on top of that path latency.
MUTE_BUDGET_S = 0.100


@pytest.mark.assistant_options(report_frames=True, no_script=True)
async def test_mute_silences_the_mic_within_100_ms_and_unmute_brings_it_back(wespoke_stack, tmp_path: Path) -> None:
    from wespoke_tui.audio.wav import write_wav_48k_mono
    from wespoke_tui.events import MuteChanged

    in_wav = tmp_path / "in.wav"
    signal_ = _sine(400.0, 30.0, -20.0)
    signal_[int(PROBE_AT_S * 48000) : int((PROBE_AT_S + PROBE_GAP_S) * 48000)] = 0
    write_wav_48k_mono(in_wav, signal_)
    backend = WavBackend(in_wav, None)
    session = CallSession(wespoke_stack.settings(), lambda: backend)
    events = EventRecorder(session)
    await session.start()
    loop = asyncio.get_running_loop()
    assert backend.input is not None and backend.input.started_at is not None
    sent_wall = time.time() - (loop.time() - backend.input.started_at)
    record = wespoke_stack.api.calls[session.call_id]
    assistant = wespoke_stack.assistant_for(session.call_id)
    await asyncio.sleep(max(0.0, sent_wall + PROBE_AT_S + PROBE_GAP_S + 0.7 - time.time()))  # scenario: mute 0.7 s after the probe

    muted_at = time.time()
    await session.set_muted(True)
    assert time.time() - muted_at < 0.05  # the API call never holds the caller
    assert session.muted
    assert session.room is not None
    await events.wait_for(lambda e: e == MuteChanged(True), timeout=1)
    await asyncio.to_thread(assistant.wait_for, "track_muted", lambda e: e["muted"] is True)
    await asyncio.sleep(1.0)  # a window: muted for 1 s
    unmuted_at = time.time()
    await session.set_muted(False)
    await asyncio.to_thread(assistant.wait_for, "track_muted", lambda e: e["muted"] is False)
    # The mic is heard again (how soon is checked below).
    await asyncio.to_thread(assistant.wait_for, "frame_rms", lambda e: e["wall"] > unmuted_at and e["rms_dbfs"] > -60.0)
    await session.hang_up()
    await session.aclose()
    await events.aclose()

    frames = assistant.events("frame_rms")
    # "wall": when the assistant process took the frame out of its AudioStream (same host clock).
    loud = [f for f in frames if f["rms_dbfs"] > -60.0]
    probe_seen = next(f["wall"] for f in frames if f["wall"] > sent_wall + PROBE_AT_S - 0.5 and f["rms_dbfs"] <= -60.0)
    path_s = probe_seen - (sent_wall + PROBE_AT_S)
    before = [f for f in loud if muted_at - 0.5 <= f["wall"] <= muted_at]
    assert before, "the assistant heard nothing just before the mute"
    last_loud = max(f["wall"] for f in loud if f["wall"] <= unmuted_at)
    lag_s = last_loud - muted_at
    print(f"media path {path_s * 1000:.0f} ms; mute → last loud frame at the assistant {lag_s * 1000:.0f} ms")
    assert lag_s - path_s < MUTE_BUDGET_S
    back = [f["wall"] for f in loud if f["wall"] > unmuted_at]
    assert back, "no audio at the assistant after unmute"
    print(f"unmute → first loud frame at the assistant: {(back[0] - unmuted_at) * 1000:.0f} ms")
    assert back[0] - unmuted_at < 1.0
    assert [change.muted for change in record.mute_history] == [True, False]


# ---------------------------------------------------------------- data messages and transcript


class CountingWavBackend(WavBackend):
    """A WAV backend that counts `clear()` calls on its output (barge-in drops queued audio)."""

    def __init__(self) -> None:
        super().__init__(None, None)
        self.clears = 0

    def open_output(self):  # type: ignore[override]
        output = super().open_output()
        original = output.clear

        def clear() -> None:
            self.clears += 1
            original()

        output.clear = clear  # type: ignore[method-assign]
        return output


async def test_every_data_message_becomes_its_event_and_bad_ones_do_not_break_the_call(wespoke_stack) -> None:
    from tests.stack import assistant as script
    from wespoke_tui.events import (
        AgentState,
        AgentStateChanged,
        BargeIn,
        CallEnding,
        MetricsEvent,
        ToolEvent,
        TranscriptItem,
    )

    backend = CountingWavBackend()
    session = CallSession(wespoke_stack.settings(), lambda: backend)
    events = EventRecorder(session)
    await session.start()
    assistant = wespoke_stack.assistant_for(session.call_id)
    await asyncio.to_thread(assistant.wait_for, "script_sent")

    def final_item(item_id: str) -> Any:
        return lambda e: isinstance(e, TranscriptItem) and e.id == item_id and e.final

    # Streaming chunks with one id end as ONE item with the whole text.
    streamed = await events.wait_for(final_item(script.STREAM_ID))
    assert (streamed.role, streamed.text) == ("assistant", script.STREAM_FULL_TEXT)
    chunks = [e for e in events.of(TranscriptItem) if e.id == script.STREAM_ID]
    assert [e.added for e in chunks].count(True) == 1
    conversation = await events.wait_for(final_item(script.CONVERSATION_ITEM_ID))
    assert conversation.text == script.CONVERSATION_ITEM_TEXT
    transcription = await events.wait_for(final_item(script.TRANSCRIPTION_ID))
    assert (transcription.role, transcription.text) == ("user", script.TRANSCRIPTION_FINAL)
    standard = await events.wait_for(final_item(script.TEXT_STREAM_SEGMENT_ID))
    assert (standard.role, standard.text) == ("assistant", script.TEXT_STREAM_TEXT)
    tools = events.of(ToolEvent)
    assert [(t.phase, t.tool_name, t.tool_type) for t in tools] == [
        (phase, script.TOOL_NAME, "function") for phase in ("start", "complete", "failed", "delayed")
    ]
    (metrics,) = events.of(MetricsEvent)
    assert (metrics.latency_ms, metrics.duration_s) == (420.0, 1.2)
    # The malformed and the unknown message came before these; the call goes on.
    assert session.state == CallState.CONNECTED
    await events.wait_for(lambda e: isinstance(e, AgentStateChanged) and e.state == AgentState.LISTENING)

    assistant.send({"cmd": "barge_in", "lead_s": 0.3})
    await events.wait_for(lambda e: isinstance(e, BargeIn))
    assert backend.clears >= 1
    assistant.send({"cmd": "send", "raw": "\x00\xff garbage"})
    assistant.send({"cmd": "send", "payload": {"type": "message", "id": 7}})  # no content at all
    assistant.send({"cmd": "call_ending", "reason": "goodbye", "message": "Hoşça kalın"})
    ending = await events.wait_for(lambda e: isinstance(e, CallEnding))
    assert (ending.reason, ending.message) == ("goodbye", "Hoşça kalın")
    assert session.state == CallState.CONNECTED
    await session.hang_up()
    await session.aclose()
    await events.aclose()


async def test_polling_fills_in_what_the_data_channel_dropped_and_typed_lines_show_once(wespoke_stack) -> None:
    from tests.stack import assistant as script
    from wespoke_tui.events import TranscriptItem

    session = CallSession(wespoke_stack.settings(), lambda: WavBackend(None, None))
    events = EventRecorder(session)
    await session.start()
    assistant = wespoke_stack.assistant_for(session.call_id)
    await asyncio.to_thread(assistant.wait_for, "history_posted")
    posted = time.monotonic()
    # Sent only to the history, never on the data channel: the 2 s poll brings it.
    only = await events.wait_for(
        lambda e: isinstance(e, TranscriptItem) and e.text == script.HISTORY_ONLY_MESSAGE["content"], timeout=5
    )
    print(f"history-only message shown {time.monotonic() - posted:.1f} s after it was stored")
    assert only.final and only.id == script.HISTORY_ONLY_MESSAGE["id"]

    await session.send_text("Merhaba asistan")
    typed_at = time.time()
    record = wespoke_stack.api.calls[session.call_id]
    assert [m["content"] for m in record.messages if m["role"] == "user"] == ["Merhaba asistan"]

    def polls_since_typed() -> int:
        return sum(1 for r in list(record.requests)
                   if r.method == "GET" and r.path.endswith("/messages") and r.at >= typed_at)

    # Two more polls, which both return the typed line and everything above: the client polls one
    # at a time, so once a third has come in it has taken in the answers of the first two.
    await eventually(lambda: polls_since_typed() >= 3, timeout=10, interval=0.05, what="three polls after the typed line")
    added = [e for e in events.of(TranscriptItem) if e.added]
    assert [e.text for e in added].count("Merhaba asistan") == 1
    assert len({e.id for e in added}) == len(added)
    assert [e.text for e in added].count(script.HISTORY_ONLY_MESSAGE["content"]) == 1
    await session.hang_up()
    await session.aclose()
    await events.aclose()


# ---------------------------------------------------------------- units: mixer and event stream


def test_reframer_cuts_any_block_size_into_frames_of_its_size() -> None:
    from wespoke_tui.audio.mixing import Reframer

    reframer = Reframer(480)
    data = np.arange(480 * 5, dtype=np.int16)
    frames: list[np.ndarray] = []
    offset = 0
    for size in (100, 700, 333, 1267):  # 2400 samples in odd blocks
        frames += reframer.push(data[offset : offset + size])
        offset += size
    assert [f.size for f in frames] == [480] * 5
    assert np.array_equal(np.concatenate(frames), data)


def test_mixer_sums_tracks_with_clipping_on_the_first_tracks_clock() -> None:
    from wespoke_tui.audio.mixing import TrackMixer

    out: list[np.ndarray] = []
    mixer = TrackMixer(out.append, 480)
    mixer.add_track("a")
    mixer.add_track("b")
    mixer.push("b", np.full(480, 30000, dtype=np.int16))  # waits for the clock track
    assert out == []
    mixer.push("a", np.full(480, 10000, dtype=np.int16))
    mixer.push("a", np.full(480, 100, dtype=np.int16))  # b has nothing more: a alone
    assert [int(f[0]) for f in out] == [32767, 100]
    mixer.remove_track("a")  # b becomes the clock
    mixer.push("b", np.full(480, -5, dtype=np.int16))
    assert int(out[-1][0]) == -5


async def test_event_stream_keeps_every_state_event_and_coalesces_meters() -> None:
    from wespoke_tui.event_stream import EventStream
    from wespoke_tui.events import MicLevel

    stream = EventStream()
    stream.put(StateChanged(CallState.CONNECTING, CallState.IDLE))
    for level in range(1000):
        stream.put(MicLevel(float(-level), 0.0, False))
    stream.put(StateChanged(CallState.CONNECTED, CallState.CONNECTING))
    stream.close()
    got = [event async for event in stream]
    assert got == [
        StateChanged(CallState.CONNECTING, CallState.IDLE),
        MicLevel(-999.0, 0.0, False),  # only the newest level waited
        StateChanged(CallState.CONNECTED, CallState.CONNECTING),
    ]
