"""The demo's text chat: the chat API's contract played offline, so `--demo --chat` works with
no key and no network. It answers what was written, streamed a few words at a time."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Mapping
from typing import Any

from wespoke_tui.api import (
    ApiMessage,
    AssistantInfo,
    ChatDone,
    ChatEvent,
    ChatMessageChunk,
    ChatMessageComplete,
    ChatMessageStart,
    ChatSession,
)
from wespoke_tui.errors import Lang
from wespoke_tui.i18n import Texts

WORDS_PER_CHUNK = 2
CHUNK_INTERVAL_S = 0.05  # slow enough to see the reply grow, as it does from a real assistant


class OfflineChatApi:
    """A `ChatApi` with the echo assistant behind it."""

    _chats = itertools.count(1)

    def __init__(self, lang: Lang) -> None:
        self._t = Texts(lang)
        self._messages = itertools.count(1)

    async def start_chat(
        self,
        assistant_id: str,
        metadata: Mapping[str, Any] | None = None,
        assistant_overrides: Mapping[str, Any] | None = None,
    ) -> ChatSession:
        first = (assistant_overrides or {}).get("firstMessage")
        greeting = first if isinstance(first, str) and first.strip() else self._t("demo.chat_greeting")
        return ChatSession(f"demo-chat-{next(self._chats)}", AssistantInfo("demo", self._t("demo.assistant_name")),
                           greeting_message=greeting)

    async def send_chat_message(self, chat_id: str, content: str) -> AsyncIterator[ChatEvent]:
        message_id = f"{chat_id}-answer-{next(self._messages)}"
        answer = self._t("demo.you_wrote", text=content)
        yield ChatMessageStart(message_id)
        words = answer.split(" ")
        for end in range(WORDS_PER_CHUNK, len(words) + WORDS_PER_CHUNK, WORDS_PER_CHUNK):
            await asyncio.sleep(CHUNK_INTERVAL_S)
            yield ChatMessageChunk(" ".join(words[:end]))
        yield ChatMessageComplete(ApiMessage(message_id, "assistant", answer))
        yield ChatDone()

    async def end_chat(self, chat_id: str) -> None:
        return None

    async def aclose(self) -> None:
        return None
