"""Where SqueezeEdge's files are, in an editable checkout and in an installed wheel alike.

The one place that knows: the firmware sources (``squeezeedge.firmware`` = the repository's
``firmware/``), the shipped models and their data (``squeezeedge.models``), the C build cache, the
default folder of benchmark reports, and the rule that finds the third-party sources
(``../shared``) the MicroPython builds use. Everything else imports its answers from here.
"""

from __future__ import annotations

import os
import tempfile
from importlib.resources import files
from pathlib import Path


class ResourceError(RuntimeError):
    """A file the package ships or needs is not where it should be (the message says what to do)."""


def package_dir(package: str) -> Path:
    """``package``'s folder on disk. make and the compilers need real paths: a wheel installed by pip
    is unpacked and an editable checkout is the repository itself, so ``files()`` is a real folder;
    anything else (a zipped install) cannot build firmware, and says so."""
    found = files(package)
    if not isinstance(found, Path) or not found.is_dir():
        raise ResourceError(f"{package} is not a folder on disk ({found!r}): the firmware builds need real "
                            "files; install squeezeedge with pip (pip install squeezeedge-*.whl or pip install .)")
    return found


FIRMWARE_DIR = package_dir("squeezeedge.firmware")
CORE_DIR = FIRMWARE_DIR / "core"
PORTS_DIR = FIRMWARE_DIR / "ports"
FIRMWARE_LIB_DIR = FIRMWARE_DIR / "lib"
# Included by the ports' Makefiles: a build's cache key must cover them too.
SHARED_MAKEFILES = (PORTS_DIR / "bare_metal.mk", PORTS_DIR / "model_dir.mk")
MICROPYTHON_GLUE_DIR = FIRMWARE_DIR / "micropython"   # the native module's C glue and natmod.mk

MODELS_DIR = package_dir("squeezeedge.models")
PRETRAINED_DIR = MODELS_DIR / "pretrained"
DEFAULT_MODEL = PRETRAINED_DIR / "default.semodel"
MODEL_DATA_DIR = MODELS_DIR / "data"                 # out-of-scope lists, extra templates, paraphrases

MICROPYTHON_TOOLS_DIR = package_dir("squeezeedge.micropython")  # C snippets the port builds splice in

# Every build writes here (never into the package: site-packages may be read-only).
CACHE_DIR = Path(os.environ.get("SQUEEZEEDGE_CACHE", Path(tempfile.gettempdir()) / "squeezeedge-c-cache"))


def _checkout_root() -> Path | None:
    """The repository when running from an editable checkout (firmware/ sits at its top, next to
    pyproject.toml); None in an installed wheel (firmware/ is inside the package)."""
    root = FIRMWARE_DIR.parent
    return root if (root / "pyproject.toml").is_file() and (root / "host_tools").is_dir() else None


CHECKOUT = _checkout_root()

# Benchmark reports: the checkout's benchmarks/ (they are committed there); installed, a
# benchmarks/ folder of the current directory (relative, so it is the cwd of the run).
BENCH_DIR = CHECKOUT / "benchmarks" if CHECKOUT else Path("benchmarks")
BENCH_DIR_RULE = "the checkout's benchmarks/" if CHECKOUT else "benchmarks/ of the current directory"


def shared_candidates(name: str) -> list[Path]:
    """Where third-party sources ``name`` (e.g. micropython) are looked for when their variable is
    unset, in order: ``../shared/<name>`` next to the checkout (the project's build machines);
    installed, ``./shared/<name>`` then ``../shared/<name>`` of the current directory."""
    if CHECKOUT:
        return [CHECKOUT.parent / "shared" / name]
    return [Path.cwd() / "shared" / name, Path.cwd().parent / "shared" / name]


def shared_dir(name: str, env_var: str, marker: str, label: str, fetch_hint: str) -> Path:
    """The third-party source tree ``name`` (``label`` in messages): ``$env_var`` if set, else the
    first of ``shared_candidates(name)``; a tree is a folder holding ``marker``. Raises
    ResourceError naming the places looked at and ``fetch_hint`` (how to get the pinned version)."""
    env = os.environ.get(env_var)
    if env:
        path = Path(env).expanduser().resolve()
        if (path / marker).is_file():
            return path
        raise ResourceError(f"{env_var}={env} is not a {label} source tree (no {marker} there); "
                            f"fetch the pinned version: {fetch_hint}")
    places = shared_candidates(name)
    for path in places:
        if (path / marker).is_file():
            return path.resolve()
    raise ResourceError(f"no {label} source tree: {env_var} is not set and {' nor '.join(map(str, places))} "
                        f"holds one; fetch the pinned version: {fetch_hint}")
