"""The key footer: Textual's, rebuilt only when the keys it shows change.

Textual's footer rebuilds all its keys each time a screen's bindings may have changed (every focus
move, screen switch and `refresh_bindings`, each call on its own), and every rebuilt key is styled
anew. This one rebuilds when the keys it would show differ from the ones it shows: their bindings
(key, words, action, group), whether each is enabled, and their tooltips.
"""

from __future__ import annotations

from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    _shown: object = None

    def _keys_to_show(self) -> object:
        if not self._bindings_ready:
            return None
        keys = tuple((binding, enabled, tooltip) for (_, binding, enabled, tooltip)
                     in self.screen.active_bindings.values())
        return keys, self.show_command_palette, self.combine_groups

    async def recompose(self) -> None:
        if self.is_attached:  # (a footer on a screen that has gone is left to Textual)
            keys = self._keys_to_show()
            if keys is not None and keys == self._shown:
                return
            self._shown = keys
        await super().recompose()
