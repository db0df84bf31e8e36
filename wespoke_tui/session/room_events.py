"""The room's events for `CallSession`: the assistant, its tracks, its data, reconnection."""

from __future__ import annotations

import asyncio
import logging

from livekit import rtc

from wespoke_tui.errors import DISCONNECTED, CallError
from wespoke_tui.events import (
    AgentState,
    AgentStateChanged,
    AssistantSpeaking,
    BargeIn,
    CallEnding,
    CallState,
    ReconnectAttempt,
)
from wespoke_tui.session.host import RoomEventSink
from wespoke_tui.session.parts import CONNECT_ATTEMPTS, CONNECT_BACKOFF, CallParts, is_assistant, reconnect_schedule

log = logging.getLogger(__name__)

AGENT_SESSION_TOPIC = "lk.agent.session"


class RoomEventHandler:
    """Turns what the room reports into call events. `CallSession` owns one and gives it itself
    as the `RoomEventSink` (host.py): the call's state, the event sink, its tasks, teardown and
    the playback of the assistant's tracks."""

    def __init__(self, host: RoomEventSink) -> None:
        self._host = host

    # ------------------------------------------------------------------ room events

    def wire(self, call: CallParts, room: rtc.Room) -> None:
        """Register this handler for the room's events of `call` (each connect attempt's room)."""
        room.on("participant_connected", lambda p: self._on_participant(call, p))
        room.on("participant_metadata_changed", lambda p, *_: self._on_participant(call, p))
        room.on("track_subscribed", lambda track, pub, p: self._on_track_subscribed(call, track, p))
        room.on("track_unsubscribed", lambda track, pub, p: self._host.stop_playback(call, track.sid))
        room.on("participant_disconnected", lambda p: self._on_participant_left(call, p))
        room.on("active_speakers_changed", lambda speakers: self._on_speakers(call, speakers))
        room.on("participant_attributes_changed", lambda changed, p: self._on_attributes(call, p))
        room.on("data_received", lambda packet: self._on_data(call, packet))
        room.on("reconnecting", lambda: self._on_reconnecting(call))
        room.on("reconnected", lambda: self._on_reconnected(call))
        room.on("disconnected", lambda reason: self._on_disconnected(call, reason))
        room.on("token_refreshed", call.token_refreshed.set)
        room.register_text_stream_handler("lk.transcription", lambda reader, identity: self._on_text_stream(call, reader, identity))
        # LiveKit Agents sends its session protocol (protobuf) here dozens of times a call; without
        # a handler the SDK logs each stream at INFO. Closing the reader drops its chunks unread.
        room.register_byte_stream_handler(AGENT_SESSION_TOPIC, lambda reader, identity: reader.close())

    def scan_participants(self, call: CallParts) -> None:
        """Catch an assistant that joined (and published) before we did."""
        if call.room is None:
            return
        for participant in list(call.room.remote_participants.values()):
            self._on_participant(call, participant)
            for publication in list(participant.track_publications.values()):
                track = publication.track
                if isinstance(track, rtc.RemoteAudioTrack):
                    self._on_track_subscribed(call, track, participant)

    def _on_participant(self, call: CallParts, participant: rtc.RemoteParticipant) -> None:
        if call.assistant_identity is None and is_assistant(participant):
            call.assistant_identity = participant.identity
            log.info("assistant is %s", participant.identity)
            self._on_attributes(call, participant)

    def _on_participant_left(self, call: CallParts, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == call.assistant_identity:
            call.assistant_identity = None
            if call.assistant_speaking:
                call.assistant_speaking = False
                self._host.emit(AssistantSpeaking(False))

    def _on_track_subscribed(self, call: CallParts, track: rtc.Track, participant: rtc.RemoteParticipant) -> None:
        if not isinstance(track, rtc.RemoteAudioTrack) or call.done.is_set():
            return
        self._on_participant(call, participant)
        if participant.identity != call.assistant_identity:
            return
        if call.output is None:
            call.pending_tracks[track.sid] = track
        else:
            self._host.start_playback(call, track)

    def _on_speakers(self, call: CallParts, speakers: list[rtc.Participant]) -> None:
        speaking = any(p.identity == call.assistant_identity for p in speakers)
        if speaking != call.assistant_speaking:
            call.assistant_speaking = speaking
            self._host.emit(AssistantSpeaking(speaking))

    def _on_attributes(self, call: CallParts, participant: rtc.Participant) -> None:
        if participant.identity != call.assistant_identity:
            return
        value = participant.attributes.get("lk.agent.state")
        if value is None:
            return
        try:
            self._host.emit(AgentStateChanged(AgentState(value)))
        except ValueError:
            log.info("unknown agent state %r ignored", value)

    def _on_data(self, call: CallParts, packet: rtc.DataPacket) -> None:
        if call.data is None:
            return
        try:
            events = call.data.data_packet(packet.data, packet.topic)
        except Exception:  # the assistant's data must never break the call
            log.exception("data message dropped")
            return
        for event in events:
            if isinstance(event, BargeIn) and call.output is not None:
                call.output.clear()  # the user talks: drop the assistant audio not yet played
            if isinstance(event, CallEnding):
                call.call_ending_seen = True
            self._host.emit(event)

    def _on_text_stream(self, call: CallParts, reader: rtc.TextStreamReader, identity: str) -> None:
        self._host.call_task(call, self._read_text_stream(call, reader, identity), "text-stream")

    async def _read_text_stream(self, call: CallParts, reader: rtc.TextStreamReader, identity: str) -> None:
        if call.data is None:
            reader.close()
            return
        async for event in call.data.transcription(reader, from_assistant=identity == call.assistant_identity):
            self._host.emit(event)

    # ------------------------------------------------------------------ reconnection

    def _on_reconnecting(self, call: CallParts) -> None:
        if call.hangup.is_set() or call.done.is_set():
            return
        if self._host.state == CallState.CONNECTED:
            self._host.set_state(CallState.RECONNECTING)
        if call.reconnect_watchdog is None or call.reconnect_watchdog.done():
            call.reconnect_attempt = 0
            call.reconnect_watchdog = self._host.call_task(call, self._watch_reconnect(call), "reconnect-watchdog")

    def _on_reconnected(self, call: CallParts) -> None:
        if call.reconnect_watchdog is not None:
            call.reconnect_watchdog.cancel()
            call.reconnect_watchdog = None
        if self._host.state == CallState.RECONNECTING and not call.hangup.is_set():
            self._host.set_state(CallState.CONNECTED)

    async def _watch_reconnect(self, call: CallParts) -> None:
        """Counts the SDK's reconnect as the web SDK's 3 attempts and gives up after their time."""
        for attempt, wait in enumerate([*reconnect_schedule(), reconnect_schedule()[-1] * CONNECT_BACKOFF], 1):
            call.reconnect_attempt = attempt
            self._host.emit(ReconnectAttempt(attempt, CONNECT_ATTEMPTS))
            await asyncio.sleep(wait)
        log.warning("the room did not come back after %d attempts", CONNECT_ATTEMPTS)
        call.reconnect_watchdog = None  # this task is ending; teardown must not wait on it
        self._host.spawn(self._host.teardown(call, CallError.of(DISCONNECTED, "reconnect gave up")))

    def _on_disconnected(self, call: CallParts, reason: rtc.DisconnectReason.ValueType | str) -> None:
        if call.hangup.is_set() or call.done.is_set() or not call.setup_finished:
            return
        name = rtc.DisconnectReason.Name(reason) if isinstance(reason, int) else str(reason)
        log.warning("room disconnected by the server: %s", name)
        if call.call_ending_seen:
            self._host.spawn(self._host.teardown(call, None))
        else:
            self._host.spawn(self._host.teardown(call, CallError.of(DISCONNECTED, f"room disconnected: {name}")))

