"""``squeezeedge names example | push``: the home's names, written out or sent to a device."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..broker import add_broker_arguments, settings_from_args
from ..models.gazetteer import HomeNames, NamesError
from ..mqtt import MqttTransport, check_device
from ..names import example_home, push_names
from ..transport import DeviceError, TransportError, open_transport
from .common import CliError


def add_parser(subparsers):
    p = subparsers.add_parser(
        "names", help="the home's names: write an example file, send them to a device",
        description="A device that knows its home's areas, floors and entity names finds them in "
                    "commands far better (as Home Assistant does with an installation's names). "
                    "Names are a JSON object: {\"area\": [...], \"floor\": [...], "
                    "\"name\": {\"light\": [...], \"vacuum\": [...], ...}}.")
    sub = p.add_subparsers(dest="names_cmd", required=True)
    ex = sub.add_parser("example", help="write the example home (every name of the project's data)")
    ex.add_argument("-o", "--output", metavar="FILE", help="where to write it (default: stdout)")
    ex.add_argument("--language", default="en", metavar="XX", help="the home's language (default: en; "
                                                                   "models/data/languages/ has the others)")
    push = sub.add_parser("push", help="replace a device's names by those of FILE",
                          description="Clears the device's names, then adds each name of FILE. Names live "
                                      "in the device's RAM: push them again after a reset.")
    push.add_argument("file", metavar="FILE", help="names JSON file (see `squeezeedge names example`)")
    push.add_argument("--port", metavar="URL", help="serial device, pty path or socket://host:port")
    push.add_argument("--device", metavar="ID", help="the device's id on the broker (with --broker)")
    add_broker_arguments(push, "MQTT broker mqtt://host[:port] or mqtts://host[:port] (TLS), with --device")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    try:
        return _run(args)
    except (NamesError, TransportError, DeviceError, OSError) as e:
        raise CliError(str(e)) from None


def _run(args) -> int:
    if args.names_cmd == "example":
        from ..models.languages import LanguageError, check_language

        try:
            home = example_home(check_language(args.language))
        except LanguageError as e:
            raise CliError(str(e)) from None
        text = json.dumps(home.to_json(), indent=1, ensure_ascii=False) + "\n"
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
            print(f"wrote {len(home)} names to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    names = HomeNames.load(args.file)
    if args.broker:
        transport = MqttTransport(settings_from_args(args), check_device(args.device or ""))
    elif args.port:
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
