"""Build MicroPython's ports from the pinned source tree, cached, and run its qemu boards.

MicroPython builds in its own tree (``mpy-cross/build``, ``ports/*/build-*``), and the source tree
(``source.micropython_dir()``) is read-only. So the builds run in a scratch tree under
``CACHE_DIR/micropython-<commit[:12]>/src``: ``mpy-cross``, ``ports/unix`` and ``ports/qemu`` are
copied (they are small and the build writes into them), while ``py extmod shared lib tools`` are
symlinks (measured: the builds only read them). Each build goes to its own ``BUILD=`` directory
named by a hash of its inputs (board, flags, workarounds, the user C module's files), and the
product is then copied to ``out/``, so a second call returns at once. An ``fcntl`` lock on the
cache dir keeps two processes (e.g. parallel pytest runs) from building into one tree at once.

Library first::

    from squeezeedge.micropython import ports
    exe = ports.unix()                                   # the unix port's `micropython`
    subprocess.run([exe, "-c", "import umqtt.simple"], env=ports.unix_env())
    elf = ports.qemu("MPS2_AN500")
    img = ports.romfs_image({"w.bin": Path("w.bin")}, Path("w.romfs"))
    with ports.MicroPythonQemu("MPS2_AN500", elf, img) as board:
        print(board.url)                                 # socket://127.0.0.1:PORT for mpremote
    elf = ports.qemu("MPS2_AN500", filesystem=True)      # + a LittleFS at /flash: deploy works there
    elf = ports.qemu("MPS2_AN500", filesystem=True, writable_romfs=True)  # + ROMFS that mpremote can deploy to
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..boards import QemuBoard
from ..resources import CACHE_DIR, MICROPYTHON_TOOLS_DIR
from .source import COMMIT, MicroPythonError, micropython_dir

# Parts of the source tree the builds only read (symlinked) and the ones they write into (copied).
LINKED = ("py", "extmod", "shared", "lib", "tools", "examples", "LICENSE")
COPIED = ("mpy-cross", "ports/unix", "ports/qemu")
JOBS = "-j2"

UNIX_FLAGS = ("MICROPY_PY_BTREE=0", "MICROPY_PY_SSL=0")
# micropython-lib packages the unix port finds through MICROPYPATH (umqtt for the example app).
MICROPYPATH_LIBS = ("micropython/umqtt.simple", "micropython/umqtt.robust")


@dataclass(frozen=True)
class QemuPortBoard:
    """One board of MicroPython's qemu port: what builds it and what runs it."""
    name: str
    qemu: str                  # qemu-system-* binary
    machine: str               # -machine
    cross: str                 # the cross compiler's gcc (for the "install it" message)
    apt: str                   # Debian packages of the cross compiler
    qemu_apt: str              # Debian package of the QEMU binary
    make_vars: tuple[str, ...] = ()
    qemu_args: tuple[str, ...] = ()
    zcmp_off: bool = False     # build with MICROPY_EMIT_RV32_ZCMP (0): QEMU 7.2 traps on Zcmp


_ARM = dict(qemu="qemu-system-arm", cross="arm-none-eabi-gcc", apt="gcc-arm-none-eabi libnewlib-arm-none-eabi",
            qemu_apt="qemu-system-arm")
_RV32_LIBGCC = "rv32imac/ilp32/libgcc.a"
QEMU_BOARDS = {
    "MPS2_AN385": QemuPortBoard("MPS2_AN385", machine="mps2-an385", qemu_args=("-semihosting",), **_ARM),
    "MPS2_AN500": QemuPortBoard("MPS2_AN500", machine="mps2-an500", qemu_args=("-semihosting",), **_ARM),
    # The port's Makefile runs it with `-cpu rv32,zcd=off,zcmp=on`, which QEMU 7.2 does not know:
    # the default virt CPU is used, and the native emitter's Zcmp is switched off (zcmp_off).
    "VIRT_RV32": QemuPortBoard("VIRT_RV32", qemu="qemu-system-riscv32", machine="virt",
                               cross="riscv64-unknown-elf-gcc",
                               apt="gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf",
                               qemu_apt="qemu-system-misc", qemu_args=("-bios", "none", "-semihosting"),
                               zcmp_off=True),
}


# ---- the scratch tree ----

def cache_root() -> Path:
    """``CACHE_DIR/micropython-<commit[:12]>``: the scratch tree, build dirs and products."""
    return CACHE_DIR / f"micropython-{COMMIT[:12]}"


