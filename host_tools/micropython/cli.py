"""``squeezeedge build --micropython`` / ``--micropython-usermod``: a thin layer over natmod.
(``flash --micropython`` is in flash.py, beside the other flash paths, over deploy.py.)"""

from __future__ import annotations

import sys
from pathlib import Path

from .natmod import ARCHES, MANIFEST_FILE, MPY_FILE, WEIGHTS_FILE


def add_build_arguments(p) -> None:
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


def cmd_build_micropython(args) -> int:
    from .source import MicroPythonError

    say = lambda s: print(f"build: {s} ...", file=sys.stderr, flush=True)  # noqa: E731
    out = Path(args.output)
    try:
        if args.micropython_usermod:
            from .natmod import write_user_module

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
        from .natmod import build_native_module

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

