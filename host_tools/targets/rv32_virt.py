"""rv32-virt: the whole firmware on the ESP32-C3's ISA (rv32imc) under ``qemu-system-riscv32 -M
virt`` (firmware/ports/rv32_virt), sized against the ESP32-C3. Its ELF is laid out for QEMU virt
(0x80000000), not for the ESP32-C3's memory map: the ESP32 boards use the ESP-IDF app in
ports/esp32 (targets/esp32.py).

ESP32-C3's limits (firmware/ports/rv32_virt/rv32_virt.ld makes the link enforce them):

* flash: 4 MB in the package of the ESP32-C3FH4 on the ESP32-C3-MINI-1 (Espressif,
  "ESP32-C3-MINI-1 / MINI-1U Datasheet" v2.0, 1.1 Features: "4 MB flash in chip package");
* RAM: the same datasheet lists "400 KB SRAM (16 KB for cache)"; ESP-IDF gives .data, .bss
  and the heap the SRAM that its IRAM code and ROM/bootloader reservations leave (ESP-IDF
  "Memory Types" for ESP32-C3: "The maximum statically allocated DRAM size is reduced by
  the IRAM size of the compiled application"). We budget the ~320 KiB of DRAM an
  application can count on.
"""

from .base import RISCV_SECTIONS, Board

BOARD = Board(
    "rv32-virt", "RV32IMC (ESP32-C3's ISA) on QEMU virt", "rv32_virt.ld", 4 * 1024 * 1024, 320 * 1024, 8 * 1024,
    "virt", port="rv32_virt", toolchain="riscv64-unknown-elf-", target="rv32imc",
    qemu=("qemu-system-riscv32", "-M", "virt", "-bios", "none"), sections=RISCV_SECTIONS, cpu_hz=160_000_000,
    flash_origin=0x80000000, uart="UART0 (NS16550A)",
    limits="ESP32-C3: 4 MB flash (ESP32-C3-MINI-1), ~320 KiB app DRAM", semihosting=False, elf_machine=243,
    apt="gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf", qemu_apt="qemu-system-misc",
)
