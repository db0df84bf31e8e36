"""Bindings whose footer and help text follow the user's language.

Textual reads `BINDINGS` once per class, in English; each node gets its own copy in
`_bindings`, which we rewrite with the translated description of each binding id.
"""

from __future__ import annotations

import dataclasses

from textual.binding import BindingsMap
from textual.dom import DOMNode

from wespoke_tui.errors import Lang
from wespoke_tui.i18n import STRINGS, text


def localize_bindings(node: DOMNode, lang: Lang, variant: str | None = None) -> None:
    """Give every binding of `node` with an id the description `key.<id>` in `lang`, or
    `key.<id>.<variant>` where there is one (e.g. "chat": c starts a chat, not a call)."""
    localized = []
    for bindings in node._bindings.key_to_bindings.values():
        for binding in bindings:
            keys = [f"key.{binding.id}.{variant}"] if variant else []
            key = next((k for k in [*keys, f"key.{binding.id}"] if k in STRINGS), None)
            if binding.id and key is not None:
                binding = dataclasses.replace(binding, description=text(key, lang))
            localized.append(binding)
    node._bindings = BindingsMap(localized)
