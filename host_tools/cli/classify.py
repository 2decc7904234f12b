"""``squeezeedge classify``: sentences in, one JSON answer per line out, from any engine."""

from __future__ import annotations

import sys

from ..broker import add_broker_arguments
from ..classify import classify_line, input_lines, write_json
from ..engines import ENGINES
from .common import add_model_arguments, broker_settings, load_names, open_engine


def add_parser(sub) -> None:
    c = sub.add_parser("classify", help="classify text, one JSON object per line",
                       description="Classify commands. With no TEXT, reads UTF-8 lines from stdin. Writes one "
                                   "JSON object per input line, in order: {text, intent, confidence, slots}, or "
                                   "{text, error} for a line that cannot be processed.")
    c.add_argument("text", nargs="*", metavar="TEXT", help="commands to classify (default: lines of stdin)")
    c.add_argument("--engine", default="reference", choices=ENGINES,
                   help="reference: the numpy integer interpreter; c: the TVM-generated C compiled for this "
                        "host; emulator: the firmware's host emulator, started for this run; device: whatever "
                        "answers at --port; micropython: MicroPython's unix port importing the native module "
                        "squeezeedge.mpy (built on demand from ../shared/micropython or $MICROPY_DIR, cached) "
                        "(default: reference)")
    c.add_argument("--port", metavar="URL", help="for --engine device: /dev/ttyUSB0, a pty path or socket://host:port")
    c.add_argument("--device", metavar="ID", help="for --engine device over MQTT: the device's id")
    add_broker_arguments(c, "for --engine device over MQTT: mqtt://host[:port] or mqtts://host[:port] (TLS)")
    c.add_argument("--arch", choices=["x64", "armv7m", "armv7emsp", "rv32imc"],
                   help="for --engine micropython: x64, the unix port on this machine (default); armv7m, armv7emsp "
                        "or rv32imc, the native module for that ISA on a MicroPython board in QEMU (MPS2_AN385, "
                        "MPS2_AN500, VIRT_RV32), driven by mpremote")
    add_model_arguments(c)
    c.add_argument("--names", metavar="FILE", help="the home's names (JSON, see `squeezeedge names`): names listed "
                                                  "there are recognised as areas, floors and devices; a device or "
                                                  "emulator is sent them first (default: none)")
    c.set_defaults(func=run)


def run(args) -> int:
    engine = open_engine(args.engine, args.model, port=args.port, broker=broker_settings(args), device=args.device,
                         names=load_names(args.names), arch=args.arch)
    sys.stdout.reconfigure(encoding="utf-8")
    lines = (t.encode("utf-8", errors="surrogateescape") for t in args.text) if args.text \
        else input_lines(sys.stdin.buffer)
    try:
        for line in lines:
            write_json(classify_line(engine, line), sys.stdout)
    finally:
        if hasattr(engine, "close"):
            engine.close()  # stops an emulator the engine started
    return 0
