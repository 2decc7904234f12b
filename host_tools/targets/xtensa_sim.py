"""xtensa-sim: the whole firmware on an Xtensa LX106 (the ESP8266's core) under
``qemu-system-xtensa -M sim`` (firmware/ports/xtensa_sim), sized against the ESP8266. Its line
is QEMU's stdin/stdout through simcall semihosting, not a UART socket, so xtensa_sim.py runs it
(not boards.py)."""

from .base import Board

BOARD = Board(
    "xtensa-sim", "Xtensa LX106 (ESP8266's core) on QEMU sim", "sim.ld",
    1024 * 1024,        # the ESP8266's mapped flash (sim.ld's IROM)
    80 * 1024,          # the ESP8266's data RAM for an application (sim.ld's DRAM)
    8 * 1024,           # sim.ld keeps it free for the stack
    "sim", port="xtensa_sim", toolchain="xtensa-lx106-elf-", target="xtensa",
    qemu=("qemu-system-xtensa", "-M", "sim", "-cpu", "lx106"), cpu_hz=80_000_000,  # the ESP8266 boots at 80 MHz
    flash_origin=0x40200000,
    uart="simcall semihosting (QEMU's stdin/stdout)", limits="ESP8266: 1 MiB mapped flash, 80 KiB data RAM",
    semihosting=False, elf_machine=94, apt="gcc-xtensa-lx106", qemu_apt="qemu-system-misc",
)
# -serial none keeps QEMU's simcall console off, so SYS_read/SYS_write go straight to QEMU's own
# file descriptors 0 and 1 (a blocking read: the idle firmware costs no host CPU).
QEMU_ARGS = [*BOARD.qemu[1:], "-nographic", "-monitor", "none", "-serial", "none", "-semihosting"]
