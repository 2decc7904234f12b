"""The ESP32 family: ESP32, ESP32-S3 and ESP32-C3, built with ESP-IDF (firmware/ports/esp32) and
flashed through the ROM serial bootloader with esptool (esp_flash.py). No QEMU run and no Board:
ESP-IDF's build, not boards.py, makes their images."""

# board name → the chip name esptool reports (CHIP_NAME); an image or a chip of another stops here
ESP_BOARDS = {"esp32": "ESP32", "esp32s3": "ESP32-S3", "esp32c3": "ESP32-C3"}
APP_OFFSET = 0x10000          # ESP-IDF's default partition table: factory app at 64 KiB
PARTITION_TABLE_OFFSET = 0x8000
