"""``squeezeedge flash``: a firmware image onto an STM32 (UART bootloader, ST-Link, USB DFU) or an
ESP32 (ROM bootloader, esptool), or the MicroPython module onto a board running MicroPython."""

from __future__ import annotations

import argparse
import contextlib
import sys

from ..esp_flash import DEFAULT_BAUD as ESP_BAUD, flash_esp32
from ..flash import CHIP_IDS, DEFAULT_BAUD, METHODS, FlashError, flash_stm32
from ..targets import ESP_BOARDS
from ..micropython import mpyfile
from ..micropython.deploy import DeployError, connect, deploy, probe
from ..micropython.natmod import build_native_module
from ..micropython.source import MicroPythonError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("flash", help="write the firmware to a board (STM32: UART bootloader, ST-Link or USB "
                                            "DFU; ESP32/S3/C3: ROM serial bootloader with esptool)",
                              description="STM32 (--board stm32f405, needs --method): write IMAGE "
                                          "(firmware.bin/.hex/.elf) or BUILD_DIR/firmware.bin to the flash at "
                                          "0x08000000, verify it and start it; without IMAGE the firmware is built "
                                          "first. uart: stm32flash (BOOT0 high + reset); stlink: pyocd; dfu: "
                                          "dfu-util (BOOT0 high + USB). "
                                          "ESP32 (--board esp32|esp32s3|esp32c3): write an ESP-IDF build directory "
                                          "(bootloader, partition table and app at the offsets in its "
                                          "flasher_args.json), a merged image (at 0x0) or an app image (at 0x10000) "
                                          "through the chip's ROM serial bootloader with esptool: the chip is "
                                          "detected and checked before anything is erased, every region is "
                                          "MD5-verified, then the board is reset; --port may be a serial device or "
                                          "socket://HOST:PORT. "
                                          "MicroPython (--micropython --port PORT [DIR]): copy the native module "
                                          "and its weights to a board running MicroPython with mpremote, checked "
                                          "and SHA-256-verified (see --micropython).")
    p.add_argument("image", nargs="?", metavar="IMAGE or BUILD_DIR",
                   help="STM32 default: build the firmware; ESP32: required (idf.py build's directory or a .bin); "
                        "--micropython: the `squeezeedge build --micropython` folder (DIR)")
    p.add_argument("--board", default="stm32f405", choices=list(CHIP_IDS) + list(ESP_BOARDS),
                   help="target board (default: stm32f405)")
    p.add_argument("--method", choices=list(METHODS), help="STM32 only, required there: uart, stlink or dfu")
    p.add_argument("--port", help="uart and ESP32: the serial port (default: the only /dev/ttyUSB*|ttyACM*); "
                                  "stlink: the probe's unique id; dfu: the device's serial; --micropython: the board's serial port or "
                                  "socket://HOST:PORT")
    p.add_argument("--baud", type=int, help=f"baud rate (default: {DEFAULT_BAUD} for uart; {ESP_BAUD} for ESP32 "
                                            "after the ROM syncs at 115200)")
    p.add_argument("--no-stub", dest="stub", action="store_false",
                   help="ESP32 only: talk to the ROM loader alone, without esptool's flasher stub (slower; what "
                        "Secure Download Mode needs)")
    p.add_argument("--micropython", action="store_true",
                   help="copy a native MicroPython module (`squeezeedge build --micropython -o DIR`) to a board "
                        "running MicroPython, with mpremote: --port is its serial port or socket://HOST:PORT; the "
                        "weights go into ROMFS where the board can write it, else next to squeezeedge.mpy on its "
                        "filesystem; both are SHA-256-verified on the board. Before copying, the board's .mpy "
                        "version and architecture are checked. Without DIR, the board is asked for its "
                        "architecture and the shipped model is built for it first (cached). --board and --method do "
                        "not apply")
    p.add_argument("--no-romfs", dest="romfs", action="store_false",
                   help="--micropython only: put the weights on the filesystem even where the board's ROMFS is "
                        "writable (writing ROMFS replaces its whole partition 0)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip reading the flash back (ESP32: skip the second MD5 pass; esptool still checks each "
                        "write's MD5; --micropython: skip the SHA-256 check on the board)")
    p.set_defaults(func=run)
    return p


