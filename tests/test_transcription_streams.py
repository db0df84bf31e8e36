"""`lk.transcription` streams as LiveKit Agents sends them, the assistant found by its participant
kind, and the `lk.agent.session` byte streams kept out of the log.

The unit tests drive `DataHandler.transcription` with stand-in readers whose header attributes
are NOT the object the closing attributes land in, so finality can only come from reading the
attributes at close. The stack test sends the same streams through the real LiveKit server from
a participant that joins as kind AGENT, with neither "agent" nor "assistant" in its identity.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import pytest
from jwt.warnings import InsecureKeyLengthWarning
from livekit import api, rtc

from tests.stack.livekit_server import LiveKitServer
from tests.stack.wespoke_fixtures import TestWespokeServer, start_wespoke_server
from tests.support.events import EventRecorder
from tests.support.waiting import eventually
from wespoke_tui.audio.wav import WavBackend
from wespoke_tui.events import AgentState, AgentStateChanged, CallState, TranscriptItem
from wespoke_tui.session import CallSession
from wespoke_tui.session.data import DataHandler
from wespoke_tui.session.parts import is_assistant
from wespoke_tui.settings import Settings

pytestmark = pytest.mark.timeout(60)

FINAL = "lk.transcription_final"
SEGMENT = "lk.segment_id"
SENT_MS = 1_700_000_123_456


@dataclass
class Info:
    stream_id: str
    timestamp: int
    attributes: dict[str, str] | None


class Reader:
    """A stand-in `TextStreamReader`: at close its `info` is a new object with the header's
    attributes overlaid by the trailer's, and the header dict itself stays as it was."""

    def __init__(self, chunks: list[str], header: dict[str, str], trailer: dict[str, str] | None = None, *,
                 stream_id: str = "TS_1", timestamp: int = SENT_MS, error: Exception | None = None) -> None:
        self._chunks = chunks
        self._trailer = trailer or {}
        self._error = error
        self._info = Info(stream_id, timestamp, header)

    @property
    def info(self) -> Info:
        return self._info

    def __aiter__(self) -> AsyncIterator[str]:
        return self._read()

    async def _read(self) -> AsyncIterator[str]:
        for chunk in self._chunks:
            yield chunk
        self._info = replace(self._info, attributes={**(self._info.attributes or {}), **self._trailer})
        if self._error is not None:
            raise self._error


async def read(handler: DataHandler, reader: Reader, *, from_assistant: bool) -> list[TranscriptItem]:
    return [e async for e in handler.transcription(reader, from_assistant=from_assistant)]  # type: ignore[misc]


async def test_the_agents_own_segment_is_final_by_the_attributes_at_close() -> None:
    handler = DataHandler()
    header = {FINAL: "false", SEGMENT: "SG_1", "lk.transcribed_track_id": "TR_1"}
    events = await read(handler, Reader(["Merhaba", ", nasıl", " yardımcı olabilirim?"], header, {FINAL: "true"}),
                        from_assistant=True)
    assert [(e.text, e.final, e.added) for e in events] == [
        ("Merhaba", False, True),
        ("Merhaba, nasıl", False, False),
        ("Merhaba, nasıl yardımcı olabilirim?", False, False),
        ("Merhaba, nasıl yardımcı olabilirim?", True, False),
    ]
    assert {(e.id, e.role) for e in events} == {("SG_1", "assistant")}
    assert {e.timestamp for e in events} == {SENT_MS / 1000}
    assert header[FINAL] == "false"  # the header was never what said "final"


async def test_a_user_segment_of_two_streams_is_one_item_final_by_the_second() -> None:
    handler = DataHandler()
    interim = await read(handler, Reader(["merhaba"], {FINAL: "false", SEGMENT: "SG_u"}, stream_id="TS_a"),
                         from_assistant=False)
    assert [(e.id, e.text, e.final, e.added, e.role) for e in interim] == [
        ("SG_u", "merhaba", False, True, "user"),
    ]  # the interim stream closed without saying final: still not final
    final = await read(handler, Reader(["merhaba ben geldim"], {FINAL: "true", SEGMENT: "SG_u"}, stream_id="TS_b",
                                       timestamp=SENT_MS + 900), from_assistant=False)
    assert [(e.id, e.text, e.final, e.added) for e in final] == [
        ("SG_u", "merhaba ben geldim", False, False),
        ("SG_u", "merhaba ben geldim", True, False),
    ]
    assert final[-1].timestamp == SENT_MS / 1000  # the segment's first stream
    late = await read(handler, Reader(["merhaba ben"], {FINAL: "false", SEGMENT: "SG_u"}), from_assistant=False)
    assert late == []  # a final segment stays as it is


async def test_streams_without_finality_ids_or_time_and_streams_cut_short() -> None:
    handler = DataHandler()
    (plain, closed) = await read(handler, Reader(["hi"], {}, stream_id="TS_plain", timestamp=0), from_assistant=True)
    assert (plain.id, plain.final, closed.final, closed.timestamp) == ("TS_plain", False, True, None)
    cut = await read(handler, Reader(["yarım"], {FINAL: "false", SEGMENT: "SG_cut"},
                                     error=rtc.StreamError("Disconnected while receiving")), from_assistant=True)
    assert [(e.text, e.final) for e in cut] == [("yarım", False)]  # what came is kept, not made final