@contextmanager
def _locked():
    """Serialises builds across processes (pytest workers, a CLI next to a test run)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _copy_ignore(_dir, names):
    return [n for n in names if n.startswith("build") or n == "__pycache__"]


def scratch_tree() -> Path:
    """The writable scratch copy of the source tree (made once per source dir; call under the lock).
    The VIRT_RV32 workaround (``MICROPY_EMIT_RV32_ZCMP (0)``) is applied to its ports/qemu copy:
    the option only affects the RV32 native emitter, so the Arm boards are unchanged by it."""
    src = micropython_dir()
    tree = cache_root() / "src"
    stamp = tree / ".source"
    if stamp.is_file() and stamp.read_text() == str(src):
        return tree
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    for name in LINKED:
        if (src / name).exists():
            (tree / name).symlink_to(src / name)
    for name in COPIED:
        shutil.copytree(src / name, tree / name, ignore=_copy_ignore, symlinks=True)
        for p in [tree / name, *(tree / name).rglob("*")]:  # the source is read-only: make the copy writable
            p.chmod(p.stat().st_mode | 0o200)
    cfg = tree / "ports/qemu/mpconfigport.h"
    text = cfg.read_text()
    patched = re.sub(r"#define MICROPY_EMIT_RV32_ZCMP\s+\(1\)", "#define MICROPY_EMIT_RV32_ZCMP (0)", text)
    if patched == text and "MICROPY_EMIT_RV32_ZCMP" in text:
        raise MicroPythonError(f"{src}/ports/qemu/mpconfigport.h: cannot switch MICROPY_EMIT_RV32_ZCMP off "
                               "(the line changed upstream); update ports.py")
    cfg.write_text(patched)
    stamp.write_text(str(src))
    return tree


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _dir_digest(folder: Path) -> str:
    """A hash of every file (name and bytes) under ``folder``: the user C module's cache key."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MicroPythonError(f"USER_C_MODULES: {folder} is not a directory")
    h = hashlib.sha256(str(folder.resolve()).encode())
    for p in sorted(folder.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(folder)).encode() + b"\0")
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _need(tool: str, apt: str, what: str) -> None:
    if shutil.which(tool) is None:
        raise MicroPythonError(f"{what} needs {tool}, which is not installed: apt-get install {apt}")


def _make(args: list[str], what: str, say) -> None:
    say(what)
    r = subprocess.run(["make", JOBS, *args], capture_output=True, text=True)
    if r.returncode != 0:
        log = (r.stdout + r.stderr)[-4000:]
        raise MicroPythonError(f"{what.split(' (')[0]} failed (make {' '.join(args)}):\n{log}")


def _fresh(build_dir: Path) -> Path:
    """``build_dir``, emptied. Builds run only when ``out/`` lacks their product, so anything
    already there is what a failed or interrupted build left (half-written objects, a config of
    another run): make would link it, and the cache would stay broken until deleted by hand."""
    shutil.rmtree(build_dir, ignore_errors=True)
    return build_dir


def _product(key: str, name: str, build, say) -> Path:
    """``out/<key>/<name>``, made by ``build(scratch_tree, say)`` under the lock when missing."""
    out = cache_root() / "out" / key / name
    if out.is_file():
        return out
    with _locked():
        if out.is_file():  # built by another process while we waited
            return out
        tree = scratch_tree()
        built = build(tree, say)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        shutil.copy2(built, tmp)
        os.replace(tmp, out)
    return out


# ---- products ----

# The ports' makes get the cached mpy-cross by path (MICROPY_MPYCROSS). Left to themselves they
# look for mpy-cross/build/mpy-cross in the scratch tree and, when a fresh tree lacks it, build it
# with a sub-make that inherits the port's BUILD= and mixes mpy-cross's objects into the port's
# (seen: a unix build linking a gc.o compiled without threads).
def mpy_cross(progress=None) -> Path:
    """The ``mpy-cross`` binary of the pinned MicroPython (compiles .py to .mpy 6.3)."""
    say = progress or (lambda s: None)
    _need("make", "build-essential", "building mpy-cross")
    _need("cc", "build-essential", "building mpy-cross")

    def build(tree: Path, say) -> Path:
        _make(["-C", str(tree / "mpy-cross")], "building MicroPython's mpy-cross (about 30 s, once)", say)
        return tree / "mpy-cross/build/mpy-cross"

    return _product(_digest("mpy-cross", str(micropython_dir())), "mpy-cross", build, say)


