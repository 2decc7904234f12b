"""``squeezeedge build``: a board's firmware image (``--board``), or the model as a MicroPython
module (``--micropython``: a native .mpy and its weights; ``--micropython-usermod``: a
USER_C_MODULES folder for your own MicroPython firmware)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..boards import BOARDS, BoardError, build_board
from ..icount import icount_report
from ..emulator import EmulatorError
from ..micropython.natmod import (ARCHES, MANIFEST_FILE, MPY_FILE, WEIGHTS_FILE, build_native_module,
                                  write_user_module)
from ..micropython.source import MicroPythonError
from ..names import example_home
from .common import add_model_arguments


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("build", help="build the firmware image for a board",
                              description="Compile the model for the board's core, build the firmware with make "
                                          "and write firmware.elf/.bin/.hex; prints flash and RAM use against the "
                                          "chip's limits and fails if it does not fit.")
    p.add_argument("--board", default="stm32f405", choices=list(BOARDS), help="target board (default: stm32f405)")
    add_model_arguments(p, "a .semodel file or a model package directory")
    p.add_argument("-o", "--output", metavar="DIR", default=".", help="where to write the images (default: .)")
    p.add_argument("--icount", action="store_true",
                   help="also count executed instructions per inference on the release image (unicorn) and "
                        "estimate the time at the board's clock")
    add_micropython_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    if args.micropython or args.micropython_usermod:
        return run_micropython(args)
    say = lambda s: print(f"build: {s}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        fw = build_board(args.board, args.model, args.output, progress=say)
    except (BoardError, EmulatorError) as e:
        print(f"build: {e}", file=sys.stderr)
        return 2
    print(fw.size.report())
    print(f"wrote {fw.elf}, {fw.bin} (flash image for 0x{fw.size.board.flash_origin:08x}), {fw.hex}")
    if getattr(args, "icount", False):
        print(icount_report(fw.elf, args.board, names=example_home()))
    return 0


def add_micropython_arguments(p) -> None:
    g = p.add_argument_group("MicroPython", "build the model as a MicroPython module instead of a board firmware")
    g.add_argument("--micropython", action="store_true",
                   help=f"a native module for a stock MicroPython: DIR/{MPY_FILE} (code, copied into the heap at "
                        f"import) and DIR/{WEIGHTS_FILE} (the weights, read in place from ROMFS); needs --arch")
    g.add_argument("--micropython-usermod", action="store_true",
                   help="a USER_C_MODULES folder for your own MicroPython firmware build: DIR/squeezeedge/ with "
                        "micropython.mk (make ports: unix, stm32, ...) and micropython.cmake (esp32, rp2), weights "
                        "const in flash; --arch armv7emsp picks SMLAD kernels, default portable C")
    g.add_argument("--arch", choices=list(ARCHES),
                   help="the board's native code: " + "; ".join(f"{a}: {d}" for a, (_, _, d) in ARCHES.items()))


def run_micropython(args) -> int:
    say = lambda s: print(f"build: {s} ...", file=sys.stderr, flush=True)  # noqa: E731
    out = Path(args.output)
    try:
        if args.micropython_usermod:
            write_user_module(args.model, out, arch=args.arch, progress=say)
            print(f"wrote {out / 'squeezeedge'}/ (micropython.mk, micropython.cmake, sources) and "
                  f"{out / 'micropython.cmake'}")
            print(f"build your firmware with: make USER_C_MODULES={out.resolve()} (make ports) or "
                  f"USER_C_MODULES={(out / 'micropython.cmake').resolve()} (esp32, rp2)")
            return 0
        if not args.arch:
            print("build: --micropython needs --arch (" + ", ".join(ARCHES) + "): the native code of your board",
                  file=sys.stderr)
            return 2
        mod = build_native_module(args.model, args.arch, out, progress=say)
    except (MicroPythonError, OSError) as e:
        print(f"build: {e}", file=sys.stderr)
        return 2
    m = mod.manifest
    print(f"wrote {mod.mpy} ({m['mpy_bytes']:,} B: code and tables, copied into the heap at import; "
          f"{m.get('bss_bytes', 0):,} B of RAM: arena, tokens, the home's names)")
    print(f"wrote {mod.weights} ({m['weights_bytes']:,} B: the weights, read in place from /rom, else loaded "
          f"into the heap) and {mod.directory / MANIFEST_FILE}")
    print(f"deploy with: squeezeedge flash --micropython --port PORT {mod.directory}")
    return 0
