"""The status → code table, the user messages (tr and en) and the scrubbing of secrets."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from wespoke_tui import errors
from wespoke_tui.errors import CallError, describe, error_from_response, parse_retry_after, scrub, user_message

KEY = "pk_live_" + "SeCrEt0123456789abcdefgh"

# Written out here, not read from errors.py, so a changed wording or a lost translation fails.
EXPECTED_USER_MESSAGES = {
    errors.INVALID_REQUEST: (
        "İstek parametreleri hatalı. Lütfen destek ekibiyle iletişime geçin.",
        "The request parameters are wrong. Please contact support.",
    ),
    errors.UNAUTHORIZED: (
        "Kimlik doğrulama hatası. API anahtarınızı kontrol edin.",
        "Authentication failed. Check your API key.",
    ),
    errors.INSUFFICIENT_CREDITS: (
        "Arama başlatmak için yeterli krediniz yok.",
        "Not enough credits to start a call.",
    ),
    errors.DOMAIN_NOT_ALLOWED: (
        "Bu kaynak (Origin) anahtarın izinli alan adları arasında değil. İzinli bir alan adını --origin ile verin.",
        "This origin is not in the key's allowed domains. Pass an allowed one with --origin.",
    ),
    errors.ASSISTANT_NOT_FOUND: (
        "Asistan bulunamadı. Lütfen destek ekibiyle iletişime geçin.",
        "Assistant not found. Please contact support.",
    ),
    errors.RATE_LIMITED: (
        "Çok fazla arama yapıldı. Lütfen biraz bekleyip tekrar deneyin.",
        "Too many calls. Please wait a moment and try again.",
    ),
    errors.SERVER_ERROR: (
        "Sunucu hatası. Lütfen daha sonra tekrar deneyin.",
        "Server error. Please try again later.",
    ),
    errors.UNKNOWN_ERROR: (
        "Beklenmeyen bir hata oluştu. Lütfen daha sonra tekrar deneyin.",
        "An unexpected error occurred. Please try again later.",
    ),
    errors.INVALID_RESPONSE: (
        "Sunucudan geçersiz bir yanıt geldi. Lütfen daha sonra tekrar deneyin.",
        "The server sent an invalid response. Please try again later.",
    ),
    errors.CONNECTION_ERROR: (
        "Bağlantı kurulamadı. İnternet bağlantınızı kontrol edin.",
        "Could not connect. Check your internet connection.",
    ),
    errors.MICROPHONE_ERROR: (
        "Mikrofon açılamadı. Arama yalnızca dinleme modunda devam ediyor.",
        "The microphone could not be opened. The call continues listen-only.",
    ),
    errors.SPEAKER_ERROR: (
        "Ses çıkış aygıtı bulunamadı. Arama başlatılamıyor.",
        "No audio output device found. The call cannot start.",
    ),
    errors.DISCONNECTED: (
        "Bağlantı kesildi. Lütfen aramayı yeniden başlatın.",
        "The connection was lost. Please start the call again.",
    ),
    errors.CHAT_ENDED: (
        "Sohbet sunucuda sona erdi. Yeni bir sohbet başlatın.",
        "The chat has ended on the server. Start a new chat.",
    ),
    errors.RECORDING_ERROR: (
        "Kayıt yazılamadı; kayıt durdu, arama sürüyor. Klasörü ve boş alanı kontrol edin.",
        "The recording could not be written; it stopped, the call goes on. Check the folder and free space.",
    ),
    errors.AUDIO_FALLBACK: (
        "Yerel ses modülü bu aramayı taşıyamıyor; arama Python ses yoluyla sürüyor.",
        "The native audio module cannot carry this call; it goes on the Python audio path.",
    ),
    errors.RECORDING_NEEDS_PYTHON: (
        "Kayıt Python ses yolunu kullanır: bu arama o yola geçiyor.",
        "Recording uses the Python audio path: this call moves to it.",
    ),
}

STATUS_TABLE = [
    (400, errors.INVALID_REQUEST),
    (401, errors.UNAUTHORIZED),
    (402, errors.INSUFFICIENT_CREDITS),
    (403, errors.DOMAIN_NOT_ALLOWED),
    (404, errors.ASSISTANT_NOT_FOUND),
    (429, errors.RATE_LIMITED),
    (500, errors.SERVER_ERROR),
    (418, errors.UNKNOWN_ERROR),
    (503, errors.UNKNOWN_ERROR),
    (302, errors.UNKNOWN_ERROR),
]


def contract_body(message: str, code: str = "X", **extra: object) -> bytes:
    return json.dumps({"success": False, "error": {"message": message, "code": code, **extra}}).encode()


def test_every_code_has_both_languages() -> None:
    assert set(errors.USER_MESSAGES) == set(EXPECTED_USER_MESSAGES)


@pytest.mark.parametrize("code", sorted(EXPECTED_USER_MESSAGES))
def test_user_message_tr_and_en(code: str) -> None:
    tr, en = EXPECTED_USER_MESSAGES[code]
    error = CallError.of(code)
    assert describe(error, "tr") == tr
    assert describe(error, "en") == en


def test_unknown_code_falls_back_to_unknown_error_wording() -> None:
    assert user_message("NO_SUCH_CODE", "en") == EXPECTED_USER_MESSAGES[errors.UNKNOWN_ERROR][1]


@pytest.mark.parametrize(("status", "code"), STATUS_TABLE)
@pytest.mark.parametrize("body", [b"", b"<html><body>Bad Gateway</body></html>", b"[1,2]", b'{"error": 7}', b"\xff\xfe"])
def test_status_maps_whatever_the_body(status: int, code: str, body: bytes) -> None:
    error = error_from_response(status, body, {})
    assert error.code == code
    assert error.status == status
    assert describe(error, "tr").startswith(EXPECTED_USER_MESSAGES[code][0])


@pytest.mark.parametrize("status", [418, 503, 302])
def test_unknown_status_message_is_http_status(status: int) -> None:
    error = error_from_response(status, b"<html>teapot</html>", {})
    assert error.message == f"HTTP {status}"
    assert describe(error, "en") == EXPECTED_USER_MESSAGES[errors.UNKNOWN_ERROR][1] + f" (HTTP {status})"
    assert describe(error, "tr") == EXPECTED_USER_MESSAGES[errors.UNKNOWN_ERROR][0] + f" (HTTP {status})"


def test_server_message_is_kept_for_the_log() -> None:
    error = error_from_response(402, contract_body("Tenant acme has 0 credits left", "INSUFFICIENT_CREDITS"), {})
    assert error.message == "Tenant acme has 0 credits left"
    assert error.details["server_code"] == "INSUFFICIENT_CREDITS"
    assert describe(error, "en") == EXPECTED_USER_MESSAGES[errors.INSUFFICIENT_CREDITS][1]  # not shown to the user


def test_default_message_when_the_server_gives_none() -> None:
    assert error_from_response(401, b"", {}).message == "Invalid API key"
    assert error_from_response(403, b"<html/>", {}).message == "Domain not in allowed list"


def test_400_shows_the_server_message_in_both_languages() -> None:
    error = error_from_response(400, contract_body("assistantId is required\n  (field: body)"), {})
    assert describe(error, "tr") == EXPECTED_USER_MESSAGES[errors.INVALID_REQUEST][0] + " (assistantId is required (field: body))"
    assert describe(error, "en") == (
        EXPECTED_USER_MESSAGES[errors.INVALID_REQUEST][1] + " (assistantId is required (field: body))"
    )


def test_400_server_message_is_cut_short_for_the_screen() -> None:
    error = error_from_response(400, contract_body("x" * 5000), {})
    assert len(describe(error, "en")) < len(EXPECTED_USER_MESSAGES[errors.INVALID_REQUEST][1]) + errors.SERVER_MESSAGE_LIMIT + 5
    assert describe(error, "en").endswith("…)")


def test_429_retry_after_from_body_wins_over_header() -> None:
    error = error_from_response(429, contract_body("slow down", retryAfter=12, resetAt="2030-01-01T00:00:00Z"), {"Retry-After": "99"})
    assert error.retry_after == 12
    assert error.details["reset_at"] == "2030-01-01T00:00:00Z"
    assert describe(error, "en") == EXPECTED_USER_MESSAGES[errors.RATE_LIMITED][1] + " (retry in 12 s)"
    assert describe(error, "tr") == EXPECTED_USER_MESSAGES[errors.RATE_LIMITED][0] + " (12 sn sonra)"


def test_429_retry_after_from_header_when_body_is_not_json() -> None:
    error = error_from_response(429, b"Too Many Requests", {"retry-after": "30"})
    assert error.retry_after == 30
    assert describe(error, "tr") == EXPECTED_USER_MESSAGES[errors.RATE_LIMITED][0] + " (30 sn sonra)"


def test_429_without_any_retry_hint() -> None:
    error = error_from_response(429, b"", {})
    assert error.retry_after is None
    assert describe(error, "en") == EXPECTED_USER_MESSAGES[errors.RATE_LIMITED][1]


@pytest.mark.parametrize("bad", [True, -3, "5", None])
def test_429_ignores_a_body_retry_after_of_the_wrong_type(bad: object) -> None:
    error = error_from_response(429, contract_body("x", retryAfter=bad), {"Retry-After": "4"})
    assert error.retry_after == 4


def test_parse_retry_after_forms() -> None:
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after("17") == 17
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=40), usegmt=True), now=now) == 40
    assert parse_retry_after(format_datetime(now - timedelta(seconds=40), usegmt=True), now=now) == 0
    assert parse_retry_after("-5") == 0
    for junk in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(junk) is None


def test_the_key_is_scrubbed_from_the_server_message_and_code() -> None:
    bare = KEY.removeprefix("pk_live_")
    body = contract_body(f"key {KEY} rejected; also {bare}", code=f"BAD_{KEY}")
    for status in (400, 401, 418):
        error = error_from_response(status, body, {}, secrets=[KEY])
        for text in (str(error), repr(error), error.message, describe(error, "tr"), repr(error.details),
                     describe(error, "en")):
            assert KEY not in text and bare not in text
        assert "pk_live_…efgh" in error.message


def test_scrub_leaves_text_without_secrets_alone() -> None:
    assert scrub("nothing to hide", [KEY, None, ""]) == "nothing to hide"
    assert scrub(f"a{KEY}b", [KEY]) == "apk_live_…efghb"


def test_call_error_is_an_exception_with_code_in_str() -> None:
    error = CallError.of(errors.CONNECTION_ERROR, "refused")
    assert isinstance(error, Exception)
    assert str(error) == "[CONNECTION_ERROR] refused"
    assert error.status is None


def test_error_codes_are_their_names_as_text() -> None:
    """A code goes out as text (JSON records, the `notice.cleared.<code>` keys, the log): its name."""
    assert errors.UNAUTHORIZED is errors.ErrorCode.UNAUTHORIZED and errors.UNAUTHORIZED == "UNAUTHORIZED"
    assert f"{errors.MICROPHONE_SILENT}" == str(errors.MICROPHONE_SILENT) == "MICROPHONE_SILENT"
    assert json.dumps({"code": errors.RATE_LIMITED}) == '{"code": "RATE_LIMITED"}'
    assert all(code == code.name for code in errors.ErrorCode)