def unix(user_c_modules: Path | None = None, progress=None) -> Path:
    """The unix port's ``micropython`` (``MICROPY_PY_BTREE=0 MICROPY_PY_SSL=0``: their submodules
    are not in the tree), with ``USER_C_MODULES`` when given (cached per hash of that folder's
    files). Run it with ``env=unix_env()`` so micropython-lib's umqtt is importable."""
    say = progress or (lambda s: None)
    _need("cc", "build-essential", "building the MicroPython unix port")
    _need("pkg-config", "pkg-config", "building the MicroPython unix port")
    if subprocess.run(["pkg-config", "--exists", "libffi"]).returncode != 0:
        raise MicroPythonError("building the MicroPython unix port needs libffi's headers: apt-get install libffi-dev")
    flags = list(UNIX_FLAGS)
    if user_c_modules is not None:
        flags.append(f"USER_C_MODULES={Path(user_c_modules).resolve()}")
    key = _digest("unix", str(micropython_dir()), flags, _dir_digest(user_c_modules) if user_c_modules else None)
    # the port's frozen modules need it: built first (outside this build's lock), own message
    cross = f"MICROPY_MPYCROSS={mpy_cross(say)}"

    def build(tree: Path, say) -> Path:
        build_dir = _fresh(tree / "ports/unix" / f"build-{key}")
        with_mod = " with the user C module" if user_c_modules else ""
        _make(["-C", str(tree / "ports/unix"), f"BUILD={build_dir}", cross, *flags],
              f"building the MicroPython unix port{with_mod} (about a minute, once)", say)
        return build_dir / "micropython"

    return _product(key, "micropython", build, say)


def unix_env(base: dict | None = None, first=()) -> dict:
    """The environment for the unix ``micropython``: ``MICROPYPATH`` = the folders ``first`` (e.g.
    where squeezeedge.mpy is) + its default path (``.frozen``, ``~/.micropython/lib``) +
    micropython-lib's umqtt.simple/robust from the source tree."""
    env = dict(os.environ if base is None else base)
    lib = micropython_dir() / "lib" / "micropython-lib"
    paths = [*(str(p) for p in first), ".frozen", str(Path.home() / ".micropython" / "lib"),
             *(str(lib / p) for p in MICROPYPATH_LIBS)]
    env["MICROPYPATH"] = os.pathsep.join(paths)
    return env


# ---- the filesystem boards (qemu(..., filesystem=True)) ----

# Where each board's RAM block device lives: RAM the firmware does not use (checked against the
# built ELF by _check_fs_region). MPS2 (mcu/arm/mps2.ld): 4 MB of RAM at 0x0 holds .text, .data,
# .bss (with the 1 MB heap: it ends near 1.4 MB) and the stack at the top (_estack = 4 MB); the
# block device takes 0x200000..0x3C0000, 256 KB below the top. VIRT_RV32 (mcu/rv32/virt.ld): the
# ELF and ROMFS end at 0x80A10000, QEMU's virt machine has 128 MB of RAM from 0x80000000; the
# block device takes 0x80C00000..0x80DC0000.
FS_REGIONS = {
    "MPS2_AN500": (0x00200000, 0x001C0000),
    "VIRT_RV32": (0x80C00000, 0x001C0000),
}
FS_BLOCK_SIZE = 4096
FS_HEAP_SIZE = 1048576
FS_MOUNT = "/flash"
# Below a 4 MB RAM's top: the stack (MICROPY_STACK_SIZE is 10 KB; kept 64 KB clear).
_STACK_MARGIN = 0x10000

