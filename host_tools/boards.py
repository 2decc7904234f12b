"""Board firmware: build a port's image for a model and run it under QEMU.

Library first::

    from squeezeedge.boards import build_board, start_qemu_board
    fw = build_board("stm32f405")               # default model; fw.elf/.bin/.hex, fw.size
    print(fw.size.report())                     # flash/RAM against the chip's limits
    with start_qemu_board(fw.elf) as q:         # qemu-system-arm -M netduinoplus2
        print(q.url)                            # socket://127.0.0.1:PORT: the board's UART

Boards (``BOARDS``):

* ``stm32f405``: ``firmware/ports/stm32f4`` for an STM32F405 (QEMU netduinoplus2), the model
  compiled for cortex-m4 (SMLAD dot products);
* ``rv32-virt``: ``firmware/ports/rv32_virt``, the whole firmware on the ESP32-C3's ISA (rv32imc)
  under ``qemu-system-riscv32 -M virt``, the model compiled for rv32imc; its size report is
  against the ESP32-C3's flash and RAM. Its ELF is laid out for QEMU virt (0x80000000), not for
  the ESP32-C3's memory map: the ESP32 boards themselves use the ESP-IDF app in ports/esp32.

A board's firmware is its port's Makefile + the core + a model package compiled for the board's
core. Builds are cached like the host emulator's (same cache dir, a key made of every source
byte and the flags), so a second build is instant.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .emulator import PACKAGE_FILES, model_digest, prepare_package
from .models.model_file import IntModel
from .resources import CACHE_DIR, CORE_DIR, PORTS_DIR

STM32F4_DIR = PORTS_DIR / "stm32f4"
QEMU = "qemu-system-arm"    # the stm32f405's; each board has its own (Board.qemu)
CC = "arm-none-eabi-gcc"    # the stm32f405's; each board has its own (Board.toolchain)

# `size -A` sections → text (flash only), data (flash image + RAM) or bss (RAM only).
ARM_SECTIONS = ((".text", "text"), (".ARM.exidx", "text"), (".data", "data"), (".bss", "bss"))
RISCV_SECTIONS = ((".text", "text"), (".rodata", "text"), (".srodata", "text"), (".data", "data"),
                  (".sdata", "data"), (".bss", "bss"), (".sbss", "bss"))


@dataclass(frozen=True)
class Board:
    name: str
    chip: str
    ldscript: str
    flash_bytes: int
    ram_bytes: int          # usable main SRAM (CCM excluded)
    stack_reserve: int      # kept free for the stack (the linker script asserts it too)
    qemu_machine: str | None
    port: str = "stm32f4"                  # firmware/ports/<port>: Makefile, sources, ldscript
    toolchain: str = "arm-none-eabi-"      # GNU prefix: <prefix>gcc, size, nm, objdump
    target: str = "cortex-m4"              # compile target of the model package (compiler/targets.py)
    qemu: tuple[str, ...] = ("qemu-system-arm", "-M", "netduinoplus2")
    sections: tuple[tuple[str, str], ...] = ARM_SECTIONS
    cpu_hz: int = 168_000_000              # for instruction-count time estimates
    flash_origin: int = 0x08000000         # where firmware.bin goes
    uart: str = "USART1"                   # what the serial socket is on the board
    limits: str = ""                       # whose limits flash_bytes/ram_bytes are, when not the chip's own
    semihosting: bool = True               # has a SEMIHOSTING=1 test build
    elf_machine: int = 40                  # e_machine of its firmware.elf (EM_ARM; EM_RISCV = 243)
    apt: str = "gcc-arm-none-eabi libnewlib-arm-none-eabi"
    qemu_apt: str = "qemu-system-arm"

    @property
    def port_dir(self) -> Path:
        return PORTS_DIR / self.port


BOARDS = {
    "stm32f405": Board("stm32f405", "STM32F405 (Cortex-M4F, 168 MHz)", "stm32f405.ld", 1024 * 1024, 128 * 1024,
                       8 * 1024, "netduinoplus2"),
    # ESP32-C3's limits (firmware/ports/rv32_virt/rv32_virt.ld makes the link enforce them):
    # * flash: 4 MB in the package of the ESP32-C3FH4 on the ESP32-C3-MINI-1 (Espressif,
    #   "ESP32-C3-MINI-1 / MINI-1U Datasheet" v2.0, 1.1 Features: "4 MB flash in chip package");
    # * RAM: the same datasheet lists "400 KB SRAM (16 KB for cache)"; ESP-IDF gives .data, .bss
    #   and the heap the SRAM that its IRAM code and ROM/bootloader reservations leave (ESP-IDF
    #   "Memory Types" for ESP32-C3: "The maximum statically allocated DRAM size is reduced by
    #   the IRAM size of the compiled application"). We budget the ~320 KiB of DRAM an
    #   application can count on.
    "rv32-virt": Board("rv32-virt", "RV32IMC (ESP32-C3's ISA) on QEMU virt", "rv32_virt.ld", 4 * 1024 * 1024,
                       320 * 1024, 8 * 1024, "virt", port="rv32_virt", toolchain="riscv64-unknown-elf-",
                       target="rv32imc", qemu=("qemu-system-riscv32", "-M", "virt", "-bios", "none"),
                       sections=RISCV_SECTIONS, cpu_hz=160_000_000, flash_origin=0x80000000,
                       uart="UART0 (NS16550A)", limits="ESP32-C3: 4 MB flash (ESP32-C3-MINI-1), ~320 KiB app DRAM",
                       semihosting=False, elf_machine=243, apt="gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf",
                       qemu_apt="qemu-system-misc"),
}
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
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    pkg = CACHE_DIR / f"pkg-{target}-{model_digest(model)}"
    if all((pkg / f).is_file() for f in PACKAGE_FILES):
        return pkg
    from .compiler.meta import write_meta
    from .compiler.package import compile_model

    say(f"compiling the model to C for {target} (TVM)")
    tmp = Path(tempfile.mkdtemp(prefix="pkg-", dir=CACHE_DIR))
    compile_model(model, target).write(tmp)
    write_meta(model, tmp)
    try:
        os.replace(tmp, pkg)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return pkg


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
            [port / "Makefile", port / b.ldscript] + [pkg / f for f in PACKAGE_FILES]:
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

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QemuBoard:
    """The board's QEMU (``qemu-system-arm -M netduinoplus2``, ``qemu-system-riscv32 -M virt``)
    running a firmware ELF; the board's UART is a TCP server at ``url``
    (``socket://127.0.0.1:PORT``). QEMU waits for the first connection before it runs.
    ``board`` is a BOARDS name or any object with ``name``, ``qemu`` and ``qemu_apt`` (subclasses
    that run other firmware, e.g. MicroPython's, override ``command()`` and ``error``)."""

    error = BoardError  # what start() raises

    def __init__(self, elf, port: int | None = None, board="stm32f405"):
        self.elf = Path(elf)
        self.board = find_board(board) if isinstance(board, str) else board
        self.port = port or _free_port()
        self.url = f"socket://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [*self.board.qemu, "-nographic", "-monitor", "none", "-kernel", str(self.elf),
                "-serial", f"tcp:127.0.0.1:{self.port},server=on,wait=on"]

    def start(self, timeout: float = 15.0) -> "QemuBoard":
        if shutil.which(self.board.qemu[0]) is None:
            raise self.error(f"running the {self.board.name} needs {self.board.qemu[0]}: "
                             f"apt-get install {self.board.qemu_apt}")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # wait until QEMU listens (probe without connecting)
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace").strip()
                raise self.error(f"QEMU exited at once: {err.splitlines()[-1] if err else self.proc.returncode}")
            if self._listening():
                return self
            time.sleep(0.05)
        self.stop()
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

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        return self.proc.returncode

    def __enter__(self) -> "QemuBoard":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_qemu_board(elf, port: int | None = None, board: str = "stm32f405") -> QemuBoard:
    """Start QEMU on ``elf``; returns the running board (``.url``, ``.stop()``)."""
    return QemuBoard(elf, port, board).start()


def run_semihosting_selftest(elf, timeout: float = 60.0) -> tuple[int, str]:
    """Run a ``semihosting=True`` build: (exit status, console output)."""
    r = subprocess.run([QEMU, "-M", "netduinoplus2", "-display", "none", "-monitor", "none", "-serial", "null",
                        "-chardev", "stdio,id=sh0", "-semihosting-config", "enable=on,target=native,chardev=sh0",
                        "-kernel", str(elf)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout


ICOUNT_SENTENCES = ["turn off the kitchen lights", "set the thermostat to 21 degrees",
                    "could you dim the bedroom lights to 30 percent please", "tell me a joke"]


def icount_report(elf, board: str = "stm32f405", texts=None, names=None) -> str:
    """Instructions per inference and the time they take at one instruction per cycle (a lower
    bound: flash wait states and multi-cycle loads add to it; QEMU is not cycle-accurate).
    With ``names`` (HomeNames), the device is told them first and the table is measured again."""
    from .names import add_requests

    hz = CPU_HZ[board]
    rows = []
    for told in ([None, names] if names else [None]):
        setup = [] if told is None else [json.dumps(request) for request in add_requests(told)]
        rows.append(f"executed instructions per line on {board} (unicorn; ms at {hz // 1_000_000} MHz, 1 instruction/cycle)"
                    + (f", told the example home's {len(told)} names:" if told else ", no home names:"))
        for r in count_firmware_instructions(elf, texts or ICOUNT_SENTENCES, board, setup=setup):
            rows.append(f"  {r['line']:>9,} whole line ({1000 * r['line'] / hz:.2f} ms), {r['se_classify']:>9,} classify "
                        f"(checks+tokenizer+names+model+decoding), {r['se_model_run']:>9,} model: {r['text']!r}")
    return "\n".join(rows)


# ---- executed instructions per inference (unicorn) ----

def _symbols(elf: Path, prefix: str) -> tuple[dict, dict]:
    out = subprocess.run([prefix + "nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    syms, sizes = {}, {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            syms[parts[3]] = int(parts[0], 16)
            sizes[parts[3]] = int(parts[1], 16)
        elif len(parts) == 3:
            syms[parts[2]] = int(parts[0], 16)
    return syms, sizes


def _wfi_addresses(elf: Path, prefix: str) -> set[int]:
    dis = subprocess.run([prefix + "objdump", "-d", "--no-show-raw-insn", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    wfi = {int(l.split(":")[0], 16) for l in dis.splitlines() if l.strip().endswith("wfi") or "\twfi" in l}
    if not wfi:
        raise BoardError("no wfi in the image: is it the release build?")
    return wfi


def count_firmware_instructions(elf, texts, board: str = "stm32f405", setup=()) -> list[dict]:
    """Executed instructions of the release image for each text, counted with unicorn on the
    real firmware path: reset → main (clocks, UART, protocol init) up to the main loop's ``wfi``;
    then per text the line is given to the firmware as its UART would (stm32f405: put into the
    USART ring as the ISR would; rv32-virt: read from the 16550's receive register), and the
    main loop runs until it waits again. Returns, per text, ``se_classify`` (the classify call:
    checks, tokenizer, model, decoding), ``se_model_run`` (the model alone) and ``line`` (the
    whole line: protocol, classify, JSON, polled UART writes) and the response bytes.
    Peripherals are plain memory apart from the UART (transmit always ready). ``setup`` lines
    (e.g. names_add requests) are given to the firmware first, uncounted."""
    b = find_board(board)
    elf = Path(elf)
    syms, sizes = _symbols(elf, b.toolchain)
    wfi = _wfi_addresses(elf, b.toolchain)
    if b.toolchain.startswith("riscv"):
        cpu = _RiscvVirt(elf, syms, sizes)
    else:
        cpu = _CortexM(elf, syms, sizes)
    state = {"n": 0}

    def count(u, addr, _size, _data):
        state["n"] += 1
        if addr in wfi:
            u.emu_stop()

    cpu.uc.hook_add(cpu.UC_HOOK_CODE, count)
    cpu.reset()
    for line in setup:
        cpu.receive(line.encode("utf-8") + b"\n")
        cpu.resume()
    ranges = {name: (syms[name] & ~1, sizes[name]) for name in ("se_classify", "se_model_run")}
    results = []
    for text in texts:
        data = (text.encode("utf-8") if isinstance(text, str) else bytes(text)) + b"\n"
        cpu.receive(data)
        cpu.sent.clear()
        entry, exits = {}, {}

        def track(u, addr, _size, _data):
            for name, (start, _) in ranges.items():
                if addr == start and name not in entry:
                    entry[name] = (state["n"], cpu.return_address())
                elif name in entry and name not in exits and addr == entry[name][1]:
                    exits[name] = state["n"]

        h = cpu.uc.hook_add(cpu.UC_HOOK_CODE, track)
        n0 = state["n"]
        cpu.resume()  # past the wfi, until the next one
        cpu.uc.hook_del(h)
        results.append({"text": text, "line": state["n"] - n0,
                        **{name: exits[name] - entry[name][0] for name in ranges if name in exits},
                        "response": bytes(cpu.sent)})
    return results


class _CortexM:
    """The STM32F405 image on unicorn's Thumb M-class core: USART1 SR reads TXE set, RCC reads
    0 (so the 168 MHz path), received bytes go straight into the firmware's ``rx_ring``."""

    def __init__(self, elf: Path, syms: dict, sizes: dict):
        from unicorn import UC_ARCH_ARM, UC_HOOK_CODE, UC_HOOK_MEM_WRITE, UC_MODE_MCLASS, UC_MODE_THUMB, Uc

        self.UC_HOOK_CODE = UC_HOOK_CODE
        self.image = elf.with_suffix(".bin").read_bytes()
        self.uc = uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        uc.mem_map(0x08000000, 1 << 20)
        uc.mem_write(0x08000000, self.image)
        uc.mem_map(0x20000000, 128 * 1024)
        uc.mem_map(0x40000000, 0x100000)          # APB/AHB1 peripherals as plain memory
        uc.mem_map(0xE0000000, 0x100000)          # SysTick/NVIC as plain memory
        usart_sr, usart_dr = 0x40011000, 0x40011004
        uc.mem_write(usart_sr, (1 << 7).to_bytes(4, "little"))  # TXE
        self.sent = bytearray()
        uc.hook_add(UC_HOOK_MEM_WRITE, lambda _uc, _access, _addr, _sz, val, _d: self.sent.append(val & 0xFF),
                    begin=usart_dr, end=usart_dr + 3)
        self.ring, self.head, self.cap = syms["rx_ring"], syms["rx_head"], sizes["rx_ring"]
        self.pos = 0

    def reset(self) -> None:
        from unicorn.arm_const import UC_ARM_REG_SP

        self.uc.reg_write(UC_ARM_REG_SP, int.from_bytes(self.image[0:4], "little"))
        self.uc.emu_start(int.from_bytes(self.image[4:8], "little"), 0x08100000, count=50_000_000)

    def receive(self, data: bytes) -> None:
        for i, b in enumerate(data):
            self.uc.mem_write(self.ring + (self.pos + i) % self.cap, bytes([b]))
        self.pos += len(data)
        self.uc.mem_write(self.head, self.pos.to_bytes(4, "little"))

    def return_address(self) -> int:
        from unicorn.arm_const import UC_ARM_REG_LR

        return self.uc.reg_read(UC_ARM_REG_LR) & ~1

    def resume(self) -> None:
        from unicorn.arm_const import UC_ARM_REG_PC

        self.uc.emu_start(self.uc.reg_read(UC_ARM_REG_PC) + 2 | 1, 0x08100000, count=500_000_000)


class _RiscvVirt:
    """The rv32-virt image on unicorn's RV32 core (M-mode): the 16550 at 0x10000000 is MMIO
    (LSR: transmit always empty, data ready while received bytes are left; RBR pops them; THR
    collects the response); PLIC and CLINT are plain memory (mtime reads 0)."""

    DRAM, DRAM_SIZE = 0x80000000, 8 << 20   # FLASH (4 MiB) + RAM (0x80400000, 320 KiB) of rv32_virt.ld

    def __init__(self, elf: Path, syms: dict, sizes: dict):
        from unicorn import UC_ARCH_RISCV, UC_HOOK_CODE, UC_MODE_RISCV32, Uc

        self.UC_HOOK_CODE = UC_HOOK_CODE
        self.uc = uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV32)
        uc.mem_map(self.DRAM, self.DRAM_SIZE)
        uc.mem_write(self.DRAM, elf.with_suffix(".bin").read_bytes())
        uc.mem_map(0x02000000, 0x10000)       # CLINT
        uc.mem_map(0x0C000000, 0x400000)      # PLIC
        self.sent = bytearray()
        self.pending = bytearray()
        uc.mmio_map(0x10000000, 0x1000, self._uart_read, None, self._uart_write, None)

    def _uart_read(self, _uc, offset, _size, _data) -> int:
        if offset == 5:  # LSR: THR empty + transmitter idle, data ready
            return 0x60 | (1 if self.pending else 0)
        if offset == 0 and self.pending:
            return self.pending.pop(0)
        return 0

    def _uart_write(self, _uc, offset, _size, value, _data) -> None:
        if offset == 0:
            self.sent.append(value & 0xFF)

    def _run(self, start: int, count: int) -> None:
        from unicorn import UcError
        from unicorn.riscv_const import UC_RISCV_REG_PC

        try:
            self.uc.emu_start(start, self.DRAM + self.DRAM_SIZE, count=count)
        except UcError as e:  # e.g. trap_handler's write to virt's test device, which is not mapped here
            raise BoardError(f"the rv32-virt image stopped under unicorn at "
                             f"0x{self.uc.reg_read(UC_RISCV_REG_PC):08x}: {e}") from None

    def reset(self) -> None:
        self._run(self.DRAM, 50_000_000)

    def receive(self, data: bytes) -> None:
        self.pending += data

    def return_address(self) -> int:
        from unicorn.riscv_const import UC_RISCV_REG_RA

        return self.uc.reg_read(UC_RISCV_REG_RA)

    def resume(self) -> None:
        from unicorn.riscv_const import UC_RISCV_REG_PC

        self._run(self.uc.reg_read(UC_RISCV_REG_PC) + 4, 500_000_000)  # wfi has no compressed form
