"""The whole firmware (core + model package + ``firmware/ports/xtensa_sim``) built for an Xtensa
LX106 core with xtensa-lx106-elf-gcc and run under ``qemu-system-xtensa -M sim -cpu lx106``.

The port reads request lines from QEMU's stdin and writes protocol answers to its stdout through
simcall semihosting, so the running firmware is a ``Transport`` over two pipes and
``DeviceEngine`` talks to it unchanged::

    from squeezeedge.xtensa_sim import build_firmware, start_sim
    fw = build_firmware()                 # default model; fw.elf, fw.size (text/data/bss)
    with start_sim(fw.elf) as sim:        # qemu-system-xtensa on pipes
        print(sim.engine().classify_json(b"turn off the kitchen lights"))

Builds are cached like the host emulator's (same cache dir, a key made of every source byte).
"""

from __future__ import annotations

import hashlib
import os
import select
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .boards import BoardError, prepare_board_package
from .emulator import PACKAGE_FILES
from .process import ManagedProcess
from .resources import CACHE_DIR, CORE_DIR, FIRMWARE_LIB_DIR, SHARED_MAKEFILES
from .targets.xtensa_sim import BOARD, QEMU_ARGS
from .transport import DEFAULT_TIMEOUT, DeviceEngine, Transport, TransportError

# The board's facts (toolchain, QEMU, limits) are in targets/xtensa_sim.py.
PORT_DIR = BOARD.port_dir
TARGET = BOARD.target
CC = BOARD.toolchain + "gcc"
SIZE = BOARD.toolchain + "size"
QEMU = BOARD.qemu[0]


class XtensaSimError(RuntimeError):
    """The Xtensa firmware could not be built or run (one sentence that says what to do)."""


def toolchain_available() -> bool:
    return all(shutil.which(t) for t in (CC, SIZE, "make"))


def qemu_available() -> bool:
    return shutil.which(QEMU) is not None


# ---- build ----

@dataclass(frozen=True)
class SizeReport:
    """``xtensa-lx106-elf-size`` of the firmware: ``text`` counts code, constants (the model's
    weights) and vectors, all of which live in flash; RAM is ``data + bss`` plus the stack."""

    text: int
    data: int
    bss: int
    sections: dict

    STACK_RESERVE = BOARD.stack_reserve
    DRAM_BYTES = BOARD.ram_bytes

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss + self.STACK_RESERVE

    def report(self) -> str:
        s = self.sections
        return (f"xtensa-lx106: flash {self.flash:,} bytes (text {self.text:,}: code {s.get('.text', 0):,} + "
                f"const {s.get('.rodata', 0):,} + vectors {s.get('.vectors', 0) + s.get('.reset', 0):,}; "
                f"data {self.data:,}); RAM {self.ram:,} of {self.DRAM_BYTES:,} bytes (data {self.data:,} + "
                f"bss {self.bss:,} + stack reserve {self.STACK_RESERVE:,})")


@dataclass(frozen=True)
class XtensaFirmware:
    elf: Path
    package: Path
    size: SizeReport


def size_report(elf) -> SizeReport:
    def run(fmt):
        r = subprocess.run([SIZE, fmt, str(elf)], capture_output=True, text=True)
        if r.returncode != 0:
            raise XtensaSimError(f"{SIZE} failed on {elf}: {r.stderr.strip()}")
        return r.stdout

    berkeley = run("-B").splitlines()[1].split()
    sections = {}
    for line in run("-A").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    return SizeReport(int(berkeley[0]), int(berkeley[1]), int(berkeley[2]), sections)


def _source_files(pkg: Path) -> list[Path]:
    port = sorted(p for p in PORT_DIR.rglob("*") if p.is_file() and p.suffix in (".c", ".h", ".S", ".ld")
                  and "build" not in p.relative_to(PORT_DIR).parts)
    lib = sorted(FIRMWARE_LIB_DIR.glob("*.[ch]"))  # firmware/lib/string_cmp.c
    return sorted(CORE_DIR.glob("*.[ch]")) + port + lib + [PORT_DIR / "Makefile", *SHARED_MAKEFILES] + [pkg / f for f in PACKAGE_FILES]


