"""Where MicroPython's source comes from, pinned in one place.

The project builds MicroPython (its ports, ``py/dynruntime.mk`` for native modules) from a source
tree it never edits: ``$MICROPY_DIR`` if set, else ``../shared/micropython`` next to the
repository (the copy on the project's build machines; installed from a wheel: ``./shared`` or
``../shared`` of the current directory, ``resources.shared_dir``); a user with none is told the
one command that fetches the pinned commit.
"""

from __future__ import annotations

from pathlib import Path

from ..resources import ResourceError, shared_dir

# The upstream commit the project is built and tested against (v1.29.0-preview-731). Its .mpy
# format is 6.3: MPY_VERSION 6, MPY_SUB_VERSION 3 (py/persistentcode.h); native .mpy files built
# from it load only on firmware with the same pair.
COMMIT = "1c3c201149f37fe8d81246191b3127bb198d6306"
VERSION = "1.29.0-preview"
MPY_VERSION = (6, 3)
UPSTREAM = "https://github.com/micropython/micropython"


class MicroPythonError(RuntimeError):
    """MicroPython could not be found, built, run or talked to (the message says what to do)."""


def fetch_hint(dest: str = "micropython") -> str:
    """The commands that fetch the pinned MicroPython and point the project at it."""
    return (f"git clone {UPSTREAM} {dest} && git -C {dest} checkout {COMMIT} && "
            f"git -C {dest} submodule update --init lib/micropython-lib && export MICROPY_DIR=$PWD/{dest}")


def micropython_dir() -> Path:
    """The MicroPython source tree: ``$MICROPY_DIR``, else ``../shared/micropython`` (the rule of
    ``resources.shared_dir``). Raises MicroPythonError (with the fetch command) when there is none."""
    try:
        return shared_dir("micropython", "MICROPY_DIR", "py/dynruntime.mk", "MicroPython",
                          f"({COMMIT[:12]}) {fetch_hint()}")
    except ResourceError as e:
        raise MicroPythonError(str(e)) from None
