"""Logging to `--log-file` only, with every secret redacted from every record.

Nothing is ever logged to the terminal (the TUI owns it): without a log file the root logger
gets a NullHandler, which also keeps Python's last-resort stderr handler quiet. The redacting
filter sits on the handler, so it sees records of every logger, including propagated ones
from livekit, httpx and textual.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from io import TextIOWrapper
from pathlib import Path
from typing import cast

from wespoke_tui.settings import Settings, mask_key

REDACTED_TOKEN = "<redacted-token>"
REDACTED = "<redacted>"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Three base64url parts, the first a JSON header ("{\"..." encodes as "eyJ").
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# Any embed key, not only the configured one (the setup screen may handle others).
_EMBED_KEY = re.compile(r"pk_(?:live|test)_[A-Za-z0-9_-]+")
# Shorter values would redact ordinary words.
_MIN_SECRET_LEN = 6

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Redact `value` from every later log record (e.g. the LiveKit token of a session)."""
    if value and len(value) >= _MIN_SECRET_LEN:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """`text` with embed keys masked, JWTs and registered secrets replaced."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            replacement = mask_key(secret) if secret.startswith("pk_") else REDACTED
            text = text.replace(secret, replacement)
    text = _JWT.sub(REDACTED_TOKEN, text)
    return _EMBED_KEY.sub(lambda m: mask_key(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """Formats the record's message, exception and stack now, and redacts them."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


# The name of the handler `setup_logging` installs, so a second call replaces it.
_HANDLER_NAME = "wespoke-tui"


def _create_private(path: Path) -> None:
    """Create the log file 0600 (it holds transcripts) before FileHandler appends to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))


class _LogFile(logging.FileHandler):
    """The log file, UTF-8 with \\n line ends on every OS (FileHandler's own text mode would
    write \\r\\n on Windows)."""

    def _open(self) -> TextIOWrapper:
        # A text mode ("a"), so a TextIOWrapper; mypy types open() with a str mode as IO[Any].
        return cast(TextIOWrapper, open(self.baseFilename, self.mode, encoding="utf-8", newline="\n"))  # noqa: SIM115


def setup_logging(settings: Settings) -> None:
    """Route all logging to `settings.log_file` (or nowhere) at `settings.log_level`.

    Raises OSError when the log file cannot be opened.
    """
    register_secret(settings.api_key)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    handler: logging.Handler
    if settings.log_file is not None:
        _create_private(settings.log_file)
        handler = _LogFile(settings.log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    else:
        handler = logging.NullHandler()
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(getattr(logging, settings.log_level.upper(), logging.WARNING))
    # Warnings would otherwise print on the terminal under the TUI.
    logging.captureWarnings(True)
