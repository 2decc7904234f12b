"""Board firmware: build a port's image for a model and run it under QEMU.

Library first::

    from squeezeedge.boards import build_board, start_qemu_board
    fw = build_board("stm32f405")               # default model; fw.elf/.bin/.hex, fw.size
    print(fw.size.report())                     # flash/RAM against the chip's limits
    with start_qemu_board(fw.elf) as q:         # qemu-system-arm -M netduinoplus2
        print(q.url)                            # socket://127.0.0.1:PORT: the board's UART

Boards (``BOARDS``) are described in ``targets/``, one module each (``targets/stm32f405.py``:
STM32F405 under QEMU netduinoplus2, the model compiled for cortex-m4; ``targets/rv32_virt.py``:
rv32imc under QEMU virt, sized as an ESP32-C3); this module holds what every board shares.

A board's firmware is its port's Makefile + the core + a model package compiled for the board's
core. Builds are cached like the host emulator's (same cache dir, a key made of every source
byte and the flags), so a second build is instant.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .emulator import PACKAGE_FILES, cached_package, prepare_package
from .models.model_file import IntModel
from .net import free_port
from .process import ManagedProcess
from .resources import CACHE_DIR, CORE_DIR, SHARED_MAKEFILES
from .targets import BOARDS, PORTS_DIR, Board  # noqa: F401 - re-exported: tools and tests use boards.BOARDS
from .targets.stm32f405 import BOARD as STM32F405

CPU_HZ = {name: b.cpu_hz for name, b in BOARDS.items()}


class BoardError(RuntimeError):
    """The board firmware could not be built, did not fit or could not be run (one sentence)."""


@dataclass(frozen=True)
class SizeReport:
    board: Board
    text: int
    data: int
    bss: int

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        """Static RAM plus the stack reserve."""
        return self.data + self.bss + self.board.stack_reserve

    def fits(self) -> bool:
        return self.flash <= self.board.flash_bytes and self.ram <= self.board.ram_bytes

    def report(self) -> str:
        b = self.board
        against = f" [{b.limits}]" if b.limits else ""
        return (f"{b.name}{against}: flash {self.flash:,} of {b.flash_bytes:,} bytes ({100 * self.flash / b.flash_bytes:.1f}%: "
                f"text {self.text:,} + data {self.data:,}); RAM {self.ram:,} of {b.ram_bytes:,} bytes "
                f"({100 * self.ram / b.ram_bytes:.1f}%: data {self.data:,} + bss {self.bss:,} + stack reserve "
                f"{b.stack_reserve:,})")


@dataclass(frozen=True)
class Firmware:
    """A built image. ``bin`` is the raw flash image for ``size.board.flash_origin`` (code,
    constants, the .data load image); ``hex`` the same bytes as Intel HEX (for programmers that
    take HEX; for rv32-virt it is only the QEMU virt image in another format)."""
    elf: Path
    bin: Path
    hex: Path
    size: SizeReport


def find_board(name: str) -> Board:
    if name not in BOARDS:
        raise BoardError(f"unknown board {name!r}; available: {', '.join(BOARDS)}")
    return BOARDS[name]


def toolchain_available(board: str = "stm32f405") -> bool:
    prefix = find_board(board).toolchain
    return all(shutil.which(prefix + tool) is not None for tool in ("gcc", "size", "objcopy")) and \
        shutil.which("make") is not None


def qemu_available(board: str = "stm32f405") -> bool:
    return shutil.which(find_board(board).qemu[0]) is not None


def prepare_board_package(source=None, progress=None, target: str = "cortex-m4") -> Path:
    """A model package compiled for ``target`` (cortex-m4: SMLAD kernels; rv32imc: plain C) for
    ``source``: an IntModel, a ``.semodel`` path (compiled into the cache once) or an existing
    package directory."""
    say = progress or (lambda s: None)
    if source is None:
        from .models.engine import DEFAULT_MODEL

        source = DEFAULT_MODEL
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        return prepare_package(source)
    if isinstance(source, (str, Path)):
        if not Path(source).is_file():
            raise BoardError(f"{source}: no such model; pass --model FILE.semodel or a package directory")
        model = IntModel.load(source)
    elif isinstance(source, IntModel):
        model = source
    else:
        raise BoardError(f"cannot make a model package from {type(source).__name__}")
    return cached_package(model, target, say)


def size_report(elf: Path, board: str = "stm32f405") -> SizeReport:
    b = find_board(board)
    out = subprocess.run([b.toolchain + "size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    totals = {"text": 0, "data": 0, "bss": 0}
    kinds = dict(b.sections)
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in kinds and parts[1].isdigit():
            totals[kinds[parts[0]]] += int(parts[1])
    return SizeReport(b, totals["text"], totals["data"], totals["bss"])


def build_board(board: str = "stm32f405", model=None, out_dir=None, semihosting: bool = False,
                progress=None) -> Firmware:
    """Build the firmware for ``board`` and ``model`` (IntModel, .semodel, package dir; default the
    shipped model). Returns the paths of firmware.elf/.bin/.hex (copied to ``out_dir`` if given)
    and the size report; raises BoardError with one sentence when it does not fit."""
    say = progress or (lambda s: None)
    b = find_board(board)
    if semihosting and not b.semihosting:
        raise BoardError(f"{board} has no semihosting test build; build it without semihosting and talk to it "
                         "over its serial port")
    if not toolchain_available(board):
        raise BoardError(f"building for {board} needs make and the {b.toolchain}gcc toolchain: "
                         f"apt-get install {b.apt}")
    pkg = prepare_board_package(model, say, b.target)
    port = b.port_dir
    h = hashlib.sha256(f"{board} semihosting={int(semihosting)}".encode())
    for path in sorted(CORE_DIR.glob("*.[ch]")) + sorted(port.glob("*.[ch]")) + \
            [port / "Makefile", *SHARED_MAKEFILES, port / b.ldscript] + [pkg / f for f in PACKAGE_FILES]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    cached = CACHE_DIR / f"fw-{board}-{h.hexdigest()[:20]}{'-sh' if semihosting else ''}"
    if not (cached / "firmware.elf").is_file():
        say(f"building the {board} firmware" + (" (semihosting test build)" if semihosting else ""))
        tmp = Path(tempfile.mkdtemp(prefix="fw-", dir=CACHE_DIR))
        cmd = ["make", "-s", "-C", str(port), f"MODEL_DIR={pkg.resolve()}", f"BUILD_DIR={tmp}",
               f"LDSCRIPT={port / b.ldscript}"]
        if semihosting:
            cmd.append("SEMIHOSTING=1")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            log = r.stdout + r.stderr
            if "overflow" in log or "will not fit" in log:
                whose = f"{b.chip}, {b.limits}" if b.limits else b.chip
                raise BoardError(f"the firmware does not fit the {whose} ({b.flash_bytes // 1024} KiB flash, "
                                 f"{b.ram_bytes // 1024} KiB RAM with {b.stack_reserve // 1024} KiB stack); "
                                 "use a smaller model preset")
            raise BoardError(f"building the {board} firmware failed:\n{log[-4000:]}")
        try:
            os.replace(tmp, cached)
        except OSError:  # built concurrently
            shutil.rmtree(tmp, ignore_errors=True)
    size = size_report(cached / "firmware.elf", board)
    if not size.fits():
        raise BoardError(f"the firmware does not fit the {b.chip}: {size.report()}")
    src = cached
    if out_dir is not None:
        src = Path(out_dir)
        src.mkdir(parents=True, exist_ok=True)
        for f in ("firmware.elf", "firmware.bin", "firmware.hex"):
            shutil.copyfile(cached / f, src / f)
    return Firmware(src / "firmware.elf", src / "firmware.bin", src / "firmware.hex", size)


def board_image(path, board: str = "stm32f405") -> Path:
    """The firmware.elf that ``path`` names: the file itself or the directory that
    ``squeezeedge build --board BOARD -o DIR`` wrote; checked to be an ELF for ``board``'s core
    (QEMU loads the ELF, not the .bin/.hex). Raises BoardError with one sentence."""
    b = find_board(board)
    p = Path(path)
    elf = p / "firmware.elf" if p.is_dir() else p
    if not elf.is_file():
        raise BoardError(f"{elf}: no such firmware image; give the firmware.elf (or the directory) that "
                         f"`squeezeedge build --board {board} -o DIR` wrote")
    with open(elf, "rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        raise BoardError(f"{elf} is not an ELF file; QEMU runs the firmware.elf that `squeezeedge build` writes "
                         "(the .bin/.hex are for flashing)")
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    if head[4] != 1 or machine != b.elf_machine:
        other = [n for n, o in BOARDS.items() if o.elf_machine == machine and head[4] == 1]
        whose = f"the {other[0]}" if other else f"another processor (ELF machine {machine})"
        raise BoardError(f"{elf} is firmware for {whose}, not for the {board} ({b.chip}); "
                         f"build one with `squeezeedge build --board {board}`")
    return elf


# QEMU runs the firmware as fast as the host lets it, not at the chip's clock: the time_us
# in its answers says little about the board (squeezeedge build --icount counts instructions).
QEMU_TIME_CAVEAT = ("time_us in its answers is QEMU's clock, not the chip's: QEMU is not cycle-accurate and swings "
                    "with the host's load; `squeezeedge build --board {board} --icount` counts instructions exactly")


# ---- QEMU ----

class QemuBoard(ManagedProcess):
    """The board's QEMU (``qemu-system-arm -M netduinoplus2``, ``qemu-system-riscv32 -M virt``)
    running a firmware ELF; the board's UART is a TCP server at ``url``
    (``socket://127.0.0.1:PORT``). QEMU waits for the first connection before it runs.
    ``board`` is a BOARDS name or any object with ``name``, ``qemu`` and ``qemu_apt`` (subclasses
    that run other firmware, e.g. MicroPython's, override ``command()`` and ``error``)."""

    error = BoardError  # what start() raises

    def __init__(self, elf, port: int | None = None, board="stm32f405"):
        super().__init__()
        self.elf = Path(elf)
        self.board = find_board(board) if isinstance(board, str) else board
        self.port = port or free_port()
        self.url = f"socket://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [*self.board.qemu, "-nographic", "-monitor", "none", "-kernel", str(self.elf),
                "-serial", f"tcp:127.0.0.1:{self.port},server=on,wait=on"]

    def start(self, timeout: float = 15.0) -> "QemuBoard":
        if shutil.which(self.board.qemu[0]) is None:
            raise self.error(f"running the {self.board.name} needs {self.board.qemu[0]}: "
                             f"apt-get install {self.board.qemu_apt}")
        self.launch(self.command())
        if self.wait_until(self._listening, timeout):  # probe without connecting: QEMU takes one client
            return self
        exited = not self.alive()
        self.stop()
        if exited:
            err = [line for line in self.stderr_lines if line.strip()]
            raise self.error(f"QEMU exited at once: {err[-1].strip() if err else self.proc.returncode}")
        raise self.error(f"QEMU did not open 127.0.0.1:{self.port} within {timeout:.0f} s")

    def _listening(self) -> bool:
        try:
            with open("/proc/net/tcp") as f:
                rows = f.read().splitlines()[1:]
        except OSError:  # not Linux: a connect would be consumed as the client, so just wait
            time.sleep(0.5)
            return True
        hexport = f"{self.port:04X}"
        return any(r.split()[1].endswith(":" + hexport) and r.split()[3] == "0A" for r in rows)


def start_qemu_board(elf, port: int | None = None, board: str = "stm32f405") -> QemuBoard:
    """Start QEMU on ``elf``; returns the running board (``.url``, ``.stop()``)."""
    return QemuBoard(elf, port, board).start()


def run_semihosting_selftest(elf, timeout: float = 60.0) -> tuple[int, str]:
    """Run a ``semihosting=True`` build: (exit status, console output)."""
    r = subprocess.run([*STM32F405.qemu, "-display", "none", "-monitor", "none", "-serial", "null",
                        "-chardev", "stdio,id=sh0", "-semihosting-config", "enable=on,target=native,chardev=sh0",
                        "-kernel", str(elf)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout
