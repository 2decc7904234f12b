"""Telling a device its home's names (areas, floors, entity names) and ``squeezeedge names``.

A device keeps the names in RAM (firmware/PROTOCOL.md, "Home names"): after a reset they are
gone, so a host sends them again — ``push_names`` clears the device's table first, so pushing
twice gives the same table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tqdm import tqdm

from .models.gazetteer import HomeNames, NamesError
from .transport import DeviceError, Transport


def load_names(path: str | Path | None) -> HomeNames | None:
    """The names in a JSON file (see HomeNames.from_json), or None for no file."""
    return HomeNames.load(path) if path else None


def example_home() -> HomeNames:
    """Every name of the project's data (training and held-out): the home the held-out test
    sentences live in."""
    from .models.entities import home_names

    return home_names("all")


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


# ---- CLI ----

def add_names_parser(subparsers):
    p = subparsers.add_parser(
        "names", help="the home's names: write an example file, send them to a device",
        description="A device that knows its home's areas, floors and entity names finds them in "
                    "commands far better (as Home Assistant does with an installation's names). "
                    "Names are a JSON object: {\"area\": [...], \"floor\": [...], "
                    "\"name\": {\"light\": [...], \"vacuum\": [...], ...}}.")
    sub = p.add_subparsers(dest="names_cmd", required=True)
    ex = sub.add_parser("example", help="write the example home (every name of the project's data)")
    ex.add_argument("-o", "--output", metavar="FILE", help="where to write it (default: stdout)")
    push = sub.add_parser("push", help="replace a device's names by those of FILE",
                          description="Clears the device's names, then adds each name of FILE. Names live "
                                      "in the device's RAM: push them again after a reset.")
    push.add_argument("file", metavar="FILE", help="names JSON file (see `squeezeedge names example`)")
    push.add_argument("--port", metavar="URL", help="serial device, pty path or socket://host:port")
    push.add_argument("--device", metavar="ID", help="the device's id on the broker (with --broker)")
    from .broker import add_broker_arguments

    add_broker_arguments(push, "MQTT broker mqtt://host[:port] or mqtts://host[:port] (TLS), with --device")
    return p


def cmd_names(args) -> int:
    if args.names_cmd == "example":
        text = json.dumps(example_home().to_json(), indent=1) + "\n"
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
            print(f"wrote {len(example_home())} names to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    names = HomeNames.load(args.file)
    if args.broker:
        from .mqtt import MqttTransport, check_device, settings_from_args

        transport = MqttTransport(settings_from_args(args), check_device(args.device or ""))
    elif args.port:
        from .transport import open_transport

        transport = open_transport(args.port)
        transport.resync()
    else:
        raise NamesError("say where the device is: --port URL (serial) or --broker URL --device ID (MQTT)")
    notes: list[str] = []
    with transport:
        count = push_names(transport, names, progress=sys.stderr.isatty(), notes=notes)
    for note in notes:
        print(f"names push: {note}", file=sys.stderr)
    print(f"the device now knows {count} names ({len(names)} sent)")
    return 0
