"""What describes a board: one ``Board`` per target, filled in by its module in this package."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..resources import PORTS_DIR  # noqa: F401 - the boards' folders; re-exported


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
    bootloader_chip_id: int | None = None  # what its ROM bootloader reports (flash --method uart)
    pyocd_target: str | None = None        # pyOCD's name for the part (flash --method stlink)

    @property
    def port_dir(self) -> Path:
        return PORTS_DIR / self.port
