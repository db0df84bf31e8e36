"""Every string exists in Turkish and English, with the same placeholders."""

from __future__ import annotations

import string

from wespoke_tui.i18n import STRINGS, text
from wespoke_tui.ui.app import WespokeApp
from wespoke_tui.ui.screens.confirm_hang_up import ConfirmHangUp
from wespoke_tui.ui.screens.devices import DevicesScreen
from wespoke_tui.ui.screens.help import KEYS, HelpScreen
from wespoke_tui.ui.screens.mic_consent import MicConsent
from wespoke_tui.ui.screens.setup import SetupScreen
from wespoke_tui.ui.widgets.message_input import MessageInput


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_string_in_both_languages_with_the_same_placeholders() -> None:
    for key, langs in STRINGS.items():
        assert set(langs) == {"tr", "en"}, key
        assert langs["tr"].strip() and langs["en"].strip(), key
        assert placeholders(langs["tr"]) == placeholders(langs["en"]), key


def test_turkish_strings_are_not_english_copies() -> None:
    same = {key for key, langs in STRINGS.items() if langs["tr"] == langs["en"]}
    assert same <= {"agent.unknown", "status.none"}, same


def test_every_binding_has_an_id_and_a_translated_description() -> None:
    for node in (WespokeApp, ConfirmHangUp, MicConsent, HelpScreen, DevicesScreen, SetupScreen, MessageInput):
        for binding in node.BINDINGS:
            assert binding.id and binding.description
            assert f"key.{binding.id}" in STRINGS, binding.id


def test_help_lists_translated_keys() -> None:
    for _, key in KEYS:
        assert text(key, "tr") != text(key, "en")


def test_formatting() -> None:
    assert text("state.reconnecting", "tr", attempt=2, max=3) == "Yeniden bağlanıyor 2/3"
    assert text("demo.you_spoke", "en", seconds=2.345) == "(you spoke for 2.3 s)"
