"""`CallSession`: one Wespoke call at a time over a real LiveKit room, as a stream of events.

The session owns the state machine, the room, the audio devices (through `AudioBackend`) and
the API client; it knows nothing of Textual. The TUI and the headless runner drive it the same
way (`CallController`). Its parts reach it only through the protocols of host.py: the room's
events (room_events.py, a `RoomEventSink`), and as a `SessionHost` the setup (call_setup.py),
the devices and the microphone (audio_path.py), the playback (playback.py), the running reports
(reports.py) and the teardown (teardown.py).

Rules it keeps whatever happens:
- a hang-up works from every state and always ends with the room left and the devices closed;
- an in-flight `Room.connect` is never cancelled (the FFI can panic, python-sdks #784): a
  hang-up during connect lets it finish or fail, then disconnects at once;
- `Room.disconnect()` is bounded by a timeout (after the server removed the room it may never
  answer, python-sdks #199), and every task of ours ends regardless;
- `/end` is sent after the disconnect, in the background, and never delays the hang-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from livekit import rtc

from wespoke_tui.api import WespokeClient
from wespoke_tui.audio.base import AudioBackend
from wespoke_tui.conversation import ControllerCore
from wespoke_tui.errors import CONNECTION_ERROR, RECORDING_NEEDS_PYTHON, CallError
from wespoke_tui.events import (
    VOICE,
    CallEvent,
    CallRecordDeleted,
    CallState,
    ErrorEvent,
    MuteChanged,
)
from wespoke_tui.i18n import Texts
from wespoke_tui.session.audio_path import AudioPath
from wespoke_tui.session.call_setup import CallSetup
from wespoke_tui.session.parts import CallParts, logged
from wespoke_tui.session.playback import Playback
from wespoke_tui.session.recording import CallRecorder
from wespoke_tui.session.reports import CallReports
from wespoke_tui.session.room_events import RoomEventHandler
from wespoke_tui.session.teardown import Teardown
from wespoke_tui.settings import Settings

log = logging.getLogger(__name__)

class CallSession(ControllerCore):
    """The call controller over LiveKit. One call at a time; many calls in a row. The state, the
    event stream and the start guard are `ControllerCore`'s, as for the chat and the demo."""

    capabilities = VOICE

    def __init__(
        self,
        settings: Settings,
        backend_factory: Callable[[], AudioBackend],
        client_factory: Callable[[], WespokeClient] | None = None,
    ) -> None:
        super().__init__()
        self._settings = settings
        self._client_factory = client_factory or self._default_client
        self._client: WespokeClient | None = None
        self._muted = False
        self._call: CallParts | None = None
        self._background: set[asyncio.Task[Any]] = set()  # hang-ups and `/end`: awaited, not cancelled
        self._recorder = CallRecorder(settings.record_dir, Texts(settings.lang), self._emit)
        # Its parts, each given the session as its host (host.py); the later ones use the earlier.
        self._room_events = RoomEventHandler(self)
        self._playback = Playback(self, self._recorder)
        self._audio = AudioPath(self, settings, self._recorder, self._playback)
        self._reports = CallReports(self, self._recorder, self._playback)
        self._teardown = Teardown(self, self._recorder)
        self._setup = CallSetup(
            self, settings, backend_factory, self._recorder, self._room_events, self._audio, self._reports
        )

    # ------------------------------------------------------------------ CallController

    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def call_id(self) -> str | None:
        call = self._call
        return call.token.call_id if call and call.token else None

    @property
    def last_setup_s(self) -> float | None:
        """Token request → connected of the last call, for measurements."""
        return self._setup.last_setup_s

    @property
    def room(self) -> rtc.Room | None:
        """The live room of the current call (for diagnostics and tests)."""
        return self._call.room if self._call else None

    async def start(self) -> None:
        if not self._may_start():
            return
        if self._call is not None and not self._call.setup_finished:
            return  # a call checking its devices (still idle) is already starting
        call = CallParts()  # everything this call holds, new: nothing of the last call is reset by hand
        self._call = call
        setup = asyncio.get_running_loop().create_task(self._setup.run(call), name="call-setup")
        try:
            # Shielded: cancelling start() must never cancel a Room.connect in flight.
            await asyncio.shield(setup)
        except asyncio.CancelledError:
            call.hangup.set()
            if call.token_task is not None:
                call.token_task.cancel()
            raise

    async def hang_up(self) -> None:
        call = self._call
        if call is None or call.done.is_set():
            return
        if not call.hangup.is_set():
            call.hangup.set()
            if self._state in (CallState.REQUESTING_TOKEN, CallState.CONNECTING, CallState.CONNECTED, CallState.RECONNECTING):
                self._set_state(CallState.ENDING)
            if call.token_task is not None and not call.token_task.done():
                call.token_task.cancel()
            if call.setup_finished:
                self._spawn(self._teardown.run(call, None))
        # Setup (if still running) sees the flag at its next step and tears down itself.
        await call.done.wait()

    async def set_muted(self, muted: bool) -> None:
        if muted == self._muted:
            return
        self._muted = muted
        call = self._call
        if call is not None and call.source is not None and muted:
            call.source.clear_queue()  # what is queued but not sent yet is not sent
        if call is not None and call.mic_track is not None:
            with contextlib.suppress(Exception):
                call.mic_track.mute() if muted else call.mic_track.unmute()
        self._emit(MuteChanged(muted))
        if call is not None and call.token and call.token.call_id and self._state in (CallState.CONNECTED, CallState.RECONNECTING):
            self._spawn(self._reports.tell_api_muted(call.token.call_id, muted))

    async def send_text(self, text: str) -> None:
        """Type to the assistant: each line reaches it once (README, "Typed text").

        `POST …/messages` always (the contract: the Wespoke backend records the line and
        forwards it to its assistant, which says it is one with `"role": "assistant"` in its
        metadata). A plain LiveKit Agents assistant (kind AGENT, without that metadata) is no
        backend's: it hears typed text only on the `lk.chat` text stream, and only from the
        caller it is linked to, so the line also goes there, to it alone. The user sees an error
        only when the path that reaches the assistant failed.
        """
        text = text.strip()
        call = self._call
        if not text or call is None or call.token is None or not call.token.call_id:
            return
        if call.data is not None:
            for event in call.data.typed_line(text):
                self._emit(event)
        room, identity = call.room, call.assistant_identity
        participant = room.remote_participants.get(identity) if room is not None and identity else None
        plain_agent: str | None = None  # the identity that gets the line on lk.chat
        if participant is not None and participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            try:
                metadata = json.loads(participant.metadata) if participant.metadata else None
            except ValueError:
                metadata = None
            if not (isinstance(metadata, dict) and metadata.get("role") == "assistant"):
                plain_agent = participant.identity
        chat_error: CallError | None = None
        if plain_agent is not None and room is not None:
            try:
                # Bounded: a stalled room must not hold back the /messages request below.
                await asyncio.wait_for(
                    room.local_participant.send_text(text, topic="lk.chat", destination_identities=[plain_agent]), 5.0
                )
            except Exception as exc:
                log.warning("sending a message on lk.chat failed: %r", exc)
                chat_error = CallError.of(CONNECTION_ERROR, f"lk.chat send failed: {type(exc).__name__}")
        try:
            await self._api().send_message(call.token.call_id, text)
        except CallError as exc:
            log.warning("sending a message failed: %s", exc)
            if plain_agent is None:
                self._emit(ErrorEvent(exc, fatal=False))
        if chat_error is not None:
            self._emit(ErrorEvent(chat_error, fatal=False))

    async def set_recording(self, on: bool) -> bool:
        call = self._call
        if not on:
            self._recorder.stop()
            return True
        if call is None or call.token is None or self._state is not CallState.CONNECTED:
            return False
        if call.native_mic:  # the native module hands out no frames: the call moves to the Python path
            await self._audio.fall_back(call, "recording needs the python audio path", code=RECORDING_NEEDS_PYTHON)
            if call.native_mic or call.hangup.is_set():
                return False
        return self._recorder.start(call.token.call_id or "call", call.token.assistant.name)

    async def delete_record(self) -> bool:
        """`DELETE /api/v1/calls/{id}` of the last call, in the order docs/api-contract.md gives ("REST calls").

        Only once the call is over (its room left: a delete never ends a live call) and after its
        `/end` had its answer, so the backend closes the call before it forgets it.
        """
        call = self._call
        if call is None or not call.done.is_set() or call.token is None or not call.token.call_id:
            return False
        if call.record_deleted:
            return True
        if call.end_task is not None:
            await asyncio.wait({call.end_task})
        call_id = call.token.call_id
        try:
            await self._api().delete_call(call_id)
        except CallError as exc:
            log.warning("deleting the call record failed: %s", exc)
            self._emit(ErrorEvent(exc, fatal=False))
            return False
        call.record_deleted = True
        self._emit(CallRecordDeleted(call_id))
        return True

    async def aclose(self) -> None:
        if self._closed:
            return
        await self.hang_up()
        self._closed = True
        if self._background:
            await asyncio.wait(set(self._background), timeout=3.0)
        for task in list(self._background):
            task.cancel()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None
        self._close_stream()

    # ------------------------------------------------------------------ the API client

    def _default_client(self) -> WespokeClient:
        s = self._settings
        return WespokeClient(s.api_url, s.api_key or "", origin=s.origin)

    def _api(self) -> WespokeClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    # ------------------------------------------------------------------ SessionHost: what its parts reach


    def set_state(self, state: CallState, error: CallError | None = None) -> None:
        self._set_state(state, error)

    def emit(self, event: CallEvent) -> None:
        self._emit(event)

    def call_task(self, call: CallParts, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(logged(coro, name), name=name)
        call.tasks.add(task)
        task.add_done_callback(call.tasks.discard)
        return task

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        return self._spawn(coro)

    async def teardown(self, call: CallParts, error: CallError | None) -> None:
        await self._teardown.run(call, error)

    def start_playback(self, call: CallParts, track: rtc.RemoteAudioTrack) -> None:
        self._playback.start(call, track)

    def stop_playback(self, call: CallParts, track_sid: str) -> None:
        self._playback.stop(call, track_sid)

    def api(self) -> WespokeClient:
        return self._api()

    # ------------------------------------------------------------------ helpers

    def _emit(self, event: CallEvent) -> None:
        self._recorder.event(event)
        super()._emit(event)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(logged(coro, "background"))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task