# Frozen as `_boot.py` and run by the port at every (soft) reset, from mp_init's
# MICROPY_PORT_INIT_FUNC hook (the qemu port's main.c runs no boot script of its own).
FS_BOOT = """\
# SqueezeEdge's qemu filesystem board: a LittleFS on RAM at a fixed address outside the GC heap,
# mounted at {mount}. RAM survives a soft reset, so the files do too (like flash); a cold boot
# (a new QEMU) starts with zeroed RAM: the mount fails and the filesystem is made afresh.
import os, sys, uctypes, vfs


class _SeRamBlocks:
    def __init__(self, addr, size, block):
        self.mem = memoryview(uctypes.bytearray_at(addr, size))
        self.block = block
        self.count = size // block

    def readblocks(self, n, buf, off=0):
        a = n * self.block + off
        buf[:] = self.mem[a:a + len(buf)]

    def writeblocks(self, n, buf, off=None):
        if off is None:  # the simple interface: whole blocks, erase included
            off = 0
        a = n * self.block + off
        self.mem[a:a + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.count
        if op == 5:  # block size
            return self.block
        return 0     # init, deinit, sync, erase (RAM needs no erase)


_se_bd = _SeRamBlocks({addr}, {size}, {block})
try:
    vfs.mount(vfs.VfsLfs2(_se_bd), {mount!r})
except OSError:
    vfs.VfsLfs2.mkfs(_se_bd)
    vfs.mount(vfs.VfsLfs2(_se_bd), {mount!r})
os.chdir({mount!r})
sys.path.append({mount!r})
sys.path.append({mount!r} + '/lib')
del _se_bd, _SeRamBlocks, os, sys, uctypes, vfs
"""

# Force-included into every C file of the build: the hook that runs the frozen `_boot.py`.
# LittleFS stamps files with mp_hal_time_ns(), which the qemu port lacks (it has no clock): 0
# (files show the epoch).
FS_BOOT_HEADER = """\
/* SqueezeEdge's qemu filesystem board: run the frozen _boot.py at the end of mp_init(). */
#include <stdbool.h>
#include <stdint.h>
int pyexec_frozen_module(const char *name, bool allow_keyboard_interrupt);
#define MICROPY_PORT_INIT_FUNC pyexec_frozen_module("_boot.py", false)
#define mp_hal_time_ns() ((uint64_t)0)
"""


def _fs_boot_files(board: str) -> tuple[Path, Path, str]:
    """(manifest.py, se_fsboot.h, the boot script) for ``board``'s filesystem build, written under
    the cache (the source tree is read-only), in a directory named by their content."""
    addr, size = FS_REGIONS[board]
    boot = FS_BOOT.format(addr=hex(addr), size=hex(size), block=FS_BLOCK_SIZE, mount=FS_MOUNT)
    d = cache_root() / "fsboot" / _digest(boot, FS_BOOT_HEADER)
    d.mkdir(parents=True, exist_ok=True)
    (d / "_boot.py").write_text(boot)
    (d / "manifest.py").write_text(f"freeze({str(d)!r}, '_boot.py')\n")
    (d / "se_fsboot.h").write_text(FS_BOOT_HEADER)
    return d / "manifest.py", d / "se_fsboot.h", boot


def _check_fs_region(elf: Path, board: str, region: tuple[int, int] | None = None) -> None:
    """MicroPythonError when the ELF's loaded sections (or the stack below ``_estack``) reach into
    the block device's RAM (``region``, default FS_REGIONS[board]): the filesystem would overwrite
    the firmware or the heap."""
    from elftools.elf.elffile import ELFFile

    addr, size = region or FS_REGIONS[board]
    with open(elf, "rb") as f:
        e = ELFFile(f)
        spans = [(s["sh_addr"], s["sh_addr"] + s["sh_size"], s.name) for s in e.iter_sections()
                 if s["sh_flags"] & 2 and s["sh_size"]]  # SHF_ALLOC
        symtab = e.get_section_by_name(".symtab")
        estack = symtab.get_symbol_by_name("_estack") if symtab else None
    if estack:
        top = estack[0]["st_value"]
        spans.append((top - _STACK_MARGIN, top, "the stack"))
    for lo, hi, name in spans:
        if lo < addr + size and addr < hi:
            raise MicroPythonError(f"{board}'s filesystem RAM 0x{addr:08x}..0x{addr + size:08x} overlaps {name} "
                                   f"(0x{lo:08x}..0x{hi:08x}) in {elf}: move FS_REGIONS[{board!r}] in ports.py")


# ---- the writable-ROMFS boards (qemu(..., writable_romfs=True)) ----

# The boards whose ROMFS partition 0 is plain RAM under QEMU (MPS2_AN500: 0x60C00000, 4 MB;
# VIRT_RV32: 0x80610000, 4 MB, inside the virt machine's RAM), so that writes to it stick.
WRITABLE_ROMFS_BOARDS = ("MPS2_AN500", "VIRT_RV32")
ROMFS_ERASE_SIZE = 4096    # what GET_MIN_PREPARE reports: an emulated flash sector
ROMFS_MIN_WRITE = 4        # what WRITE_PREPARE returns: the smallest write (and its alignment)
# The port directory the writable-ROMFS builds run in: a copy of the scratch tree's ports/qemu
# next to it (same depth, so TOP=../.. holds) with vfs_rom_ioctl.c replaced; ports/qemu itself
# stays as upstream wrote it, for the other builds.
_WROMFS_PORT = "qemu-se-wromfs-"

