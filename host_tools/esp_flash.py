"""Flash an ESP32, ESP32-S3 or ESP32-C3 through its ROM serial bootloader with esptool's Python
API: ``squeezeedge flash --board esp32|esp32s3|esp32c3 --port PORT BUILD_DIR|IMAGE``.

Library first::

    from squeezeedge.esp_flash import flash_esp32
    flash_esp32("build/", "esp32c3", port="/dev/ttyUSB0")   # detect, write, verify, reset

What it flashes (resolved before the port is touched, so a wrong file costs no board time):

- an ESP-IDF build directory: its ``flasher_args.json`` names the bootloader, the partition
  table and the app with their offsets (``flash_files``) and the target the build was made for
  (``extra_esptool_args.chip``);
- a merged image (``esptool merge-bin``, ``idf.py merge-bin``): written at 0x0; recognised by
  the partition table magic (0xAA 0x50) at 0x8000;
- a single app image (``esptool elf2image``): written at 0x10000, the factory app offset of
  ESP-IDF's default partition table.

Every image's header names its chip; one built for another chip stops here. Then: open the port
(missing or busy: one sentence), reset into the ROM loader and sync (nothing answering: one
sentence), detect the chip (GET_SECURITY_INFO's chip id, or the ROM magic word on the ESP32)
and stop if it is not ``board`` — all before anything is erased. Then the flasher stub, SPI
attach, baud rate, one ``write_flash`` per file (deflate-compressed with the stub, plain 1 KiB
blocks with the ROM alone; esptool checks each file's MD5 after writing it),
a second MD5 pass over every region (``verify``), and a hard reset into the new firmware
(through RTS, where the port has modem lines; a pty or a raw socket has none).

esptool's own console output is replaced by a logger (esptool 5's ``log.set_logger``) that
drops its lines (every failure surfaces as a FatalError, turned into one sentence here) and
turns its byte progress into ``progress(stage, percent)`` calls, which the CLI draws as a tqdm
bar.
"""

from __future__ import annotations

import json
import struct
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .flash import FlashError, Progress, is_pty, no_progress, check_serial_port, default_serial_port
from .targets.esp32 import APP_OFFSET, ESP_BOARDS, PARTITION_TABLE_OFFSET  # the family's facts, one place

# The ROM syncs at 115200; 460800 is ESP-IDF's default flashing rate and works on the common
# USB-serial bridges (CP210x, CH340, FTDI) and on the USB-Serial/JTAG of the S3/C3.
DEFAULT_BAUD = 460800
ROM_BAUD = 115200
IMAGE_MAGIC = 0xE9
# Enough attempts to cycle once through esptool's four reset strategies (tight / classic, short
# and long delay) on a USB-serial bridge; with nothing answering it gives up in a few seconds.
CONNECT_ATTEMPTS = 4


@dataclass
class EspImage:
    """What will be written: (offset, file) pairs, and what they came from."""
    kind: str                                   # "build directory", "merged image", "app image"
    source: Path
    files: list[tuple[int, Path]] = field(default_factory=list)

    def describe(self) -> str:
        return ", ".join(f"{p.name} at 0x{off:x}" for off, p in self.files)


# ---- images ----

def _chip_names() -> dict[int, str]:
    from esptool.targets import CHIP_DEFS

    return {cls.IMAGE_CHIP_ID: cls.CHIP_NAME for cls in CHIP_DEFS.values()
            if cls.IMAGE_CHIP_ID is not None and cls.CHIP_NAME != "ESP8266"}


def _image_chip(data: bytes, at: int = 0) -> int | None:
    """The chip id of the ESP image header at ``at`` (extended header, bytes 12-13), or None."""
    if len(data) < at + 24 or data[at] != IMAGE_MAGIC:
        return None
    return struct.unpack_from("<H", data, at + 12)[0]


def _check_image_chip(data: bytes, at: int, name: str, board: str) -> None:
    from esptool.targets import CHIP_DEFS

    chip_id = _image_chip(data, at)
    want = CHIP_DEFS[board].IMAGE_CHIP_ID
    if chip_id is not None and chip_id != want:
        other = _chip_names().get(chip_id, f"chip id {chip_id}")
        raise FlashError(f"{name} is an {other} image, not an {ESP_BOARDS[board]} one: rebuild it for "
                         f"{board} (idf.py set-target {board}) or pass the --board it was built for")


def _build_dir(path: Path, board: str) -> EspImage:
    args_file = path / "flasher_args.json"
    if not args_file.is_file():
        raise FlashError(f"{path} has no flasher_args.json: pass an ESP-IDF build directory (after idf.py build) "
                         "or a .bin image")
    try:
        args = json.loads(args_file.read_text())
        entries = sorted((int(off, 0), rel) for off, rel in args["flash_files"].items())
        if not entries:
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise FlashError(f"{args_file} is not ESP-IDF's flasher_args.json (no flash_files of offset: file): "
                         "run idf.py build again") from None
    built_for = (args.get("extra_esptool_args") or {}).get("chip")
    if built_for and built_for != board:
        raise FlashError(f"{path} was built for {built_for}, not {board}: pass --board {built_for} or rebuild "
                         f"with idf.py set-target {board}")
    image = EspImage("build directory", path)
    for offset, rel in entries:
        f = path / rel
        if not f.is_file():
            raise FlashError(f"{args_file} lists {rel}, which is missing: run idf.py build again")
        _check_image_chip(f.read_bytes()[:64], 0, f.name, board)
        image.files.append((offset, f))
    return image