def build_firmware(model=None, out_dir=None, progress=None) -> XtensaFirmware:
    """Build the Xtensa firmware for ``model`` (IntModel, .semodel, package dir; default the
    shipped model): the package compiled for "xtensa", the core and the port, linked by make.
    Cached; the ELF is copied to ``out_dir`` if given."""
    say = progress or (lambda s: None)
    if not toolchain_available():
        raise XtensaSimError(f"building the Xtensa firmware needs make and {CC}: apt-get install {BOARD.apt}")
    try:
        pkg = prepare_board_package(model, say, target=TARGET)
    except BoardError as e:
        raise XtensaSimError(str(e)) from None
    h = hashlib.sha256(b"xtensa_sim")
    for path in _source_files(pkg):
        h.update(str(path.relative_to(path.parent.parent)).encode())
        h.update(path.read_bytes())
    cached = CACHE_DIR / f"fw-xtensa-sim-{h.hexdigest()[:20]}"
    if not (cached / "firmware.elf").is_file():
        say("building the Xtensa (lx106) firmware")
        tmp = Path(tempfile.mkdtemp(prefix="fw-", dir=CACHE_DIR))
        r = subprocess.run(["make", "-s", "-C", str(PORT_DIR), f"MODEL_DIR={pkg.resolve()}", f"BUILD_DIR={tmp}"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            log = r.stdout + r.stderr
            if "do not fit" in log or "overflow" in log:
                raise XtensaSimError(f"the firmware does not fit the ESP8266's memory ({BOARD.flash_bytes // 1024 // 1024} "
                                     f"MiB mapped flash, {BOARD.ram_bytes // 1024} KiB data RAM with an "
                                     f"{BOARD.stack_reserve // 1024} KiB stack); use a smaller model preset")
            raise XtensaSimError(f"building the Xtensa firmware failed:\n{log[-4000:]}")
        try:
            os.replace(tmp, cached)
        except OSError:  # built concurrently by another process
            shutil.rmtree(tmp, ignore_errors=True)
    elf = cached / "firmware.elf"
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        elf = Path(shutil.copyfile(elf, Path(out_dir) / "firmware.elf"))
    return XtensaFirmware(elf, pkg, size_report(elf))


# ---- run: QEMU's stdin/stdout are the device's line ----

class PipeTransport(Transport):
    """The line protocol over a child process's stdin (to the device) and stdout (from it)."""

    def __init__(self, proc: subprocess.Popen, name: str = "xtensa-sim"):
        super().__init__()
        self.proc = proc
        self.name = name

    def _write(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise TransportError(f"{self.name}: write failed; the firmware exited "
                                 f"(status {self.proc.poll()})") from None

    def _read(self, timeout: float) -> bytes:
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], max(0.0, timeout))
        if not ready:
            return b""
        data = os.read(fd, 65536)
        if not data:
            raise TransportError(f"{self.name}: the firmware exited (status {self.proc.wait()}) "
                                 "and closed its output")
        return data


class XtensaSim(ManagedProcess):
    """``qemu-system-xtensa -M sim -cpu lx106`` running a firmware ELF on pipes. ``transport``
    is a ``Transport`` once started; ``engine()`` a ``DeviceEngine`` over it."""

    def __init__(self, elf):
        super().__init__()
        self.elf = Path(elf)
        self.transport: PipeTransport | None = None
        self.ready = False  # the firmware said SE_READY

    def command(self) -> list[str]:
        return [QEMU, *QEMU_ARGS, "-kernel", str(self.elf)]

    def start(self, timeout: float = 15.0) -> "XtensaSim":
        if not qemu_available():
            raise XtensaSimError(f"running the Xtensa firmware needs QEMU: apt-get install {BOARD.qemu_apt}")
        self.launch(self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        # The firmware says SE_READY on stderr after its init; QEMU's own errors come there too.
        if not self.wait_until(lambda: self.ready, timeout):
            self.stop()
            why = [line for line in self.stderr_lines if line.strip()]
            raise XtensaSimError("the Xtensa firmware did not start under QEMU: " +
                                 (why[-1].strip() if why else f"no sign of life within {timeout:g} s"))
        self.transport = PipeTransport(self.proc)
        return self

    def on_stderr_line(self, line: str) -> None:
        if "SE_READY" in line:
            self.ready = True

    def engine(self, timeout: float = DEFAULT_TIMEOUT) -> DeviceEngine:
        """A classify engine over this firmware; closing it stops QEMU."""
        return DeviceEngine(self.transport, "xtensa-sim", emulator=self, timeout=timeout)

    def ends_by_itself(self, timeout: float) -> bool:
        """Closing the firmware's input ends it (it answers a pending half line and exits)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True


def start_sim(elf) -> XtensaSim:
    """Start QEMU on ``elf``; the caller stops it (or uses ``with``)."""
    return XtensaSim(elf).start()
