"""Executed instructions, counted with the ``unicorn`` emulator (QEMU is not cycle-accurate;
these counts are exact and the same on every host).

Two measurements share one counter (``InstructionCounter``) and one symbol reader:

* a model package alone: ``build_image`` links it (``-mcpu=cortex-m4 -mthumb -O2``) into a bare
  image, ``count_instructions`` calls ``se_model_run`` with its five arguments and counts until
  it returns (the compiler benchmark, ``squeezeedge bench --compiler``);
* a board's whole release firmware per request line: ``count_firmware_instructions`` runs it
  from reset on the board's core (stm32f405: Thumb M-class; rv32-virt: RV32) with its UART
  emulated (``squeezeedge build --board B --icount``, ``icount_report``).

Needs ``pip install unicorn`` and the board's GNU toolchain (nm, objcopy, objdump).
"""

from __future__ import annotations

import bisect
import json
import subprocess
from pathlib import Path

import numpy as np

from .boards import CPU_HZ, BoardError, find_board

ARM = "arm-none-eabi-"


# ---- shared: symbols, cores, the counter ----

def elf_symbols(elf: Path, prefix: str = ARM) -> tuple[dict[str, int], dict[str, int]]:
    """(address, size) of every symbol of ``elf`` (``<prefix>nm -S``; sizes only where nm has one)."""
    out = subprocess.run([prefix + "nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    addresses, sizes = {}, {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            addresses[parts[3]] = int(parts[0], 16)
            sizes[parts[3]] = int(parts[1], 16)
        elif len(parts) == 3:
            addresses[parts[2]] = int(parts[0], 16)
    return addresses, sizes


def elf_functions(elf: Path, prefix: str = ARM) -> list[tuple[int, int, str]]:
    """Sorted (start, size, name) of the code symbols of ``elf`` (Thumb bit cleared)."""
    out = subprocess.run([prefix + "nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    funcs = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT":
            funcs.append((int(parts[0], 16) & ~1, int(parts[1], 16), parts[3]))
    return sorted(funcs)


def cortex_m(regions):
    """A unicorn Thumb M-class core (what a Cortex-M4 executes) with ``(address, size)`` mapped."""
    from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc

    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    for address, size in regions:
        uc.mem_map(address, size)
    return uc


class InstructionCounter:
    """Counts every instruction ``uc`` executes (``n``); stops the emulation at any address in
    ``stop_at``; calls ``on_instruction(address)`` for each if given."""

    def __init__(self, uc, stop_at=frozenset(), on_instruction=None):
        from unicorn import UC_HOOK_CODE

        self.n = 0

        def count(u, address, _size, _data):
            self.n += 1
            if on_instruction is not None:
                on_instruction(address)
            if address in stop_at:
                u.emu_stop()

        uc.hook_add(UC_HOOK_CODE, count)


# ---- a model package alone: one se_model_run call on a bare Cortex-M4 image ----

FLASH, RAM, RAM_SIZE = 0x0, 0x20000000, 0x100000
RETURN_ADDR = 0x00FFFFF0  # a word in mapped flash that is never executed

_STUB = r"""
#include <stdint.h>
#include "model.h"
uint8_t se_arena[SE_MODEL_ARENA_BYTES + 1];
int8_t se_intent[SE_MODEL_N_INTENTS];
int8_t se_slots[SE_MODEL_MAX_LEN * SE_MODEL_N_TAGS];
int32_t se_ids[SE_MODEL_MAX_LEN];
"""

_LD = r"""
MEMORY { FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 16M  RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 1M }
SECTIONS {
  .text : { *(.text*) *(.rodata*) } > FLASH
  .bss (NOLOAD) : { *(.bss*) *(COMMON) } > RAM
}
"""


def build_image(package_dir: Path, work: Path, extra_cflags: list[str] | None = None) -> Path:
    """The model package linked alone into a bare Cortex-M4 image (entry: se_model_run)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "stub.c").write_text(_STUB)
    (work / "link.ld").write_text(_LD)
    elf = work / "icount.elf"
    cmd = [ARM + "gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-O2", "-std=c99",
           "-ffreestanding", "-nostdlib", *(extra_cflags or []), "-I", str(package_dir),
           str(package_dir / "model.c"), str(work / "stub.c"), "-T", str(work / "link.ld"),
           "-Wl,-e,se_model_run", "-lgcc", "-o", str(elf)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    return elf


def count_per_function(elf: Path, ids: list[int]) -> dict[str, int]:
    """Executed instructions of one inference split by the function they belong to (build the
    image with inlining off to see every kernel)."""
    funcs = elf_functions(elf)
    starts = [f[0] for f in funcs]
    per: dict[str, int] = {}

    def attribute(addr: int) -> None:
        i = bisect.bisect_right(starts, addr) - 1
        name = funcs[i][2] if i >= 0 and addr < funcs[i][0] + funcs[i][1] else "?"
        name = name.split(".")[0]
        per[name] = per.get(name, 0) + 1

    count_instructions(elf, ids, on_instruction=attribute)
    return per


def count_instructions(elf: Path, ids: list[int], on_instruction=None) -> tuple[int, np.ndarray]:
    """(instructions executed by one se_model_run call, intent logits)."""
    from unicorn.arm_const import (UC_ARM_REG_LR, UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2,
                                   UC_ARM_REG_R3, UC_ARM_REG_SP)

    syms, sizes = elf_symbols(elf)
    if "se_intent" not in sizes:
        raise RuntimeError("se_intent not found")
    binary = subprocess.run([ARM + "objcopy", "-O", "binary", "--only-section=.text", str(elf),
                             "/dev/stdout"], capture_output=True, check=True).stdout
    uc = cortex_m([(FLASH, 16 << 20), (RAM, RAM_SIZE)])
    uc.mem_write(FLASH, binary)
    ids_addr = syms["se_ids"]
    uc.mem_write(ids_addr, np.asarray(ids, dtype="<i4").tobytes())
    sp = RAM + RAM_SIZE - 64
    uc.mem_write(sp, int(syms["se_arena"]).to_bytes(4, "little"))  # 5th argument on the stack
    for reg, val in ((UC_ARM_REG_R0, ids_addr), (UC_ARM_REG_R1, len(ids)), (UC_ARM_REG_R2, syms["se_intent"]),
                     (UC_ARM_REG_R3, syms["se_slots"]), (UC_ARM_REG_SP, sp), (UC_ARM_REG_LR, RETURN_ADDR | 1)):
        uc.reg_write(reg, val)
    counter = InstructionCounter(uc, on_instruction=on_instruction)
    uc.emu_start(syms["se_model_run"] | 1, RETURN_ADDR)
    if uc.reg_read(UC_ARM_REG_R0) != 0:
        raise RuntimeError(f"se_model_run returned {uc.reg_read(UC_ARM_REG_R0)}")
    intent = np.frombuffer(bytes(uc.mem_read(syms["se_intent"], sizes["se_intent"])), dtype=np.int8)
    return counter.n, intent.astype(np.int64)


# ---- a board's whole firmware, per request line ----

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
    from unicorn import UC_HOOK_CODE

    b = find_board(board)
    elf = Path(elf)
    syms, sizes = elf_symbols(elf, b.toolchain)
    core = RiscvVirtFirmware if b.toolchain.startswith("riscv") else CortexMFirmware
    cpu = core(elf, syms, sizes)
    counter = InstructionCounter(cpu.uc, stop_at=_wfi_addresses(elf, b.toolchain))
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
                    entry[name] = (counter.n, cpu.return_address())
                elif name in entry and name not in exits and addr == entry[name][1]:
                    exits[name] = counter.n

        h = cpu.uc.hook_add(UC_HOOK_CODE, track)
        n0 = counter.n
        cpu.resume()  # past the wfi, until the next one
        cpu.uc.hook_del(h)
        results.append({"text": text, "line": counter.n - n0,
                        **{name: exits[name] - entry[name][0] for name in ranges if name in exits},
                        "response": bytes(cpu.sent)})
    return results


class CortexMFirmware:
    """The STM32F405 image on unicorn's Thumb M-class core: USART1 SR reads TXE set, RCC reads
    0 (so the 168 MHz path), received bytes go straight into the firmware's ``rx_ring``."""

    def __init__(self, elf: Path, syms: dict, sizes: dict):
        from unicorn import UC_HOOK_MEM_WRITE

        self.image = elf.with_suffix(".bin").read_bytes()
        self.uc = uc = cortex_m([(0x08000000, 1 << 20), (0x20000000, 128 * 1024),
                                 (0x40000000, 0x100000),    # APB/AHB1 peripherals as plain memory
                                 (0xE0000000, 0x100000)])   # SysTick/NVIC as plain memory
        uc.mem_write(0x08000000, self.image)
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


class RiscvVirtFirmware:
    """The rv32-virt image on unicorn's RV32 core (M-mode): the 16550 at 0x10000000 is MMIO
    (LSR: transmit always empty, data ready while received bytes are left; RBR pops them; THR
    collects the response); PLIC and CLINT are plain memory (mtime reads 0)."""

    DRAM, DRAM_SIZE = 0x80000000, 8 << 20   # FLASH (4 MiB) + RAM (0x80400000, 320 KiB) of rv32_virt.ld

    def __init__(self, elf: Path, syms: dict, sizes: dict):
        from unicorn import UC_ARCH_RISCV, UC_MODE_RISCV32, Uc

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