def resolve_esp_image(source, board: str) -> EspImage:
    """BUILD_DIR (flasher_args.json), a merged image or an app image -> what to write where."""
    from esptool.targets import CHIP_DEFS

    p = Path(source)
    if p.is_dir():
        return _build_dir(p, board)
    if not p.is_file():
        raise FlashError(f"{p}: no such image or build directory; pass the ESP-IDF build directory or a .bin image")
    data = p.read_bytes()
    if data[:4] == b"\x7fELF":
        raise FlashError(f"{p} is an ELF file: pass the build directory, or convert it with "
                         f"esptool --chip {board} elf2image")
    # The bootloader sits at 0x1000 on the ESP32 and at 0x0 on the newer chips: look at both, so
    # that a merged image for another chip is named as such.
    boots = [off for off in sorted({0x0, 0x1000, CHIP_DEFS[board].BOOTLOADER_FLASH_OFFSET})
             if _image_chip(data, off) is not None]
    if data[PARTITION_TABLE_OFFSET:PARTITION_TABLE_OFFSET + 2] == b"\xaa\x50" and boots:
        _check_image_chip(data, boots[0], f"{p.name} (its bootloader)", board)
        return EspImage("merged image", p, [(0, p)])
    if _image_chip(data) is not None:
        _check_image_chip(data, 0, p.name, board)
        return EspImage("app image", p, [(APP_OFFSET, p)])
    raise FlashError(f"{p} is not an ESP image (no 0xE9 header): pass the build directory, a merged image "
                     "(esptool merge-bin) or an app image (esptool elf2image)")


# ---- esptool's output -> progress(stage, percent) ----

def _make_logger(say: Progress):
    """A logger made on first use: esp_pylib comes with esptool, which is imported lazily so that
    ``squeezeedge --help`` stays fast."""
    from esp_pylib.logger import EspLogBase

    class _Task:
        def __init__(self, log, total: int):
            self.log, self.total, self.done, self.last = log, total, 0, None

        def update(self, advance: int = 1, description: str | None = None) -> None:
            self.done = max(0, min(self.total, self.done + advance))
            percent = round(100.0 * self.done / self.total) if self.total else 100.0
            if percent != self.last:
                self.last = percent
                say(self.log.stage_name, float(percent))

    class ProgressLog(EspLogBase):
        """esptool's lines dropped, its byte progress sent to ``say``."""

        def __init__(self):
            self.stage_name = "writing"

        def _drop(self, *args, **kwargs) -> None:
            pass

        print = err = warn = note = hint = debug = _drop

        def set_verbosity(self, mode) -> None:
            pass

        def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30) -> None:
            pass

        @contextmanager
        def progress(self, total, description="", bar_length=30, *, file=None, disable=False, unit=None):
            task = _Task(self, total)
            yield task
            if task.last != 100.0:
                say(self.stage_name, 100.0)

    return ProgressLog()


@contextmanager
def _esptool_logging(logger):
    from esp_pylib.logger import EspLog
    from esptool.logger import log

    previous = EspLog.instance
    log.set_logger(logger)
    try:
        yield
    finally:
        EspLog.instance = previous  # the custom logger has no set_logger of its own


def _sentence(err: BaseException) -> str:
    """esptool's message as one clause: its first line, no trailing period, no inner ". "."""
    lines = [s.strip() for s in str(err).splitlines() if s.strip()]
    text = lines[0] if lines else type(err).__name__
    return text.rstrip(".").replace(". ", "; ")


# ---- connecting ----

def _has_reset_lines(port: str) -> bool:
    """Whether DTR/RTS reach the board (wired to BOOT and EN on dev boards and USB-Serial/JTAG):
    a USB-serial device or RFC 2217 do; a pty or a raw socket has no modem lines, so there the
    board must already sit in its ROM loader and is not reset at the end."""
    if "://" in port:
        return port.startswith("rfc2217://")
    return not is_pty(port)


