"""Where MicroPython's source comes from, pinned in one place.

The project builds MicroPython (its ports, ``py/dynruntime.mk`` for native modules) from a source
tree it never edits: ``$MICROPY_DIR`` if set, else ``../shared/micropython`` next to the
repository (the copy on the project's build machines); a user with neither is told the one command
that fetches the pinned commit.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..emulator import ROOT

# The upstream commit the project is built and tested against (v1.29.0-preview-731). Its .mpy
# format is 6.3: MPY_VERSION 6, MPY_SUB_VERSION 3 (py/persistentcode.h); native .mpy files built
# from it load only on firmware with the same pair.
COMMIT = "1c3c201149f37fe8d81246191b3127bb198d6306"
VERSION = "1.29.0-preview"
MPY_VERSION = (6, 3)
UPSTREAM = "https://github.com/micropython/micropython"

DEFAULT_DIR = ROOT.parent / "shared" / "micropython"


class MicroPythonError(RuntimeError):
    """MicroPython could not be found, built, run or talked to (the message says what to do)."""


def fetch_hint(dest: str = "micropython") -> str:
    """The commands that fetch the pinned MicroPython and point the project at it."""
    return (f"git clone {UPSTREAM} {dest} && git -C {dest} checkout {COMMIT} && "
            f"git -C {dest} submodule update --init lib/micropython-lib && export MICROPY_DIR=$PWD/{dest}")


def _looks_like_micropython(path: Path) -> bool:
    return (path / "py" / "dynruntime.mk").is_file()


def micropython_dir() -> Path:
    """The MicroPython source tree: ``$MICROPY_DIR``, else ``<repo>/../shared/micropython``.
    Raises MicroPythonError (with the fetch command) when neither is a MicroPython tree."""
    env = os.environ.get("MICROPY_DIR")
    if env:
        path = Path(env).expanduser().resolve()
        if _looks_like_micropython(path):
            return path
        raise MicroPythonError(f"MICROPY_DIR={env} is not a MicroPython source tree (no py/dynruntime.mk there); "
                               f"fetch the pinned version ({COMMIT[:12]}): {fetch_hint()}")
    if _looks_like_micropython(DEFAULT_DIR):
        return DEFAULT_DIR.resolve()
    raise MicroPythonError(f"no MicroPython source tree: MICROPY_DIR is not set and {DEFAULT_DIR} does not exist; "
                           f"fetch the pinned version ({COMMIT[:12]}): {fetch_hint()}")
