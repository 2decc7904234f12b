"""Telling a device its home's names (areas, floors, entity names) and ``squeezeedge names``.

A device keeps the names in RAM (firmware/PROTOCOL.md, "Home names"): after a reset they are
gone, so a host sends them again — ``push_names`` clears the device's table first, so pushing
twice gives the same table.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from .models.gazetteer import HomeNames, NamesError
from .transport import DeviceError, Transport


def load_names(path: str | Path | None) -> HomeNames | None:
    """The names in a JSON file (see HomeNames.from_json), or None for no file."""
    return HomeNames.load(path) if path else None


def example_home(language: str = "en") -> HomeNames:
    """Every name of the project's data in ``language`` (training and held-out): the home the
    held-out test sentences live in."""
    from .models.entities import home_names

    return home_names("all", language)


def add_requests(names: HomeNames) -> list[dict]:
    """The protocol requests that add ``names`` to a device's table, in order."""
    return [{"cmd": "names_add", "kind": kind, "text": text} for kind, text in names.entries]


def push_names(transport: Transport, names: HomeNames, progress: bool = False, notes: list[str] | None = None) -> int:
    """Replace the device's names by ``names``; return how many distinct names it holds.
    Raises NamesError naming the first entry the device refused (the rest are not sent).
    ``notes`` receives one sentence per name the device kept under an earlier kind."""
    reply = transport.request({"cmd": "names_clear"})
    if "error" in reply:
        raise DeviceError(reply)
    count = 0
    for request in tqdm(add_requests(names), desc="names", unit="name", disable=not progress, leave=False):
        reply = transport.request(request)
        if "error" in reply:
            raise NamesError(f"the device refused {request['kind']} {request['text']!r}: {reply['error']}")
        count = reply["names"]
        if "note" in reply and notes is not None:
            notes.append(f"{request['kind']} {request['text']!r} was not added: the device already holds that name "
                         f"as {reply.get('kept_kind') or 'another kind'} (a name can have one kind; rename one of them)")
    return count
