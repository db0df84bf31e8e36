"""The start of a call, in order: the devices checked, the token, the room joined (the web SDK's
connect policy), the devices opened, the call's tasks started.

No token is asked for before the devices passed their check (a token creates and bills a call),
and an in-flight `Room.connect` is never cancelled (the FFI can panic, python-sdks #784): a
hang-up is seen at the next step, which tears the call down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from livekit import rtc

from wespoke_tui.api import CallToken
from wespoke_tui.audio.base import AudioBackend, preflight_of
from wespoke_tui.errors import AUDIO_FALLBACK, CONNECTION_ERROR, INVALID_REQUEST, UNKNOWN_ERROR, CallError
from wespoke_tui.events import CallStarted, CallState, ErrorEvent, RateLimitInfo
from wespoke_tui.session.audio_path import AudioPath
from wespoke_tui.session.data import DataHandler
from wespoke_tui.session.host import SessionHost
from wespoke_tui.session.native_levels import native_levels
from wespoke_tui.session.parts import (
    CONNECT_ATTEMPTS,
    CONNECT_BACKOFF,
    CONNECT_BASE_DELAY_S,
    CONNECT_TIMEOUT_S,
    CallParts,
    HungUp,
    is_auth_failure,
    register_secret,
    scrub_token,
)
from wespoke_tui.session.recording import CallRecorder
from wespoke_tui.session.reports import CallReports
from wespoke_tui.session.room_events import RoomEventHandler
from wespoke_tui.settings import Settings

log = logging.getLogger(__name__)


class CallSetup:
    """The setup of each call, for `CallSession`; `last_setup_s` is the last call's."""

    def __init__(
        self,
        host: SessionHost,
        settings: Settings,
        backend_factory: Callable[[], AudioBackend],
        recorder: CallRecorder,
        room_events: RoomEventHandler,
        audio: AudioPath,
        reports: CallReports,
    ) -> None:
        self._host = host
        self._settings = settings
        self._backend_factory = backend_factory
        self._recorder = recorder
        self._room_events = room_events
        self._audio = audio
        self._reports = reports
        self.last_setup_s: float | None = None  # token request → connected, for measurements

    async def run(self, call: CallParts) -> None:
        started = time.monotonic()
        try:
            # The devices first, before any word of a token: a token creates (and bills) a call.
            backend = self._backend_factory()
            call.backend = backend
            check = preflight_of(backend)
            if check is not None:
                await asyncio.to_thread(check)
            fallback = getattr(backend, "fallback_reason", None)
            if fallback:  # the native module cannot carry this call: said once, the call goes on
                self._host.emit(ErrorEvent(CallError.of(AUDIO_FALLBACK, fallback), fatal=False))
            if call.hangup.is_set():
                return await self._host.teardown(call, None)
            self._host.set_state(CallState.REQUESTING_TOKEN)
            token = await self._fetch_token(call)
            if token is None or call.hangup.is_set():
                return await self._host.teardown(call, None)
            call.token = token
            register_secret(token.token)
            self._host.emit(
                CallStarted(
                    call_id=token.call_id or "",
                    room_name=token.room_name,
                    assistant_id=token.assistant.id,
                    assistant_name=token.assistant.name,
                )
            )
            if token.rate_limit is not None:
                rl = token.rate_limit
                self._host.emit(RateLimitInfo(remaining=rl.remaining, limit=rl.limit, reset_at=rl.reset_at))
            self._host.set_state(CallState.CONNECTING)
            call.data = DataHandler()
            room = await self._connect(call, token)
            call.room = room
            if call.hangup.is_set():
                return await self._host.teardown(call, None)
            await self._audio.open_audio(call)
            if call.hangup.is_set():
                return await self._host.teardown(call, None)
            self._start_call_tasks(call)
            call.setup_finished = True
            self.last_setup_s = time.monotonic() - started
            log.info("call %s connected in %.2f s", token.call_id, self.last_setup_s)
            self._host.set_state(CallState.CONNECTED)
            if self._settings.record_calls:
                self._recorder.start(token.call_id or "call", token.assistant.name)
            if self._host.muted and token.call_id:  # muted before the call was up: the API learns now
                self._host.spawn(self._reports.tell_api_muted(token.call_id, True))
            self._room_events.scan_participants(call)
        except HungUp:
            await self._host.teardown(call, None)
        except CallError as exc:
            await self._host.teardown(call, exc)
        except Exception as exc:  # never a traceback at the user: log it, fail the call
            log.exception("call setup failed")
            await self._host.teardown(call, CallError.of(UNKNOWN_ERROR, f"setup failed: {type(exc).__name__}"))
        finally:
            call.setup_finished = True

    async def _fetch_token(self, call: CallParts) -> CallToken | None:
        s = self._settings
        if not s.assistant_id:
            raise CallError.of(INVALID_REQUEST, "no assistant id")
        call.token_task = asyncio.get_running_loop().create_task(
            self._host.api().create_token(s.assistant_id, s.token_metadata(), s.assistant_overrides())
        )
        await asyncio.wait({call.token_task})
        if call.token_task.cancelled():
            return None
        return call.token_task.result()

    async def _connect(self, call: CallParts, token: CallToken) -> rtc.Room:
        last_error: BaseException | None = None
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            room = rtc.Room()
            call.token_refreshed.clear()
            self._room_events.wire(call, room)
            try:
                await room.connect(token.url, token.token, rtc.RoomOptions(auto_subscribe=True, connect_timeout=CONNECT_TIMEOUT_S))
                call.connected_at = time.monotonic()
                return room
            except rtc.ConnectError as exc:
                last_error = exc
                log.warning("connect attempt %d/%d failed: %s", attempt, CONNECT_ATTEMPTS, scrub_token(str(exc), token))
                if is_auth_failure(exc) or attempt == CONNECT_ATTEMPTS or call.hangup.is_set():
                    break
                delay = CONNECT_BASE_DELAY_S * CONNECT_BACKOFF ** (attempt - 1)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(call.hangup.wait(), delay)
                if call.hangup.is_set():
                    break
        if call.hangup.is_set():
            raise HungUp()
        message = scrub_token(str(last_error), token) if last_error else "connect failed"
        raise CallError.of(CONNECTION_ERROR, f"room connect failed: {message}")

    def _start_call_tasks(self, call: CallParts) -> None:
        if call.native_mic:
            self._host.call_task(call, native_levels(self._audio.native_view(call), call), "native-levels")
        elif call.input is not None:
            self._host.call_task(call, self._audio.pump_mic(call), "mic-pump")
        self._host.call_task(call, self._reports.report_health(call), "audio-health")
        if call.token is not None and call.token.call_id:
            self._host.call_task(call, self._reports.poll_messages(call), "poll-messages")
