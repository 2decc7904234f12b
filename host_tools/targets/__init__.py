"""Every board SqueezeEdge builds for, each described in one module (like esptool's ``targets``):

* ``stm32f405``: STM32F405, QEMU netduinoplus2, flashed by flash.py;
* ``rv32_virt``: rv32imc under QEMU virt, sized as an ESP32-C3;
* ``xtensa_sim``: Xtensa LX106 under QEMU sim, sized as an ESP8266 (run by xtensa_sim.py);
* ``esp32``: ESP32/S3/C3 chip facts for esptool (built with ESP-IDF, flashed by esp_flash.py).

``BOARDS``: the boards that boards.py builds with make and runs under QEMU with their UART on a
TCP socket (``squeezeedge build/emulate --board``).
"""

from . import esp32, rv32_virt, stm32f405, xtensa_sim
from .base import ARM_SECTIONS, PORTS_DIR, RISCV_SECTIONS, Board

BOARDS = {b.name: b for b in (stm32f405.BOARD, rv32_virt.BOARD)}
XTENSA_SIM = xtensa_sim.BOARD
ESP_BOARDS = esp32.ESP_BOARDS

__all__ = ["ARM_SECTIONS", "BOARDS", "Board", "ESP_BOARDS", "PORTS_DIR", "RISCV_SECTIONS", "XTENSA_SIM"]