def test_the_assistant_is_found_by_kind_then_metadata_then_identity() -> None:
    agent, standard = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT, rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD

    def who(identity: str, kind: int = standard, metadata: str = "") -> Any:
        return SimpleNamespace(identity=identity, kind=kind, metadata=metadata)

    assert is_assistant(who("worker-7", agent))
    assert is_assistant(who("worker-7", metadata=json.dumps({"role": "assistant"})))
    assert is_assistant(who("agent-AJ_1")) and is_assistant(who("Assistant-x"))
    assert not is_assistant(who("caller-1"))
    assert not is_assistant(who("caller-1", metadata=json.dumps({"role": "user"})))
    assert not is_assistant(who("caller-1", metadata="{not json"))
    assert not is_assistant(who("sip-1", rtc.ParticipantKind.PARTICIPANT_KIND_SIP))


# ------------------------------------------------------------------ through the real LiveKit server


@pytest.fixture
def api_server(livekit_server: LiveKitServer) -> Iterator[TestWespokeServer]:
    """The API server with no test assistant: the test joins its own agent."""
    server = start_wespoke_server(livekit_url=livekit_server.url, livekit_api_key=livekit_server.api_key,
                                  livekit_api_secret=livekit_server.api_secret)
    try:
        yield server
    finally:
        server.stop()


def agent_token(livekit: LiveKitServer, identity: str, room: str) -> str:
    """A join token of kind "agent", which LiveKit Agents workers get."""
    grants = api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True, can_publish_data=True)
    token = (
        api.AccessToken(livekit.api_key, livekit.api_secret)
        .with_identity(identity)
        .with_kind("agent")
        .with_attributes({"lk.agent.state": "listening"})
        .with_ttl(datetime.timedelta(minutes=10))
        .with_grants(grants)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)  # the dev server's secret is "secret"
        return token.to_jwt()


async def send_segment(room: rtc.Room, pieces: list[str], header: dict[str, str], trailer: dict[str, str] | None = None,
                       sender: str | None = None) -> None:
    writer = await room.local_participant.stream_text(topic="lk.transcription", attributes=header, sender_identity=sender)
    for piece in pieces:
        await writer.write(piece)
        await asyncio.sleep(0.02)  # pacing: timed to the audio, as LiveKit Agents does
    await writer.aclose(attributes=trailer)


async def send_bytes(room: rtc.Room, topic: str) -> None:
    writer = await room.local_participant.stream_bytes("session", topic=topic)
    await writer.write(b"\x0a\x04\x08\x01\x10\x02")
    await writer.aclose()


async def test_a_livekit_agents_style_assistant_through_the_real_server(
    livekit_server: LiveKitServer, api_server: TestWespokeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = Settings(api_key=api_server.api_key, assistant_id=api_server.assistant_id, api_url=api_server.url,
                        lang="en", mic_consent_given=True)
    session = CallSession(settings, lambda: WavBackend(None, None))
    events = EventRecorder(session)
    agent = rtc.Room()
    try:
        await session.start()
        assert session.state == CallState.CONNECTED
        record = api_server.calls[session.call_id or ""]
        await agent.connect(livekit_server.url, agent_token(livekit_server, "worker-7", record.room_name))
        # Found by its kind alone: no metadata, no "agent"/"assistant" in the identity.
        await events.wait_for(lambda e: isinstance(e, AgentStateChanged) and e.state == AgentState.LISTENING)
        # Each side knows the other before the streams go.
        await eventually(lambda: session.room is not None and "worker-7" in session.room.remote_participants
                         and record.identity in agent.remote_participants, timeout=10,
                         what="the caller and the agent knowing each other")

        before = time.time()
        for _ in range(5):
            await send_bytes(agent, "lk.agent.session")
        await send_bytes(agent, "some.other.topic")
        await send_segment(agent, ["Merhaba", ", size", " nasıl yardımcı olabilirim?"],
                           {FINAL: "false", SEGMENT: "SG_agent", "lk.transcribed_track_id": "TR_x"}, {FINAL: "true"})
        await send_segment(agent, ["merhaba"], {FINAL: "false", SEGMENT: "SG_user"}, sender=record.identity)
        await send_segment(agent, ["merhaba ben geldim"], {FINAL: "true", SEGMENT: "SG_user"}, sender=record.identity)
        after = time.time()

        def final(segment: str) -> Any:
            return lambda e: isinstance(e, TranscriptItem) and e.id == segment and e.final

        said = await events.wait_for(final("SG_agent"))
        heard = await events.wait_for(final("SG_user"))
        await asyncio.sleep(0.3)  # a window: for a stray second item or log line to show
        assert (said.role, said.text) == ("assistant", "Merhaba, size nasıl yardımcı olabilirim?")
        assert (heard.role, heard.text) == ("user", "merhaba ben geldim")
        for item in (said, heard):
            assert item.timestamp is not None and before - 1.0 <= item.timestamp <= after + 1.0
        items = events.of(TranscriptItem)
        assert [e.added for e in items if e.id == "SG_user"].count(True) == 1  # two streams, one item
        finals = [e.final for e in items if e.id == "SG_agent"]
        assert len(finals) >= 2 and finals[-1] and not any(finals[:-1])  # final only at close
        assert [e for e in items if e.id == "SG_user" and e.final] == [heard]

        ignored = [r.getMessage() for r in caplog.records if "ignoring byte stream" in r.getMessage()]
        assert ignored == ["ignoring byte stream with topic 'some.other.topic', no callback attached"]
    finally:
        await agent.disconnect()
        await session.aclose()
        await events.aclose()
