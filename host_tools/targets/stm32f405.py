"""STM32F405 (Cortex-M4F, 168 MHz): firmware/ports/stm32f4, run under QEMU's netduinoplus2 and
flashed over the ROM bootloader, an ST-Link or DFU (flash.py)."""

from .base import Board

BOARD = Board(
    "stm32f405", "STM32F405 (Cortex-M4F, 168 MHz)", "stm32f405.ld", 1024 * 1024, 128 * 1024, 8 * 1024,
    "netduinoplus2",
    bootloader_chip_id=0x413,       # ST AN2606: STM32F40xxx/41xxx
    pyocd_target="stm32f405rg",
)