# Written over ports/qemu/vfs_rom_ioctl.c in that copy (never in the source tree).
# The qemu port's vfs_rom_ioctl.c with writes (a file beside this module: the C stays C).
WRITABLE_ROMFS_IOCTL_C = (MICROPYTHON_TOOLS_DIR / "qemu_vfs_rom_ioctl.c").read_text().replace("@ERASE@", str(ROMFS_ERASE_SIZE)).replace("@MIN_WRITE@", str(ROMFS_MIN_WRITE))


def _writable_romfs_port(tree: Path) -> Path:
    """The scratch tree's copy of ports/qemu whose vfs_rom_ioctl.c is WRITABLE_ROMFS_IOCTL_C (made
    once per content of that file; call under the lock). The copy is taken from the scratch
    ports/qemu, so the VIRT_RV32 workaround comes with it."""
    port = tree / "ports" / (_WROMFS_PORT + _digest(WRITABLE_ROMFS_IOCTL_C))
    stamp = port / ".se-writable-romfs"
    if stamp.is_file():
        return port
    if port.exists():
        shutil.rmtree(port)
    upstream = tree / "ports/qemu/vfs_rom_ioctl.c"
    if "MP_VFS_ROM_IOCTL_GET_SEGMENT" not in upstream.read_text():
        raise MicroPythonError(f"{upstream} no longer looks like the ROMFS ioctl this replacement was written "
                               "against; update WRITABLE_ROMFS_IOCTL_C in ports.py")
    shutil.copytree(tree / "ports/qemu", port, ignore=_copy_ignore, symlinks=True)
    (port / "vfs_rom_ioctl.c").write_text(WRITABLE_ROMFS_IOCTL_C)
    stamp.write_text(WRITABLE_ROMFS_IOCTL_C)
    return port


def _board(board: str) -> QemuPortBoard:
    if board not in QEMU_BOARDS:
        raise MicroPythonError(f"unknown MicroPython qemu board {board!r}; available: {', '.join(QEMU_BOARDS)}")
    return QEMU_BOARDS[board]


def _rv32_libgcc(cross: str) -> str:
    """Debian's riscv64-unknown-elf-gcc hands the rv64 libgcc to -print-libgcc-file-name; the
    rv32imac/ilp32 multilib is next to it."""
    base = subprocess.run([cross, "-print-libgcc-file-name"], capture_output=True, text=True).stdout.strip()
    lib = Path(base).parent / _RV32_LIBGCC
    if not lib.is_file():
        raise MicroPythonError(f"no {_RV32_LIBGCC} next to {base}: the VIRT_RV32 build needs the rv32 multilib of "
                               "apt-get install gcc-riscv64-unknown-elf")
    return str(lib)