def _connect(port: str, board: str, attempts: int, say: Progress, mode: str):
    """Reset into the ROM loader, sync, detect the chip; FlashError unless it is ``board``."""
    import serial
    from esptool.cmds import detect_chip
    from esptool.util import FatalError

    want = ESP_BOARDS[board]
    say(f"connecting to the ROM bootloader on {port}", None)
    try:
        esp = detect_chip(port, ROM_BAUD, connect_mode=mode, connect_attempts=attempts)
    except FatalError as e:
        msg = str(e)
        if msg.startswith("Could not open") and "://" in port:
            raise FlashError(f"nothing accepts connections at {port}: start the serial bridge there "
                             "(esp_rfc2217_server, ser2net) or check the address") from None
        if msg.startswith("Could not open"):
            raise FlashError(f"cannot open {port}: check that it exists and that no other program holds it "
                             f"({_sentence(e.__cause__ or e)})") from None
        if "Failed to connect" in msg:
            boot = "GPIO9" if board == "esp32c3" else "GPIO0"
            raise FlashError(f"no ESP bootloader answered on {port}: hold BOOT ({boot}) low while you press and "
                             f"release RESET (EN), check the USB cable, then retry") from None
        raise FlashError(f"the device on {port} is not an ESP chip this esptool knows ({_sentence(e)}): "
                         f"check --port") from None
    except (serial.SerialException, OSError) as e:
        raise FlashError(f"lost the connection to {port} while connecting ({_sentence(e)}): check the cable "
                         "and retry") from None
    if esp.CHIP_NAME != want:
        esp._port.close()
        ours = {v: k for k, v in ESP_BOARDS.items()}.get(esp.CHIP_NAME)
        hint = f"pass --board {ours}" if ours else f"squeezeedge flashes {', '.join(ESP_BOARDS)} only"
        raise FlashError(f"the device on {port} is an {esp.CHIP_NAME}, not an {want}: {hint}")
    say(f"found an {esp.CHIP_NAME} on {port}", None)
    return esp


# ---- the whole job ----

def flash_esp32(source, board: str = "esp32c3", port: str | None = None, verify: bool = True,
                progress: Progress | None = None, baud: int = DEFAULT_BAUD, stub: bool = True,
                connect_attempts: int = CONNECT_ATTEMPTS, reset: bool = True) -> EspImage:
    """Write ``source`` (an ESP-IDF build directory, a merged image or an app image) to the
    ``board`` (esp32, esp32s3, esp32c3) on ``port`` (a serial device or ``socket://host:port``),
    verify every region's MD5 and hard-reset into it. Returns what was written; raises
    FlashError (one sentence) for a bad image, a missing or busy port, no device answering,
    the wrong chip, or a failed write or verification.

    ``stub``: upload esptool's flasher stub first (esptool's and idf.py's default on real
    boards: 16 KiB compressed blocks, just-in-time erase, faster and better tested than the
    ROM's own write path). ``stub=False`` talks to the ROM loader only, as Secure Download
    Mode requires (there the stub is skipped anyway). Both are tested against the emulated ROM."""
    import serial
    from esptool import cmds
    from esptool.util import FatalError

    say = progress or no_progress
    if board not in ESP_BOARDS:
        raise FlashError(f"unknown ESP board {board!r}; available: {', '.join(ESP_BOARDS)}")
    if source is None:
        raise FlashError("pass the ESP-IDF build directory (after idf.py build) or a merged .bin image to flash")
    image = resolve_esp_image(source, board)
    port = port or default_serial_port()
    if "://" not in port:  # esptool opens socket:// and rfc2217:// itself
        check_serial_port(port)
    logger = _make_logger(say)
    with _esptool_logging(logger):
        lines = _has_reset_lines(port)
        esp = _connect(port, board, connect_attempts, say, "default-reset" if lines else "no-reset")
        doing = "starting the flasher stub"
        try:
            if stub and not esp.secure_download_mode:
                say(doing, None)
                esp = cmds.run_stub(esp)
            doing = "attaching the SPI flash"
            cmds.attach_flash(esp)
            if baud and baud != esp.get_baud():
                doing = f"switching to {baud} baud"
                esp.change_baud(baud)
            for offset, f in image.files:
                doing = logger.stage_name = f"writing {f.name} at 0x{offset:x}"
                say(doing, 0.0)
                cmds.write_flash(esp, [(offset, str(f))])
            if verify:
                doing = "verifying every region (MD5)"
                say(doing, None)
                cmds.verify_flash(esp, [(offset, str(f)) for offset, f in image.files])
            if reset and lines:
                doing = "resetting the board"
                cmds.reset_chip(esp, "hard-reset")
                say("reset the board: the new firmware starts", None)
            elif reset:
                say(f"{port} has no reset line: press RESET (EN) to start the new firmware", None)
        except FatalError as e:
            msg = str(e)
            if "MD5 of file does not match" in msg or "Verification failed" in msg or "region is empty" in msg:
                raise FlashError(f"verification failed on {port}: the flash does not hold what was written "
                                 f"({doing}); retry at a lower --baud") from None
            raise FlashError(f"{doing} failed on {port}: {_sentence(e)}") from None
        except (serial.SerialException, OSError) as e:
            raise FlashError(f"lost the connection to {port} while {doing} ({_sentence(e)}): check the cable "
                             "and retry") from None
        finally:
            try:
                esp._port.close()
            except Exception:
                pass
    return image
