"""The end of a call: the room left, then everything of the call closed, once, ending in `ended`
or `failed`.

`Room.disconnect()` is bounded by a timeout (after the server removed the room it may never
answer, python-sdks #199) and every task of the call ends regardless; `/end` is sent after the
disconnect, in the background, and never delays the hang-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from wespoke_tui.errors import CallError
from wespoke_tui.events import AssistantSpeaking, CallState, ErrorEvent
from wespoke_tui.session.host import SessionHost
from wespoke_tui.session.leave import let_join_settle, let_publish_settle
from wespoke_tui.session.parts import DEVICE_CLOSE_TIMEOUT_S, DISCONNECT_TIMEOUT_S, STREAM_CLOSE_TIMEOUT_S, CallParts
from wespoke_tui.session.recording import CallRecorder

log = logging.getLogger(__name__)


class Teardown:
    """The teardown of a call, for `CallSession`."""

    def __init__(self, host: SessionHost, recorder: CallRecorder) -> None:
        self._host = host
        self._recorder = recorder

    async def run(self, call: CallParts, error: CallError | None) -> None:
        """Leave the room, then close everything; ends in `ended` or `failed(error)`. Runs once."""
        if call.torn_down:
            await call.done.wait()
            return
        call.torn_down = True
        call.hangup.set()
        if error is None and self._host.state != CallState.ENDING:
            self._host.set_state(CallState.ENDING)
        current = asyncio.current_task()
        mic_tasks = [t for t in call.tasks if t.get_name() == "mic-pump" and t is not current]
        for task in mic_tasks:
            task.cancel()
        room = call.room
        if room is not None:
            await let_join_settle(call, room)
            await let_publish_settle(call, call.mic_published_at)
            try:
                await asyncio.wait_for(room.disconnect(), DISCONNECT_TIMEOUT_S)
            except (asyncio.TimeoutError, Exception) as exc:
                log.warning("room disconnect did not finish cleanly: %s", type(exc).__name__)
        if call.token is not None and call.token.call_id:
            call.end_task = self._host.spawn(self._send_end(call.token.call_id))
        for task in list(call.tasks):
            if task is not current:
                task.cancel()
        others = [t for t in call.tasks if t is not current]
        if others:
            await asyncio.wait(others, timeout=STREAM_CLOSE_TIMEOUT_S)
        for sid in list(call.streams):
            self._host.stop_playback(call, sid)
        if call.source is not None:
            with contextlib.suppress(Exception):
                await call.source.aclose()
        for device in (call.input, call.output):
            if device is not None:
                try:
                    await asyncio.wait_for(device.aclose(), DEVICE_CLOSE_TIMEOUT_S)
                except (asyncio.TimeoutError, Exception) as exc:
                    log.warning("closing an audio device failed: %s", type(exc).__name__)
        if call.room is not None:
            with contextlib.suppress(Exception):
                call.room.unregister_text_stream_handler("lk.transcription")
        if call.assistant_speaking:
            call.assistant_speaking = False
            self._host.emit(AssistantSpeaking(False))
        self._recorder.stop()
        if error is None:
            self._host.set_state(CallState.ENDED)
        else:
            self._host.emit(ErrorEvent(error, fatal=True))
            self._host.set_state(CallState.FAILED, error)
        call.done.set()

    async def _send_end(self, call_id: str) -> None:
        try:
            await self._host.api().end_call(call_id)
        except CallError as exc:
            log.info("/end failed (the disconnect already ended the call): %s", exc)
