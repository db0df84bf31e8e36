"""Where each key of a scenario file is: TOML parsers give values, not lines, so the text is scanned.

Only the standard library, like the model.
"""

from __future__ import annotations

import re


class KeyLines:
    """The line of each top-level key, each [[turns]] table and each key of a turn."""

    def __init__(self, text: str) -> None:
        self._top: dict[str, int] = {}
        self._turns: list[int] = []
        self._turn_keys: list[dict[str, int]] = []
        table = ""
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if line.startswith("[[") and line.rstrip().endswith("]]"):
                table = line[2:-2].strip()
                if table == "turns":
                    self._turns.append(number)
                    self._turn_keys.append({})
                continue
            if line.startswith("[") and line.endswith("]"):
                table = line[1:-1].strip()
                if table.startswith("turns."):
                    continue
                self._top.setdefault(table, number)
                continue
            match = re.match(r"([A-Za-z0-9_.\"-]+)\s*=", line)
            if not match:
                continue
            key = match.group(1).replace('"', "")
            if table == "turns" and self._turn_keys:
                self._turn_keys[-1].setdefault(key, number)
            elif table.startswith("turns.") and self._turn_keys:
                self._turn_keys[-1].setdefault(f"{table[len('turns.'):]}.{key}", number)
            else:
                self._top.setdefault(key.split(".")[-1], number)

    def top(self, key: str) -> int | None:
        return self._top.get(key)

    def turn(self, number: int) -> int | None:
        return self._turns[number - 1] if 0 < number <= len(self._turns) else None

    def turn_key(self, number: int, key: str) -> int | None:
        if not 0 < number <= len(self._turn_keys):
            return None
        keys = self._turn_keys[number - 1]
        return keys.get(key) or keys.get(key.split(".")[0])
