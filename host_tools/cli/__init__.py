"""The ``squeezeedge`` command: a thin layer over the library.

One module per command (or family of commands), each with ``add_parser(subparsers)``, whose
parsers point ``func`` at the module's ``run*`` functions. The library never imports this
package. Building the parser imports no TVM and no torch: `squeezeedge send --help` starts in a
fraction of a second (benchmarks/STARTUP.md).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from .. import __version__
from .common import CliError, resolve_model

# In the order `squeezeedge --help` lists them.
COMMANDS = ("classify", "make", "compile", "build", "flash", "emulate", "send", "mqtt", "bridge", "bench", "names", "model",
            "demo")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="squeezeedge",
        description="Train, quantize, compile and run a tiny int8 SqueezeBERT that understands home commands.",
    )
    p.add_argument("--version", action="version", version=f"squeezeedge {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add_parser(sub)
    return p


def interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM end every command with KeyboardInterrupt, so emulators, QEMU and brokers
    it started are stopped; also when we were started with SIGINT ignored (a background job of a
    shell without job control inherits that, and Python then never raises KeyboardInterrupt)."""
    def interrupt(_sig, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    interrupt_on_signals()
    args = build_parser().parse_args(argv)
    try:
        resolve_model(args)
        return args.func(args)
    except CliError as e:
        from ..broker import mask

        print(f"squeezeedge: error: {mask(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("squeezeedge: interrupted", file=sys.stderr)
        return 130
