"""Executed Cortex-M4 instructions per inference, counted with the ``unicorn`` emulator.

The package is linked (``-mcpu=cortex-m4 -mthumb -O2``) into a bare image; ``se_model_run`` is
called directly with its five arguments and every executed instruction is counted until it
returns. Needs ``arm-none-eabi-gcc`` and ``pip install unicorn``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

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
    work.mkdir(parents=True, exist_ok=True)
    (work / "stub.c").write_text(_STUB)
    (work / "link.ld").write_text(_LD)
    elf = work / "icount.elf"
    cmd = ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-O2", "-std=c99",
           "-ffreestanding", "-nostdlib", *(extra_cflags or []), "-I", str(package_dir),
           str(package_dir / "model.c"), str(work / "stub.c"), "-T", str(work / "link.ld"),
           "-Wl,-e,se_model_run", "-lgcc", "-o", str(elf)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    return elf


def _symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = int(parts[0], 16)
    return syms


def _functions(elf: Path) -> list[tuple[int, int, str]]:
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    funcs = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT":
            funcs.append((int(parts[0], 16) & ~1, int(parts[1], 16), parts[3]))
    return sorted(funcs)


def count_per_function(elf: Path, ids: list[int]) -> dict[str, int]:
    """Executed instructions of one inference split by the function they belong to (build the
    image with inlining off to see every kernel)."""
    import bisect

    funcs = _functions(elf)
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
    from unicorn import UC_ARCH_ARM, UC_HOOK_CODE, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
    from unicorn.arm_const import (UC_ARM_REG_LR, UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2,
                                   UC_ARM_REG_R3, UC_ARM_REG_SP)

    syms = _symbols(elf)
    binary = subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "--only-section=.text", str(elf),
                             "/dev/stdout"], capture_output=True, check=True).stdout
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.mem_map(FLASH, 16 << 20)
    uc.mem_map(RAM, RAM_SIZE)
    uc.mem_write(FLASH, binary)
    ids_addr = syms["se_ids"]
    uc.mem_write(ids_addr, np.asarray(ids, dtype="<i4").tobytes())
    sp = RAM + RAM_SIZE - 64
    uc.mem_write(sp, int(syms["se_arena"]).to_bytes(4, "little"))  # 5th argument on the stack
    for reg, val in ((UC_ARM_REG_R0, ids_addr), (UC_ARM_REG_R1, len(ids)), (UC_ARM_REG_R2, syms["se_intent"]),
                     (UC_ARM_REG_R3, syms["se_slots"]), (UC_ARM_REG_SP, sp), (UC_ARM_REG_LR, RETURN_ADDR | 1)):
        uc.reg_write(reg, val)
    count = [0]

    def hook(_uc, _addr, _size, _data):
        count[0] += 1

    def hook_attr(_uc, addr, _size, _data):
        count[0] += 1
        on_instruction(addr)

    uc.hook_add(UC_HOOK_CODE, hook if on_instruction is None else hook_attr)
    uc.emu_start(syms["se_model_run"] | 1, RETURN_ADDR)
    if uc.reg_read(UC_ARM_REG_R0) != 0:
        raise RuntimeError(f"se_model_run returned {uc.reg_read(UC_ARM_REG_R0)}")
    intent = np.frombuffer(bytes(uc.mem_read(syms["se_intent"], _n_intents(elf, syms))), dtype=np.int8)
    return count[0], intent.astype(np.int64)


def _n_intents(elf: Path, syms: dict[str, int]) -> int:
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == "se_intent":
            return int(parts[1], 16)
    raise RuntimeError("se_intent not found")