def qemu(board: str, user_c_modules: Path | None = None, progress=None, filesystem: bool = False,
         writable_romfs: bool = False) -> Path:
    """``firmware.elf`` of the qemu port for ``board`` (MPS2_AN385: Cortex-M3, armv7m code;
    MPS2_AN500: Cortex-M7, armv7emdp, which also runs armv7emsp/armv7m/armv6m .mpy files;
    VIRT_RV32: rv32imc), with ``USER_C_MODULES`` when given.

    ``filesystem=True``: a board with a real, writable filesystem, for deploy's tests and for
    anyone who wants to try ``squeezeedge flash --micropython`` without hardware. The stock qemu
    port has none (only a read-only ROMFS). This build has a 1 MB GC heap
    (``MICROPY_HEAP_SIZE=1048576``, room to read a weights blob from a file), LittleFS v2
    (``MICROPY_VFS_LFS2=1``) and, instead of the port's frozen test modules, a frozen ``_boot.py``
    (FS_BOOT) run at every reset: it mounts a LittleFS at ``/flash`` on a RAM block device at a
    fixed address outside the heap and the firmware (FS_REGIONS, checked against the ELF), formats
    it on the first boot, ``os.chdir('/flash')`` and puts ``/flash`` and ``/flash/lib`` on
    ``sys.path``. RAM survives mpremote's soft resets, so the files stay like on flash for as long
    as QEMU runs; a new QEMU starts empty.

    ``writable_romfs=True`` (MPS2_AN500, VIRT_RV32; combinable with ``filesystem``): a board whose
    ROMFS can be written, so that the path by which ``squeezeedge flash --micropython`` puts the
    weights into a real board's ROMFS (``vfs.rom_ioctl`` writes, driven by mpremote's own ``romfs
    deploy`` code) runs in tests without hardware. The stock qemu port's ``vfs.rom_ioctl`` only
    answers GET_NUMBER_OF_SEGMENTS and GET_SEGMENT (-EINVAL for the rest), although its ROMFS
    partitions are plain RAM under QEMU. This build compiles, in a copy of the scratch tree's
    ports/qemu (never in the source tree), WRITABLE_ROMFS_IOCTL_C instead of the port's
    vfs_rom_ioctl.c: GET_MIN_PREPARE reports 4 KB erase blocks, WRITE_PREPARE fills the blocks with
    0xff and returns 4 (the minimum write), WRITE copies into erased blocks only, WRITE_COMPLETE
    ends the session, as ports/stm32 does on flash. Written ROMFS survives soft resets (and is
    mounted at ``/rom`` by each), not a new QEMU. Cached per content of that file."""
    say = progress or (lambda s: None)
    b = _board(board)
    if filesystem and board not in FS_REGIONS:
        raise MicroPythonError(f"no filesystem variant of the qemu board {board}; available: {', '.join(FS_REGIONS)}")
    if writable_romfs and board not in WRITABLE_ROMFS_BOARDS:
        raise MicroPythonError(f"no writable-ROMFS variant of the qemu board {board}; available: "
                               f"{', '.join(WRITABLE_ROMFS_BOARDS)}")
    _need(b.cross, b.apt, f"building MicroPython for {board}")
    flags = [f"BOARD={board}"]
    if b.name == "VIRT_RV32":
        flags.append(f"LIBS={_rv32_libgcc(b.cross)}")
    if user_c_modules is not None:
        flags.append(f"USER_C_MODULES={Path(user_c_modules).resolve()}")
    fs_key = None
    if filesystem:
        manifest, header, boot = _fs_boot_files(board)
        flags += [f"MICROPY_HEAP_SIZE={FS_HEAP_SIZE}", "MICROPY_VFS_LFS2=1", f"FROZEN_MANIFEST={manifest}",
                  f"CFLAGS_EXTRA=-include {header}"]
        fs_key = (boot, FS_BOOT_HEADER)
    wromfs_key = ("writable_romfs", WRITABLE_ROMFS_IOCTL_C) if writable_romfs else ()
    key = _digest("qemu", str(micropython_dir()), flags, b.zcmp_off,
                  _dir_digest(user_c_modules) if user_c_modules else None, *(fs_key or ()), *wromfs_key)
    # for the frozen modules; built first, outside this build's lock (flock is not re-entrant)
    cross = f"MICROPY_MPYCROSS={mpy_cross(say)}"

    def build(tree: Path, say) -> Path:
        port = _writable_romfs_port(tree) if writable_romfs else tree / "ports/qemu"
        build_dir = _fresh(port / f"build-{board}-{key}")
        what = (" with the user C module" if user_c_modules else "") \
            + (" with a filesystem at /flash" if filesystem else "") \
            + (" with a writable ROMFS" if writable_romfs else "")
        _make(["-C", str(port), f"BUILD={build_dir}", cross, *flags],
              f"building MicroPython for qemu {board}{what} (about a minute, once)", say)
        if filesystem:
            _check_fs_region(build_dir / "firmware.elf", board)
        return build_dir / "firmware.elf"

    return _product(key, "firmware.elf", build, say)


def romfs_partition(board: str) -> tuple[int, int]:
    """(start, size) of ROMFS partition 0, read from the board's mpconfigboard.mk."""
    _board(board)
    mk = (micropython_dir() / "ports/qemu/boards" / board / "mpconfigboard.mk").read_text()
    values = dict(re.findall(r"^(MICROPY_HW_ROMFS_PART0_(?:START|SIZE))\s*=\s*(\S+)", mk, re.M))
    try:
        return int(values["MICROPY_HW_ROMFS_PART0_START"], 0), int(values["MICROPY_HW_ROMFS_PART0_SIZE"], 0)
    except KeyError:
        raise MicroPythonError(f"the qemu board {board} has no ROMFS partition 0 in its mpconfigboard.mk") from None


