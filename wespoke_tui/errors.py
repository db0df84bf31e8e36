"""One error type for everything that can go wrong in a call, and its words for the user in tr and en.

A `CallError` is data: its `ErrorCode`, a technical message for the log, the HTTP status,
retry-after and details. It carries no language: the layers that raise it (api, session, audio,
controllers) never take one. Its words for the user are made where they are shown, by
`describe(error, lang)`: the presenter, the TUI, the headless reporter and the CLI's stderr.

The status → code table, the client-side codes and where each wording comes from are in
docs/api-contract.md, "Errors" ("Status codes", "Client-side codes").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Literal

from wespoke_tui.settings import KEY_PREFIXES, mask_key

Lang = Literal["tr", "en"]


class ErrorCode(StrEnum):
    """What went wrong. A `str`: it compares equal to, formats and json-dumps as its name."""

    INVALID_REQUEST = "INVALID_REQUEST"
    UNAUTHORIZED = "UNAUTHORIZED"
    INSUFFICIENT_CREDITS = "INSUFFICIENT_CREDITS"
    DOMAIN_NOT_ALLOWED = "DOMAIN_NOT_ALLOWED"
    ASSISTANT_NOT_FOUND = "ASSISTANT_NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    SERVER_ERROR = "SERVER_ERROR"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"
    INVALID_RESPONSE = "INVALID_RESPONSE"
    CONNECTION_ERROR = "CONNECTION_ERROR"
    MICROPHONE_ERROR = "MICROPHONE_ERROR"
    SPEAKER_ERROR = "SPEAKER_ERROR"
    DISCONNECTED = "DISCONNECTED"
    CHAT_ENDED = "CHAT_ENDED"
    RECORDING_ERROR = "RECORDING_ERROR"
    NO_SOUND_DEVICE = "NO_SOUND_DEVICE"  # details: missing = SoundMissing's value, platform = sys.platform
    MICROPHONE_SILENT = "MICROPHONE_SILENT"  # details: platform = sys.platform
    AUDIO_FALLBACK = "AUDIO_FALLBACK"  # the native audio module could not start, or lost a device
    RECORDING_NEEDS_PYTHON = "RECORDING_NEEDS_PYTHON"
    HUNG_UP = "HUNG_UP"  # internal (session.parts.HungUp): the user hung up during the connect; never shown


# The codes by their old names, so `errors.UNAUTHORIZED` and `from errors import UNAUTHORIZED` stay.
INVALID_REQUEST = ErrorCode.INVALID_REQUEST
UNAUTHORIZED = ErrorCode.UNAUTHORIZED
INSUFFICIENT_CREDITS = ErrorCode.INSUFFICIENT_CREDITS
DOMAIN_NOT_ALLOWED = ErrorCode.DOMAIN_NOT_ALLOWED
ASSISTANT_NOT_FOUND = ErrorCode.ASSISTANT_NOT_FOUND
RATE_LIMITED = ErrorCode.RATE_LIMITED
SERVER_ERROR = ErrorCode.SERVER_ERROR
UNKNOWN_ERROR = ErrorCode.UNKNOWN_ERROR
INVALID_RESPONSE = ErrorCode.INVALID_RESPONSE
CONNECTION_ERROR = ErrorCode.CONNECTION_ERROR
MICROPHONE_ERROR = ErrorCode.MICROPHONE_ERROR
SPEAKER_ERROR = ErrorCode.SPEAKER_ERROR
DISCONNECTED = ErrorCode.DISCONNECTED
CHAT_ENDED = ErrorCode.CHAT_ENDED
RECORDING_ERROR = ErrorCode.RECORDING_ERROR
NO_SOUND_DEVICE = ErrorCode.NO_SOUND_DEVICE
MICROPHONE_SILENT = ErrorCode.MICROPHONE_SILENT
AUDIO_FALLBACK = ErrorCode.AUDIO_FALLBACK
RECORDING_NEEDS_PYTHON = ErrorCode.RECORDING_NEEDS_PYTHON

# The server's `error.code` of a 404 that is about the chat, not the assistant.
CHAT_GONE_SERVER_CODES = frozenset({"CHAT_ENDED", "CHAT_NOT_FOUND"})

STATUS_CODES: dict[int, ErrorCode] = {
    400: INVALID_REQUEST,
    401: UNAUTHORIZED,
    402: INSUFFICIENT_CREDITS,
    403: DOMAIN_NOT_ALLOWED,
    404: ASSISTANT_NOT_FOUND,
    429: RATE_LIMITED,
    500: SERVER_ERROR,
}

# Technical messages for the log when the server gives none of its own.
DEFAULT_MESSAGES: dict[str, str] = {
    INVALID_REQUEST: "Invalid request",
    UNAUTHORIZED: "Invalid API key",
    INSUFFICIENT_CREDITS: "Insufficient credits",
    DOMAIN_NOT_ALLOWED: "Domain not in allowed list",
    ASSISTANT_NOT_FOUND: "Assistant not found",
    RATE_LIMITED: "Rate limited",
    SERVER_ERROR: "Internal server error",
    INVALID_RESPONSE: "Invalid response from the API",
    CONNECTION_ERROR: "Connection failed",
    MICROPHONE_ERROR: "Microphone unavailable",
    SPEAKER_ERROR: "No output device",
    DISCONNECTED: "Disconnected",
    CHAT_ENDED: "Chat ended on the server",
    RECORDING_ERROR: "Recording failed",
    NO_SOUND_DEVICE: "No sound device",
    MICROPHONE_SILENT: "The microphone gives digital silence",
    AUDIO_FALLBACK: "The native audio module is not used",
    RECORDING_NEEDS_PYTHON: "Recording moves the call to the python audio path",
}

USER_MESSAGES: dict[str, dict[Lang, str]] = {
    INVALID_REQUEST: {
        "tr": "İstek parametreleri hatalı. Lütfen destek ekibiyle iletişime geçin.",
        "en": "The request parameters are wrong. Please contact support.",
    },
    UNAUTHORIZED: {
        "tr": "Kimlik doğrulama hatası. API anahtarınızı kontrol edin.",
        "en": "Authentication failed. Check your API key.",
    },
    INSUFFICIENT_CREDITS: {
        "tr": "Arama başlatmak için yeterli krediniz yok.",
        "en": "Not enough credits to start a call.",
    },
    DOMAIN_NOT_ALLOWED: {
        "tr": "Bu kaynak (Origin) anahtarın izinli alan adları arasında değil. "
        "İzinli bir alan adını --origin ile verin.",
        "en": "This origin is not in the key's allowed domains. "
        "Pass an allowed one with --origin.",
    },
    ASSISTANT_NOT_FOUND: {
        "tr": "Asistan bulunamadı. Lütfen destek ekibiyle iletişime geçin.",
        "en": "Assistant not found. Please contact support.",
    },
    RATE_LIMITED: {
        "tr": "Çok fazla arama yapıldı. Lütfen biraz bekleyip tekrar deneyin.",
        "en": "Too many calls. Please wait a moment and try again.",
    },
    SERVER_ERROR: {
        "tr": "Sunucu hatası. Lütfen daha sonra tekrar deneyin.",
        "en": "Server error. Please try again later.",
    },
    UNKNOWN_ERROR: {
        "tr": "Beklenmeyen bir hata oluştu. Lütfen daha sonra tekrar deneyin.",
        "en": "An unexpected error occurred. Please try again later.",
    },
    INVALID_RESPONSE: {
        "tr": "Sunucudan geçersiz bir yanıt geldi. Lütfen daha sonra tekrar deneyin.",
        "en": "The server sent an invalid response. Please try again later.",
    },
    CONNECTION_ERROR: {
        "tr": "Bağlantı kurulamadı. İnternet bağlantınızı kontrol edin.",
        "en": "Could not connect. Check your internet connection.",
    },
    MICROPHONE_ERROR: {
        "tr": "Mikrofon açılamadı. Arama yalnızca dinleme modunda devam ediyor.",
        "en": "The microphone could not be opened. The call continues listen-only.",
    },
    SPEAKER_ERROR: {
        "tr": "Ses çıkış aygıtı bulunamadı. Arama başlatılamıyor.",
        "en": "No audio output device found. The call cannot start.",
    },
    DISCONNECTED: {
        "tr": "Bağlantı kesildi. Lütfen aramayı yeniden başlatın.",
        "en": "The connection was lost. Please start the call again.",
    },
    CHAT_ENDED: {
        "tr": "Sohbet sunucuda sona erdi. Yeni bir sohbet başlatın.",
        "en": "The chat has ended on the server. Start a new chat.",
    },
    AUDIO_FALLBACK: {
        "tr": "Yerel ses modülü bu aramayı taşıyamıyor; arama Python ses yoluyla sürüyor.",
        "en": "The native audio module cannot carry this call; it goes on the Python audio path.",
    },
    RECORDING_NEEDS_PYTHON: {
        "tr": "Kayıt Python ses yolunu kullanır: bu arama o yola geçiyor.",
        "en": "Recording uses the Python audio path: this call moves to it.",
    },
    RECORDING_ERROR: {
        "tr": "Kayıt yazılamadı; kayıt durdu, arama sürüyor. Klasörü ve boş alanı kontrol edin.",
        "en": "The recording could not be written; it stopped, the call goes on. Check the folder and free space.",
    },
}


# The server's own text is shown to the user (400 only, as the contract says) cut to this length.
SERVER_MESSAGE_LIMIT = 200


def user_message(
    code: str,
    lang: Lang,
    *,
    retry_after: float | None = None,
    status: int | None = None,
    server_message: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> str:
    """The words for the user of an error of `code`, in `lang` (`describe` gives an error's)."""
    if code in (NO_SOUND_DEVICE, MICROPHONE_SILENT):
        from wespoke_tui.sound_help import sound_message

        return sound_message(code, lang, details or {})
    messages = USER_MESSAGES.get(code, USER_MESSAGES[UNKNOWN_ERROR])
    text = messages.get(lang, messages["en"])
    if code == RATE_LIMITED and retry_after is not None:
        seconds = max(1, round(retry_after))
        text += f" ({seconds} sn sonra)" if lang == "tr" else f" (retry in {seconds} s)"
    if code == INVALID_REQUEST and server_message:
        text += f" ({_one_line(server_message, SERVER_MESSAGE_LIMIT)})"
    if code == UNKNOWN_ERROR and status is not None:
        text += f" (HTTP {status})"
    return text


@dataclass(eq=False)
class CallError(Exception):
    """Every failure of a call: its code, a technical message for logs, and what the words for
    the user need (`describe` makes them)."""

    code: ErrorCode
    message: str
    status: int | None = None
    retry_after: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"[{self.code}] {self.message}")

    @classmethod
    def of(cls, code: ErrorCode, message: str | None = None, **kw: Any) -> CallError:
        return cls(code=code, message=message or DEFAULT_MESSAGES.get(code, code), **kw)


