"""The conversation controllers and `make_controller`: see README.md, "How the code is laid out"."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from wespoke_tui.events import CallController
from wespoke_tui.settings import Settings

if TYPE_CHECKING:
    from wespoke_tui.audio.base import AudioBackend


def make_controller(settings: Settings, audio_backends: Callable[[], AudioBackend]) -> CallController:
    """The controller the settings ask for; `audio_backends()` gives each voice call its devices.

    Imports are lazy: a text chat never loads LiveKit, and the demo never loads httpx.
    """
    if settings.chat:
        from wespoke_tui.controllers.chat import ChatController

        if settings.demo:
            from wespoke_tui.controllers.offline_chat import OfflineChatApi

            return ChatController(settings, lambda: OfflineChatApi(settings.lang))
        return ChatController(settings)
    if settings.demo:
        from wespoke_tui.controllers.demo import DemoController

        return DemoController(settings, audio_backends)
    from wespoke_tui.session import CallSession

    return CallSession(settings, audio_backends)