# .mpy arches we build (natmod.ARCHES), best first: the first one the board runs is built when
# `flash --micropython` has no DIR (armv7emsp before armv7m: the SMLAD kernels).
_MPY_BUILD_ORDER = ("armv7emsp", "armv7m", "armv6m", "rv32imc", "x64")


def micropython_arch_for(port: str) -> str:
    """The .mpy arch to build for the MicroPython board at ``port`` (asked over mpremote);
    DeployError when the board runs none that ``squeezeedge build --micropython`` makes."""
    transport = connect(port)
    try:
        info = probe(transport)
    finally:
        with contextlib.suppress(Exception):
            transport.exit_raw_repl()
        with contextlib.suppress(Exception):
            transport.close()
    for arch in _MPY_BUILD_ORDER:
        if mpyfile.runs_arch(info.format.arch, arch):
            return arch
    raise DeployError(f"the board's MicroPython ({info.machine}) runs {info.format.arch} native code, for which "
                      "squeezeedge builds no .mpy (" + ", ".join(_MPY_BUILD_ORDER) + "): build a firmware with "
                      "the user C module instead (squeezeedge build --micropython-usermod)")


def _flash_micropython(args) -> int:
    """``flash --micropython``: deploy.deploy with tqdm bars and messages on stderr; one line and
    exit 2 on failure; the report's summary on stdout."""
    def say(msg: str) -> None:
        print(f"flash: {msg}", file=sys.stderr, flush=True)

    try:
        if args.method:
            raise MicroPythonError("--method is for the STM32 board only: a MicroPython board is written over its "
                                   "REPL with mpremote; drop --method")
        if not args.port:
            raise MicroPythonError("--micropython needs --port: the board's serial port (e.g. /dev/ttyACM0) or "
                                   "socket://HOST:PORT (`mpremote devs` lists serial ports)")
        folder = args.image
        if folder is None:
            arch = micropython_arch_for(args.port)
            say(f"no DIR given: building the shipped model for the board's arch ({arch})")
            folder = build_native_module(None, arch, progress=say).directory
        report = deploy(folder, args.port, progress=say, verify=args.verify, replace_romfs=args.romfs)
    except MicroPythonError as e:  # DeployError is one
        print(f"flash: {e}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


def run(args) -> int:
    if getattr(args, "micropython", False):
        return _flash_micropython(args)
    bar = {"stage": None, "tqdm": None}

    def progress(stage: str, percent: float | None) -> None:
        if percent is None:
            if bar["tqdm"] is not None:
                bar["tqdm"].close()
                bar["tqdm"] = None
            print(f"flash: {stage}", file=sys.stderr, flush=True)
            return
        if bar["tqdm"] is None or bar["stage"] != stage:
            from tqdm import tqdm

            if bar["tqdm"] is not None:
                bar["tqdm"].close()
            bar["tqdm"] = tqdm(total=100, desc=stage, unit="%", bar_format="{desc}: {percentage:3.0f}%|{bar}|",
                               file=sys.stderr)
            bar["stage"] = stage
        bar["tqdm"].n = percent
        bar["tqdm"].refresh()

    try:
        if args.board in ESP_BOARDS:
            if args.method:
                raise FlashError(f"--method is for the STM32 board only: the {args.board} is flashed through its ROM "
                                 "serial bootloader; drop --method")
            written = flash_esp32(args.image, args.board, args.port, args.verify, progress,
                                  args.baud or ESP_BAUD, stub=args.stub)
            done = f"flashed {written.describe()} to the {args.board}{' (verified)' if args.verify else ''}"
        else:
            if not args.method:
                raise FlashError(f"--method is required for the {args.board}: uart, stlink or dfu")
            image = flash_stm32(args.image, args.method, args.port, args.verify, progress, args.board,
                                args.baud or DEFAULT_BAUD)
            done = (f"flashed {image} to the {args.board} at 0x08000000 with {args.method}"
                    f"{' (verified)' if args.verify else ''}")
    except FlashError as e:
        if bar["tqdm"] is not None:
            bar["tqdm"].close()
        print(f"flash: {e}", file=sys.stderr)
        return 2
    if bar["tqdm"] is not None:
        bar["tqdm"].close()
    print(done)
    return 0
