"""``squeezeedge build --micropython``: the firmware core + a TVM-compiled model as MicroPython modules.

Library first::

    from squeezeedge.micropython.natmod import build_native_module, write_user_module
    mod = build_native_module(model, arch="armv7emsp", out_dir="dist")  # squeezeedge.mpy + .bin
    write_user_module(model, "usermods")  # USER_C_MODULES=usermods for a firmware build

A *native module* (.mpy) is loaded by a stock MicroPython. Its code and const data are copied
into the GC heap at import, so the model is compiled with its constants in a separate weights
blob (``compiler/blob.py``), ``squeezeedge.bin``, that the module reads in place: from ROMFS it
stays in flash. A *user C module* is compiled into a MicroPython firmware; its weights are
``const`` arrays in flash. Both run ``firmware/micropython/modsqueezeedge.c`` over the same core.

Builds are cached under ``$SQUEEZEEDGE_CACHE`` keyed by the model, the arch and every source.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..emulator import model_digest
from ..models.model_file import IntModel
from ..resources import CACHE_DIR, CORE_DIR, FIRMWARE_LIB_DIR, MICROPYTHON_GLUE_DIR
from . import mpyfile
from .source import MicroPythonError, micropython_dir

GLUE_DIR = MICROPYTHON_GLUE_DIR
MODULE = "squeezeedge"
MPY_FILE = f"{MODULE}.mpy"
WEIGHTS_FILE = f"{MODULE}.bin"
MANIFEST_FILE = "manifest.json"

# MicroPython's native arch → (our compiler target, tensor intrinsics, what runs it)
ARCHES = {
    "x64": ("host", False, "the unix port on x86-64"),
    "armv6m": ("cortex-m4", False, "Cortex-M0/M0+ (RP2040: rp2 port)"),
    "armv7m": ("cortex-m4", False, "Cortex-M3 (and M4/M7 without DSP code)"),
    "armv7emsp": ("cortex-m4", True, "Cortex-M4F/M7 (STM32F4/F7: stm32 port); SMLAD kernels"),
    "rv32imc": ("rv32imc", False, "RISC-V RV32IMC (ESP32-C3/C6: esp32 port)"),
}
# The core's sources a module needs: all of them (handle() is the firmware's line protocol).
CORE_SOURCES = ("se_blob.c", "se_case.c", "se_classify.c", "se_decode.c", "se_json.c", "se_names.c",
                "se_protocol.c", "se_tokenizer.c", "se_utf8.c")
NATMOD_SOURCES = ("modsqueezeedge.c", "squeezeedge_natmod.py")
STRING_CMP = FIRMWARE_LIB_DIR / "string_cmp.c"  # memcmp, strlen, strcmp: the runtime has none
USERMOD_SOURCES = ("modsqueezeedge.c",)
PACKAGE_SOURCES = ("model.c", "model.h", "model_meta.c", "model_meta.h")


@dataclass
class NativeModule:
    """A built native module: ``mpy`` and ``weights`` files, described by ``manifest``."""

    directory: Path
    manifest: dict

    @property
    def mpy(self) -> Path:
        return self.directory / MPY_FILE

    @property
    def weights(self) -> Path:
        return self.directory / WEIGHTS_FILE


def load_model(model) -> IntModel:
    """An IntModel, a .semodel path, or None for the shipped model, as an IntModel."""
    if isinstance(model, IntModel):
        return model
    from ..models.engine import DEFAULT_MODEL

    return IntModel.load(model or DEFAULT_MODEL)


def _package(model: IntModel, target: str, weights: str, intrinsics: bool, out: Path, say) -> dict:
    """Compile ``model`` into ``out`` (model.c/.h, model_meta.c/.h, weights.bin for a blob)."""
    from ..compiler.meta import write_meta
    from ..compiler.package import compile_model

    say("compiling the model to C (TVM)")
    pkg = compile_model(model, target, intrinsics=intrinsics, weights=weights, measure=False)
    pkg.write(out)
    write_meta(model, out, blob_offsets=pkg.info["blob"]["meta_offsets"] if weights == "blob" else None)
    return pkg.info


def _sources_digest(*parts: str) -> str:
    h = hashlib.sha256("\0".join(parts).encode())
    for path in [*(CORE_DIR / f for f in CORE_SOURCES), *sorted(CORE_DIR.glob("*.h")), STRING_CMP,
                 *(GLUE_DIR / f for f in sorted(os.listdir(GLUE_DIR)))]:
        if path.is_file():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _stage(src_dir: Path, glue: tuple[str, ...]) -> None:
    """Core, glue and headers side by side in ``src_dir`` (the package is already there)."""
    for name in CORE_SOURCES:
        shutil.copyfile(CORE_DIR / name, src_dir / name)
    for h in CORE_DIR.glob("*.h"):
        shutil.copyfile(h, src_dir / h.name)
    for name in glue:
        shutil.copyfile(GLUE_DIR / name, src_dir / name)
    shutil.copyfile(STRING_CMP, src_dir / STRING_CMP.name)


def _ld_sizes(log: str) -> dict:
    sizes = {}
    for key in ("text", "bss"):
        m = re.search(rf"^{key} size:\s+(\d+)", log, re.M)
        if m:
            sizes[f"{key}_bytes"] = int(m.group(1))
    return sizes


def build_native_module(model=None, arch: str = "x64", out_dir=None, progress=None) -> NativeModule:
    """``squeezeedge.mpy`` + ``squeezeedge.bin`` (+ ``manifest.json``) for ``arch``, in ``out_dir``
    (default: the cache). ``model``: an IntModel, a .semodel path or None for the shipped model."""
    say = progress or (lambda s: None)
    if arch not in ARCHES:
        raise MicroPythonError(f"unknown arch {arch!r}; choose from {', '.join(ARCHES)}")
    target, intrinsics, _ = ARCHES[arch]
    m = load_model(model)
    from .ports import mpy_cross

    mpy_dir = micropython_dir()
    cross = mpy_cross(progress=say)
    key = _sources_digest(model_digest(m), arch, str(mpy_dir))
    cached = CACHE_DIR / f"natmod-{arch}-{key}"
    if not (cached / MANIFEST_FILE).is_file():
        _need_cross(arch)
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"natmod-{arch}-", dir=CACHE_DIR))
        try:
            info = _package(m, target, "blob", intrinsics, work, say)
            _stage(work, NATMOD_SOURCES)
            shutil.copyfile(GLUE_DIR / "natmod.mk", work / "Makefile")
            say(f"building {MPY_FILE} for {arch} (MicroPython's dynruntime.mk)")
            # PYTHON: mpy_ld.py needs pyelftools and ar, which are in this interpreter's environment
            r = subprocess.run(["make", f"MPY_DIR={mpy_dir}", f"ARCH={arch}", f"MPY_CROSS={cross}",
                                f"PYTHON={sys.executable}"], cwd=work, capture_output=True, text=True)
            if r.returncode != 0:
                tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
                raise MicroPythonError(f"building the native module for {arch} failed:\n{tail}")
            (work / "weights.bin").rename(work / WEIGHTS_FILE)
            mpy = (work / MPY_FILE).read_bytes()
            fmt = mpyfile.MpyFormat.from_header(mpy, MPY_FILE)
            manifest = {
                "format": "squeezeedge-micropython-native-module",
                "arch": arch,
                "runs_on": ARCHES[arch][2],
                "mpy_version": list(fmt.version_pair),
                "model_id": info["blob"]["model_id"],
                "mpy_bytes": len(mpy),
                "weights_bytes": (work / WEIGHTS_FILE).stat().st_size,
                "arena_bytes": info["arena_bytes"],
                **_ld_sizes(r.stdout),
                "files": {f: hashlib.sha256((work / f).read_bytes()).hexdigest() for f in (MPY_FILE, WEIGHTS_FILE)},
            }
            (work / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
            final = Path(tempfile.mkdtemp(prefix="final-", dir=CACHE_DIR))
            for f in (MPY_FILE, WEIGHTS_FILE, MANIFEST_FILE):
                shutil.copyfile(work / f, final / f)
            try:
                os.replace(final, cached)
            except OSError:  # another process built it first
                shutil.rmtree(final, ignore_errors=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if out_dir is None:
        return NativeModule(cached, json.loads((cached / MANIFEST_FILE).read_text()))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for f in (MPY_FILE, WEIGHTS_FILE, MANIFEST_FILE):
        shutil.copyfile(cached / f, out / f)
    return NativeModule(out, json.loads((out / MANIFEST_FILE).read_text()))


def _need_cross(arch: str) -> None:
    from ..compiler.targets import TARGETS

    cc = "gcc" if arch == "x64" else TARGETS[ARCHES[arch][0]]["cc"]
    if shutil.which(cc) is None:
        apt = {"arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
               "riscv64-unknown-elf-gcc": "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf"}.get(cc, "build-essential")
        raise MicroPythonError(f"building for {arch} needs {cc}: apt-get install {apt}")


USERMOD_MK = """\
# SqueezeEdge as a MicroPython user C module (make-based ports: unix, stm32, qemu, ...):
#   make USER_C_MODULES=<the folder above this one>
# Generated by `squeezeedge build --micropython-usermod`; the model's weights are const (flash).
SQUEEZEEDGE_MOD_DIR := $(USERMOD_DIR)
# modsqueezeedge.c holds the Python bindings and is scanned for qstrs; the rest is plain C.
SRC_USERMOD_C += $(SQUEEZEEDGE_MOD_DIR)/modsqueezeedge.c
SRC_USERMOD_LIB_C += $(addprefix $(SQUEEZEEDGE_MOD_DIR)/, {lib})
CFLAGS_USERMOD += -I$(SQUEEZEEDGE_MOD_DIR)
"""

USERMOD_CMAKE = """\
# SqueezeEdge as a MicroPython user C module (CMake-based ports: esp32, rp2):
#   make USER_C_MODULES=<the folder above this one>/micropython.cmake
# Generated by `squeezeedge build --micropython-usermod`; the model's weights are const (flash).
add_library(usermod_squeezeedge INTERFACE)
target_sources(usermod_squeezeedge INTERFACE
    ${{CMAKE_CURRENT_LIST_DIR}}/modsqueezeedge.c
{sources}
)
target_include_directories(usermod_squeezeedge INTERFACE ${{CMAKE_CURRENT_LIST_DIR}})
target_link_libraries(usermod INTERFACE usermod_squeezeedge)
"""

# A port compiles user modules with its own flags (-Os on most boards), and CFLAGS_USERMOD would
# change them for the whole firmware: the kernels get -O2 (their loops unrolled, as in the C
# firmware and the .mpy: 1.25-2.84 M -> 0.75-1.73 M instructions per command on MPS2_AN500)
# through this wrapper.
MODEL_O2_C = """\
/* The generated model at -O2 whatever the port's flags (squeezeedge build --micropython-usermod). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2")
#endif
#include "model.c"
"""

USERMOD_TOP_CMAKE = """\
# All user C modules of this folder (the esp32/rp2 ports take this file as USER_C_MODULES).
include(${CMAKE_CURRENT_LIST_DIR}/squeezeedge/micropython.cmake)
"""


def write_user_module(model=None, out_dir="usermods", arch: str | None = None, progress=None) -> Path:
    """A USER_C_MODULES folder: ``out_dir/squeezeedge/`` (micropython.mk, micropython.cmake, the
    core, the glue and the compiled model with const weights) and ``out_dir/micropython.cmake``.
    ``arch`` picks the compiler's kernels as for the native module (armv7emsp: SMLAD); None:
    portable C, which builds for every port. Returns ``out_dir``."""
    if arch is not None and arch not in ARCHES:
        raise MicroPythonError(f"unknown arch {arch!r}; choose from {', '.join(ARCHES)}")
    target, intrinsics, _ = ARCHES[arch] if arch else ("host", False, "")
    say = progress or (lambda s: None)
    m = load_model(model)
    out = Path(out_dir)
    mod = out / MODULE
    if mod.exists():  # replace only what this function wrote before
        mk = mod / "micropython.mk"
        if not (mk.is_file() and "squeezeedge build --micropython-usermod" in mk.read_text(errors="replace")):
            raise MicroPythonError(f"{mod} exists and was not written by squeezeedge: choose another -o folder")
        shutil.rmtree(mod)
    mod.mkdir(parents=True)
    _package(m, target, "const", intrinsics, mod, say)
    _stage(mod, USERMOD_SOURCES)
    (mod / "model_o2.c").write_text(MODEL_O2_C)
    lib = [*CORE_SOURCES, "model_o2.c", "model_meta.c"]
    (mod / "micropython.mk").write_text(USERMOD_MK.format(lib=" ".join(lib)))
    (mod / "micropython.cmake").write_text(USERMOD_CMAKE.format(
        sources="\n".join(f"    ${{CMAKE_CURRENT_LIST_DIR}}/{f}" for f in lib)))
    (out / "micropython.cmake").write_text(USERMOD_TOP_CMAKE)
    return out