# ---- ROMFS images ----

ROMFS_ALIGN = 4


def romfs_image(files, out: Path, align: int = ROMFS_ALIGN) -> Path:
    """Write a ROMFS image of ``files`` (``{name: Path}``, names may contain ``/``; or a directory,
    taken recursively) to ``out``, with mpremote's own writer (``mpremote.romfs.VfsRomWriter``).

    Alignment: mpremote's ``make_romfs``/``romfs build`` does **not** align file data: a file's
    bytes follow its record's varuint headers and its name, so their offset is whatever those
    lengths add up to (the format only keeps every record a multiple of 2 bytes long). The format
    allows alignment with padding records (extmod/vfs_rom.c: unknown/padding records inside a file
    record are skipped before its data record). This writer puts such a padding record in each
    file so that every file's data starts at a multiple of ``align`` (default 4) from the start of
    the image (and writes the image's own length as a fixed 4-byte varuint, keeping the size even
    with a trailing padding record, so that growing the image never moves the data already placed); the qemu boards' ROMFS partitions start at 0x21000000 / 0x60C00000 / 0x80610000
    (and real ports' partitions at flash-page boundaries), so the data is ``align``-aligned in
    memory too, and ``memoryview(open('/rom/x', 'rb'))`` on the device points straight at it."""
    from mpremote.romfs import VfsRomWriter

    if align not in (1, 2, 4, 8, 16, 32, 64):
        raise MicroPythonError(f"ROMFS data alignment must be a power of two up to 64, not {align}")
    if isinstance(files, (str, Path)):
        root = Path(files)
        if not root.is_dir():
            raise MicroPythonError(f"{root}: not a directory to make a ROMFS image of")
        files = {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}
    entries = {name.strip("/"): Path(path).read_bytes() for name, path in files.items()}
    tree: dict = {}
    for name, data in entries.items():
        node = tree
        *dirs, leaf = name.split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = data

    pads: dict[str, int] = {}
    for _ in range(8 * len(entries) + 8):  # fix the first misaligned file, which shifts the rest: repeat
        image = _write_romfs(VfsRomWriter, tree, pads)
        offsets = romfs_file_offsets(image)
        wrong = sorted((o, n) for n, o in offsets.items() if o % align)
        if not wrong:
            break
        o, n = wrong[0]
        pads[n] = _pad_size(pads.get(n, 0) + align - o % align, align)
    else:
        raise MicroPythonError(f"could not align the ROMFS file data to {align} bytes")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(image)
    return out


def _pad_size(pad: int, align: int) -> int:
    """``pad`` bytes of padding record, reduced modulo ``align`` to a size a padding record can
    have: 0, or at least 2 (its kind and length bytes), so 1 becomes 1 + align."""
    pad %= align
    return pad + align if pad == 1 else pad


def _write_romfs(writer_cls, tree: dict, pads: dict) -> bytes:
    vfs = writer_cls()

    def finalise() -> bytes:
        """mpremote's finalise, but with a fixed-size (4-byte, 0x80-padded) length so that a
        change of the image's size or parity does not move every file's data: the image is kept
        a multiple of 2 long by a trailing padding record instead."""
        _, data = vfs._dir_stack.pop()
        if (len(writer_cls.ROMFS_HEADER) + 4 + len(data)) % 2:
            data += vfs._pack(VfsRomWriterKinds.PADDING, b"\0")  # 3 bytes
        length = vfs._encode_uint(len(data))
        return writer_cls.ROMFS_HEADER + b"\x80" * (4 - len(length)) + length + data

    def walk(node: dict, prefix: str) -> None:
        for name in sorted(node):
            value = node[name]
            if isinstance(value, dict):
                vfs.opendir(name)
                walk(value, prefix + name + "/")
                vfs.closedir()
            else:
                pad = pads.get(prefix + name, 0)
                if pad:  # a file record whose payload is: name, padding record, data record
                    fname = bytes(name, "ascii")
                    payload = vfs._encode_uint(len(fname)) + fname
                    payload += vfs._pack(VfsRomWriterKinds.PADDING, bytes(pad - 2))  # 1+1+(pad-2) bytes
                    payload += vfs._pack(VfsRomWriterKinds.VERBATIM, value)
                    vfs._dir_stack[-1][1].extend(vfs._pack(VfsRomWriterKinds.FILE, payload))
                else:
                    vfs.mkfile(name, value)

    walk(tree, "")
    return finalise()