def describe(error: CallError, lang: Lang) -> str:
    """What the user is told of `error`, in `lang`: the one way an error gets its words."""
    return user_message(
        error.code,
        lang,
        retry_after=error.retry_after,
        status=error.status,
        server_message=error.details.get("server_message"),
        details=error.details,
    )


def code_for_status(status: int) -> ErrorCode:
    return STATUS_CODES.get(status, UNKNOWN_ERROR)



def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret (API key, LiveKit token) replaced by its mask.

    A key's part after `pk_live_`/`pk_test_` is a secret on its own too: a server may echo it bare.
    """
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, mask_key(secret))
        prefix = next((p for p in KEY_PREFIXES if secret.startswith(p)), "")
        bare = secret[len(prefix):]
        if prefix and len(bare) >= 8:
            text = text.replace(bare, mask_key(bare))
    return text


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """A `Retry-After` header: delay-seconds or an HTTP date. None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf from "nan", "inf"
        return None
    return max(0.0, seconds)


def _error_object(body: bytes) -> dict[str, Any]:
    """The `error` object of a contract error body; {} for anything else (HTML, empty, junk)."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict):
        return {}
    err = doc.get("error")
    if isinstance(err, dict):
        return err
    if isinstance(err, str):  # some proxies answer {"error": "text"}
        return {"message": err}
    return {}


def error_from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    secrets: Iterable[str | None] = (),
) -> CallError:
    """Map a failed HTTP answer to a CallError by its status, whatever its body looks like.

    The server's own `error.message` is kept (scrubbed of `secrets`) for the log; `retryAfter`
    comes from the body, else from the `Retry-After` header.
    """
    secrets = tuple(secrets)
    code = code_for_status(status)
    err = _error_object(body)
    raw_message = err.get("message")
    server_message = (
        scrub(_one_line(raw_message, 1000), secrets) if isinstance(raw_message, str) and raw_message.strip() else None
    )
    if code == UNKNOWN_ERROR:
        message = f"HTTP {status}" + (f": {server_message}" if server_message else "")
    else:
        message = server_message or DEFAULT_MESSAGES[code]

    retry_after: float | None = None
    details: dict[str, Any] = {}
    if code == RATE_LIMITED:
        body_retry = err.get("retryAfter")
        if isinstance(body_retry, (int, float)) and not isinstance(body_retry, bool) and body_retry >= 0:
            retry_after = float(body_retry)
        else:
            header = None
            for name, value in (headers or {}).items():
                if name.lower() == "retry-after":
                    header = value
            retry_after = parse_retry_after(header)
        reset_at = err.get("resetAt")
        if isinstance(reset_at, str):
            details["reset_at"] = reset_at[:64]
    server_code = err.get("code")
    if isinstance(server_code, str):
        details["server_code"] = scrub(server_code[:64], secrets)
        if status == 404 and server_code in CHAT_GONE_SERVER_CODES:
            code = CHAT_ENDED
            message = server_message or DEFAULT_MESSAGES[code]
    if server_message and code == INVALID_REQUEST:
        details["server_message"] = server_message
    return CallError(code=code, message=message, status=status, retry_after=retry_after, details=details)
