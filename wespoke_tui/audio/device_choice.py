"""A sound device chosen by text: how a choice is written down and which devices it names.

PortAudio on Windows lists every device once per host API (MME, Windows DirectSound, Windows
WASAPI, Windows WDM-KS), so a bare name matches up to four devices. The rules this module keeps:

- A choice is saved as "name [host API]" (`choice_text`), e.g. "Microphone (Realtek) [Windows
  WASAPI]": it names exactly one device unless two devices share both name and host API, and
  then the devices screen saves the index instead.
- A text names, in this order: the device whose "name [host API]" it is; else the devices whose
  name it is; else, limited to one host API when it ends with "[that API]" (or part of that
  API's name: "[WASAPI]"), the devices whose name is the rest, then those whose name contains
  it (all case-insensitively).
- A device (a name) listed under several host APIs counts once: under PortAudio's default host
  API (MME on Windows, Core Audio on macOS, ALSA on Linux), else under the first of
  `SHARED_MODE_APIS` it has (MME cuts names to 31 characters, so a long name may lack an MME
  twin). So a bare name, as an older version saved it, names one device again; different
  devices stay ambiguous: the caller names them and asks for an index or the name with its host
  API.

No PortAudio here: the devices screen uses it on its own entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar


class Choosable(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def host_api(self) -> str: ...

    @property
    def in_default_host_api(self) -> bool: ...


D = TypeVar("D", bound=Choosable)

# After the default host API, the APIs that share a device with other programs, in the order
# PortAudio lists them; exclusive ones (WDM-KS, ASIO) and the rest come last.
SHARED_MODE_APIS = ("MME", "Windows DirectSound", "Windows WASAPI", "Core Audio", "ALSA")

_SUFFIX = re.compile(r"^(?P<name>.*?\S)\s*\[(?P<api>[^\[\]]+)\]\s*$")


def choice_text(name: str, host_api: str) -> str:
    """The saved form of a device: "name [host API]" (the bare name when the API is unknown)."""
    return f"{name} [{host_api}]" if host_api else name


def split_choice(text: str, host_apis: Iterable[str]) -> tuple[str, str | None]:
    """(the name part, the host API) of `text`; the API only when its "[…]" suffix is one of
    `host_apis`, or part of exactly one of them; otherwise (text, None)."""
    match = _SUFFIX.match(text)
    if match is None:
        return text, None
    wanted = match["api"].strip().casefold()
    apis = sorted(set(host_apis))
    exact = [api for api in apis if api.casefold() == wanted]
    partial = [api for api in apis if wanted in api.casefold()]
    named = exact or partial
    return (match["name"], named[0]) if len(named) == 1 else (text, None)


def _rank(device: Choosable) -> tuple[int, int]:
    order = SHARED_MODE_APIS.index(device.host_api) if device.host_api in SHARED_MODE_APIS else len(SHARED_MODE_APIS)
    return (0 if device.in_default_host_api else 1, order)


def _best_api_each(matches: list[D]) -> list[D]:
    """Each device (a name) once, under its best host API; two devices sharing both name and
    host API both stay (only an index tells them apart)."""
    by_name: dict[str, list[D]] = {}
    for device in matches:
        by_name.setdefault(device.name.casefold(), []).append(device)
    best: list[D] = []
    for same in by_name.values():
        top = min(_rank(d) for d in same)
        best += [d for d in same if _rank(d) == top]
    return best


def matching_devices(text: str, devices: Sequence[D]) -> list[D]:
    """The devices `text` (a name, part of one, or "name [host API]") names, by the rules above:
    one when it is unambiguous, none when nothing matches, several when it is ambiguous."""
    text = text.strip()
    wanted = text.casefold()
    labelled = [d for d in devices if choice_text(d.name, d.host_api).casefold() == wanted]
    if labelled:
        return labelled
    named = [d for d in devices if d.name.casefold() == wanted]  # a name that has brackets itself
    if named:
        return _best_api_each(named)
    name, api = split_choice(text, (d.host_api for d in devices if d.host_api))
    pool = [d for d in devices if api is None or d.host_api == api]
    wanted = name.casefold()
    exact = [d for d in pool if d.name.casefold() == wanted]
    return _best_api_each(exact or [d for d in pool if wanted in d.name.casefold()])
