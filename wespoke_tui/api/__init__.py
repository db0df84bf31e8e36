"""The Wespoke embed API over HTTP, `WespokeClient` and its answers: see README.md, "How the code is laid out"."""

# This module re-exports the names the rest of the code imports from `wespoke_tui.api`.

from wespoke_tui.api.answers import (
    ApiMessage,
    AssistantInfo,
    CallToken,
    ChatSession,
    RateLimit,
    parse_chat_session,
    parse_messages,
    parse_token,
)
from wespoke_tui.api.chat_stream import (
    ChatDone,
    ChatEvent,
    ChatKnowledgeUsed,
    ChatMessageChunk,
    ChatMessageComplete,
    ChatMessageStart,
    ChatStreamError,
    ChatToolEvent,
    SseParser,
    chat_event,
)
from wespoke_tui.api.client import (
    DEFAULT_TIMEOUT,
    END_CALL_TIMEOUT,
    END_CHAT_TIMEOUT,
    ERROR_BODY_LIMIT,
    SUCCESS_BODY_LIMIT,
    USER_AGENT,
    WespokeClient,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "END_CALL_TIMEOUT",
    "END_CHAT_TIMEOUT",
    "ERROR_BODY_LIMIT",
    "SUCCESS_BODY_LIMIT",
    "USER_AGENT",
    "ApiMessage",
    "AssistantInfo",
    "CallToken",
    "ChatDone",
    "ChatEvent",
    "ChatKnowledgeUsed",
    "ChatMessageChunk",
    "ChatMessageComplete",
    "ChatMessageStart",
    "ChatSession",
    "ChatStreamError",
    "ChatToolEvent",
    "RateLimit",
    "SseParser",
    "WespokeClient",
    "chat_event",
    "parse_chat_session",
    "parse_messages",
    "parse_token",
]