class VfsRomWriterKinds:
    """Record kinds of the ROMFS format (extmod/vfs_rom.c; mpremote.romfs.VfsRomWriter)."""
    PADDING = 1
    VERBATIM = 2
    POINTER = 3
    DIRECTORY = 4
    FILE = 5
    FILESYSTEM = 0x14A6B1


def _uint(buf: bytes, i: int) -> tuple[int, int]:
    v = 0
    while True:
        b = buf[i]
        i += 1
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            return v, i


def romfs_file_offsets(image: bytes) -> dict[str, int]:
    """``{path: offset of the file's data from the image start}``, read as the device reads it."""
    kind, i = _uint(image, 0)
    if kind != VfsRomWriterKinds.FILESYSTEM:
        raise MicroPythonError("not a ROMFS image (no RM1 header)")
    length, i = _uint(image, i)
    found: dict[str, int] = {}

    def records(start: int, end: int, prefix: str) -> None:
        j = start
        while j < end:
            kind, j = _uint(image, j)
            length, j = _uint(image, j)
            nxt = j + length
            if kind in (VfsRomWriterKinds.DIRECTORY, VfsRomWriterKinds.FILE):
                n, k = _uint(image, j)
                name = image[k:k + n].decode()
                if kind == VfsRomWriterKinds.DIRECTORY:
                    records(k + n, nxt, prefix + name + "/")
                else:
                    k += n
                    while k < nxt:  # the first data record; padding and unknown records are skipped
                        sub, k = _uint(image, k)
                        sub_len, k = _uint(image, k)
                        if sub == VfsRomWriterKinds.VERBATIM:
                            found[prefix + name] = k
                            break
                        k += sub_len
            j = nxt

    records(i, i + length, "")
    return found


# ---- running a qemu board ----

@dataclass(frozen=True)
class _Machine:
    """What boards.QemuBoard needs to know of a machine (its name, QEMU binary and package)."""
    name: str
    qemu: tuple[str, ...]
    qemu_apt: str


class MicroPythonQemu(QemuBoard):
    """A qemu-port MicroPython running under QEMU with its UART (the REPL) on a TCP server at
    ``url`` (``socket://127.0.0.1:PORT``, for ``mpremote connect``). QEMU waits for the first
    connection before it boots, and takes the next one after a client disconnects. With
    ``romfs_image``, the image is preloaded at the board's ROMFS partition 0 and appears at
    ``/rom`` (the stock port's ROMFS is read-only to the running MicroPython: it cannot be deployed
    to; a firmware from ``qemu(board, writable_romfs=True)`` can be)."""

    error = MicroPythonError

    def __init__(self, board: str, elf, romfs_image: Path | None = None, port: int | None = None,
                 icount: bool = False):
        self.port_board = _board(board)
        # -icount shift=0: one instruction = 1 ns of virtual time, so time.ticks_us() on the board
        # counts executed instructions (in thousands), deterministically
        self.icount = icount
        if not Path(elf).is_file():  # QEMU would wait for a client before it notices
            raise MicroPythonError(f"{elf}: no such firmware; build it with ports.qemu({board!r})")
        self.romfs = Path(romfs_image) if romfs_image is not None else None
        if self.romfs is not None:
            start, size = romfs_partition(board)
            if self.romfs.stat().st_size > size:
                raise MicroPythonError(f"{self.romfs}: {self.romfs.stat().st_size:,} bytes do not fit the "
                                       f"{board}'s ROMFS partition ({size:,} bytes)")
            self.romfs_start = start
        b = self.port_board
        super().__init__(elf, port, _Machine(board, (b.qemu, "-machine", b.machine), b.qemu_apt))

    def command(self) -> list[str]:
        b = self.port_board
        cmd = [b.qemu, "-machine", b.machine, "-nographic", "-monitor", "null", *b.qemu_args,
               "-kernel", str(self.elf), "-serial", f"tcp:127.0.0.1:{self.port},server=on,wait=on"]
        if self.romfs is not None:
            cmd += ["-device", f"loader,file={self.romfs},addr=0x{self.romfs_start:08x},force-raw=on"]
        if self.icount:
            cmd += ["-icount", "shift=0"]
        return cmd
