"""A text-only chat with the assistant: `POST /api/v1/embed/chat`, each message answered as a
Server-Sent Events stream, `/end` when the user is done.

It emits the same events as a call, so the TUI and the headless runner need nothing of their
own: the greeting and every reply are `TranscriptItem`s (a reply is updated in place as its
chunks arrive, then made final), tools are `ToolEvent`s, knowledge sources `KnowledgeUsed`,
and the assistant is "thinking" from the send to the end of its reply. A failure of one reply
(an `error` event, a dropped stream, an HTTP error) is a non-fatal `ErrorEvent`: the chat goes
on. Only a chat the server no longer has (404 `CHAT_ENDED`) ends it as failed.

Messages are sent one at a time, in the order given: a second `send_text` waits for the first
reply, as in the web widget.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from wespoke_tui.api import (
    ChatDone,
    ChatEvent,
    ChatKnowledgeUsed,
    ChatMessageChunk,
    ChatMessageComplete,
    ChatMessageStart,
    ChatSession,
    ChatStreamError,
    ChatToolEvent,
)
from wespoke_tui.conversation import ControllerCore
from wespoke_tui.errors import CHAT_ENDED, CONNECTION_ERROR, SERVER_ERROR, USER_MESSAGES, CallError, ErrorCode
from wespoke_tui.events import (
    TEXT_ONLY,
    AgentState,
    AgentStateChanged,
    CallStarted,
    CallState,
    ErrorEvent,
    KnowledgeUsed,
    Role,
    ToolEvent,
    ToolPhase,
    TranscriptItem,
)
from wespoke_tui.i18n import Texts
from wespoke_tui.settings import Settings

log = logging.getLogger(__name__)

TEARDOWN_TIMEOUT_S = 2.0
# The phase a chat stream's tool event tells (`tool:started` → "started", wespoke_tui.api) → its ToolPhase.
TOOL_PHASE_OF_CHAT_EVENT = {"started": ToolPhase.START, "completed": ToolPhase.COMPLETE, "failed": ToolPhase.FAILED}


class ChatApi(Protocol):
    """The chat part of `WespokeClient`; the offline demo has its own."""

    async def start_chat(
        self,
        assistant_id: str,
        metadata: Mapping[str, Any] | None = None,
        assistant_overrides: Mapping[str, Any] | None = None,
    ) -> ChatSession: ...

    def send_chat_message(self, chat_id: str, content: str) -> AsyncIterator[ChatEvent]: ...

    async def end_chat(self, chat_id: str) -> None: ...

    async def aclose(self) -> None: ...


class ChatController(ControllerCore):
    """A `CallController` for text chat. `api_factory()` gives each chat its client."""

    capabilities = TEXT_ONLY

    def __init__(self, settings: Settings, api_factory: Callable[[], ChatApi] | None = None) -> None:
        super().__init__()
        self._settings = settings
        self._t = Texts(settings.lang)
        self._api_factory = api_factory or self._wespoke_client
        self._api: ChatApi | None = None
        self._opening: asyncio.Task[ChatSession] | None = None
        self._chat: ChatSession | None = None
        self._sending = asyncio.Lock()
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ CallController

    @property
    def muted(self) -> bool:
        return False

    async def start(self) -> None:
        if not self._may_start():
            return
        s = self._settings
        api = self._api = self._api_factory()
        self._chat = None
        self._set_state(CallState.CONNECTING)
        self._opening = asyncio.get_running_loop().create_task(
            api.start_chat(s.assistant_id or "", s.token_metadata(), s.assistant_overrides())
        )
        try:
            # Shielded: a start cut off (the app closing) must not lose a chat the server opened;
            # the hang-up waits for it and ends it.
            chat = await asyncio.shield(self._opening)
        except CallError as error:
            if self._state is CallState.CONNECTING:
                await self._fail(error)
            return
        if self._state is not CallState.CONNECTING:
            return  # hung up while opening: hang_up() ends the chat
        self._chat = chat
        self._emit(CallStarted(chat.chat_id, None, chat.assistant.id, chat.assistant.name))
        self._set_state(CallState.CONNECTED)
        if chat.greeting_message:
            self._emit(TranscriptItem(f"{chat.chat_id}-greeting", Role.ASSISTANT, chat.greeting_message,
                                      final=True, added=True, timestamp=time.time()))

    async def hang_up(self) -> None:
        if not self._state.in_call:
            return
        self._set_state(CallState.ENDING)
        await self._cancel_tasks(TEARDOWN_TIMEOUT_S)
        chat = self._chat or await self._opened_chat()
        error: CallError | None = None
        if chat is not None and self._api is not None:
            try:
                await self._api.end_chat(chat.chat_id)
            except CallError as exc:
                error = exc
                log.warning("ending chat %s failed: %s", chat.chat_id, exc)
        await self._close_api()
        if error is not None and error.code != CHAT_ENDED:
            self._emit(ErrorEvent(error, fatal=False))  # it may still be open on the server
        self._set_state(CallState.ENDED)

    async def set_muted(self, muted: bool) -> None:
        return  # nothing to mute in a text chat

    async def send_text(self, text: str) -> None:
        """Send one message and return once its reply is complete (or failed, or hung up)."""
        text = text.strip()
        if not text or self._state is not CallState.CONNECTED:
            return
        async with self._sending:
            chat = self._chat
            if self._state is not CallState.CONNECTED or chat is None or self._api is None:
                return
            n = next(self._ids)
            self._emit(TranscriptItem(f"{chat.chat_id}-user-{n}", Role.USER, text, final=True, added=True,
                                      timestamp=time.time()))
            reply = self._spawn(self._reply(self._api, chat.chat_id, text, f"{chat.chat_id}-reply-{n}"))
            await asyncio.wait({reply})  # a hang-up cancels the reply, not this caller

    async def set_recording(self, on: bool) -> bool:
        return not on  # a chat's record is its transcript (--transcript)

    async def delete_record(self) -> bool:
        return False  # a chat is not in the call history

    async def aclose(self) -> None:
        if self._closed:
            return
        await self.hang_up()
        self._closed = True
        await self._close_api()
        self._close_stream()

    # ------------------------------------------------------------------ a reply

    async def _reply(self, api: ChatApi, chat_id: str, content: str, fallback_id: str) -> None:
        reply = _Reply(fallback_id)
        self._emit(AgentStateChanged(AgentState.THINKING))
        try:
            async for event in api.send_chat_message(chat_id, content):
                self._on_chat_event(reply, event)
        except CallError as error:
            reply.failed = True
            if error.code == CHAT_ENDED:
                self._finish(reply)
                await self._close_api()
                await self._fail(error)
                return
            self._emit(ErrorEvent(error, fatal=False))
        except asyncio.CancelledError:
            self._finish(reply)
            raise
        if not (reply.failed or reply.completed or reply.done):
            # The stream ended without its end: the connection dropped mid-answer.
            self._emit(ErrorEvent(CallError.of(CONNECTION_ERROR, "chat reply stream ended before `done`"), fatal=False))
        self._finish(reply)
        self._emit(AgentStateChanged(AgentState.LISTENING))

    def _on_chat_event(self, reply: _Reply, event: ChatEvent) -> None:
        match event:
            case ChatMessageStart(message_id=message_id):
                reply.id = message_id or reply.id
            case ChatMessageChunk(accumulated_content=accumulated, delta=delta):
                reply.text = accumulated or reply.text + delta
                self._show(reply, final=False)
            case ChatMessageComplete(message=message):
                reply.text = message.content or reply.text
                reply.completed = True
                self._show(reply, final=True)
            case ChatToolEvent(phase=wire_phase, tool_name=name, tool_type=kind, details=details):
                phase = TOOL_PHASE_OF_CHAT_EVENT.get(wire_phase)
                if phase is not None:
                    self._emit(ToolEvent(phase, name or "tool", kind, details, time.time()))
                else:
                    log.debug("chat stream: tool event of unknown phase %r ignored", wire_phase)
            case ChatKnowledgeUsed(sources=sources):
                self._emit(KnowledgeUsed(tuple(_source_name(s) for s in sources), time.time()))
            case ChatStreamError(message=message, code=code):
                reply.failed = True
                known = ErrorCode(code) if code in USER_MESSAGES else SERVER_ERROR
                self._emit(ErrorEvent(CallError.of(known, message, details={"server_code": code}), fatal=False))
            case ChatDone():
                reply.done = True

    def _show(self, reply: _Reply, *, final: bool) -> None:
        self._emit(TranscriptItem(reply.id, Role.ASSISTANT, reply.text, final=final, added=not reply.shown,
                                  timestamp=reply.started))
        reply.shown = True

    def _finish(self, reply: _Reply) -> None:
        """A reply cut short keeps what arrived, marked as cut, and is final: nothing more comes."""
        if reply.shown and not reply.completed:
            reply.text = f"{reply.text.rstrip()} {self._t('chat.reply_cut')}".strip()
            reply.completed = True
            self._show(reply, final=True)

    # ------------------------------------------------------------------ helpers

    def _wespoke_client(self) -> ChatApi:
        from wespoke_tui.api import WespokeClient

        s = self._settings
        return WespokeClient(s.api_url, s.api_key or "", origin=s.origin)

    async def _opened_chat(self) -> ChatSession | None:
        """The chat a start still in flight opens, so a hang-up during it can end it."""
        if self._opening is None:
            return None
        try:
            return await self._opening
        except (CallError, asyncio.CancelledError):
            return None

    async def _fail(self, error: CallError) -> None:
        self._emit(ErrorEvent(error, fatal=True))
        await self._close_api()
        self._chat = None
        self._set_state(CallState.FAILED, error)

    async def _close_api(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            with contextlib.suppress(Exception):
                await api.aclose()


class _Reply:
    """The assistant's answer being streamed."""

    def __init__(self, reply_id: str) -> None:
        self.id = reply_id
        self.text = ""
        self.started = time.time()
        self.shown = False
        self.completed = False
        self.done = False
        self.failed = False


def _source_name(source: Any) -> str:
    if isinstance(source, dict):
        for key in ("title", "name", "documentName", "id"):
            value = source.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return str(source)
