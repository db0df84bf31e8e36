"""What the call screen needs of the app, and nothing more: `CallHost`.

The app (`WespokeApp`) holds the data and the controller's start and end; the call screen
(ui/screens/call_screen.py) holds the keys and the intents and is given its host when it is
made. The screen reaches the app only through these members, so the type checker sees every
use: renaming one on the app fails there, not at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from wespoke_tui.events import CallController
from wespoke_tui.i18n import Texts
from wespoke_tui.presenter import CallStatus
from wespoke_tui.settings import Settings


class CallHost(Protocol):
    """The app as the call screen sees it."""

    status: CallStatus
    """The call as the presenter sees it; the screen replaces it (mute, a backstop error, a mode switch)."""

    @property
    def settings(self) -> Settings:
        """The user's settings; the screen reads the consent and --delete-after, and flips `chat`."""
        ...

    @property
    def texts(self) -> Texts: ...

    @property
    def clock(self) -> Callable[[], float]:
        """Monotonic seconds (frozen in tests)."""
        ...

    @property
    def controller(self) -> CallController | None:
        """The current call's (or chat's) controller; None before setup and while switching modes."""
        ...

    @property
    def chat_mode(self) -> bool:
        """A text chat: no meters, no microphone, the input focused."""
        ...

    def record_deletable(self) -> bool:
        """An ended call whose record the Wespoke API still keeps."""
        ...

    def mic_consent_given(self) -> None:
        """The user allowed the microphone: remember it (the config file)."""
        ...

    def open_controller(self) -> None:
        """A controller for the next conversation, of the kind the settings say."""
        ...

    async def close_controller(self) -> None:
        """Hang up and release the controller."""
        ...

    def call_screen_ready(self) -> None:
        """The screen's widgets are up and show the host's state: the call may open now."""
        ...
