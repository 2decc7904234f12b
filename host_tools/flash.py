"""Flash the STM32F405 firmware onto a board: ``squeezeedge flash --board stm32f405 --method
stlink|uart|dfu [--port PORT] [IMAGE or BUILD_DIR]``. ``--board esp32|esp32s3|esp32c3`` goes to
esp_flash.py instead (esptool's Python API over the chip's ROM serial bootloader), and
``--micropython --port PORT [DIR]`` to micropython/deploy.py (the native module onto a board
running MicroPython, with mpremote).

Library first::

    from squeezeedge.flash import flash_stm32, FlashError
    flash_stm32("build/firmware.bin", "uart", port="/dev/ttyUSB0")   # writes, verifies, starts it

Three methods, one small class each, all driving the vendor-neutral tools as subprocesses:

- ``uart``: the ROM bootloader over a USART (ST AN3155; BOOT0 high + reset) with ``stm32flash``
  (``apt-get install stm32flash``): first a probe that reads the chip id (0x413 is the
  STM32F405/407; anything else stops here, before erasing), then
  ``stm32flash -w IMAGE -v -g 0x08000000 -m 8e1 -b 115200 PORT`` (``-m 8n1`` on a pty, which
  has no parity). ``-v`` reads every block back and compares it.
- ``stlink``: an ST-Link / CMSIS-DAP probe with pyOCD (``pip install pyocd``):
  ``pyocd flash -t stm32f405rg IMAGE``; verification reads the flash back (``pyocd cmd savemem``).
- ``dfu``: the ROM USB DFU bootloader (BOOT0 high + USB) with ``dfu-util``
  (``apt-get install dfu-util``): ``dfu-util -a 0 -s 0x08000000 -D IMAGE.bin``, an upload of the
  same range to compare, and ``:leave`` to start the firmware.

Every failure is a :class:`FlashError` with one sentence (no device, port missing, port busy,
wrong chip, tool not installed, verification mismatch). ``progress(stage, percent)`` is called
with stage lines (``percent=None``) and with the tool's percentages.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from .targets.stm32f405 import BOARD as STM32F405

# The boards this module flashes, from their descriptions (targets/stm32f405.py).
FLASH_BASE = STM32F405.flash_origin
CHIP_IDS = {b.name: b.bootloader_chip_id for b in (STM32F405,)}
PYOCD_TARGETS = {b.name: b.pyocd_target for b in (STM32F405,)}
METHODS = ("uart", "stlink", "dfu")
DEFAULT_BAUD = 115200
Progress = Callable[[str, "float | None"], None]


class FlashError(RuntimeError):
    """Flashing failed; the message is one sentence saying why and what to do."""


def no_progress(stage: str, percent: float | None = None) -> None:
    pass


def _tool(name: str, install: str) -> str:
    """The path of ``name`` (the venv's bin first), or a FlashError naming its package."""
    local = Path(sys.executable).parent / name
    path = str(local) if local.is_file() and os.access(local, os.X_OK) else shutil.which(name)
    if not path:
        raise FlashError(f"{name} not installed: {install}")
    return path


def _run(cmd: list[str], progress: Progress, stage: str, timeout: float) -> tuple[int, str]:
    """Run a tool, feeding every ``NN%`` it prints to ``progress``; returns (status, output)."""
    progress(stage, None)
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as e:
        raise FlashError(f"cannot run {cmd[0]}: {e.strerror}") from None
    out = bytearray()
    line = bytearray()
    last = None
    import select
    import time

    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            proc.kill()
            proc.wait()
            raise FlashError(f"{Path(cmd[0]).name} did not finish within {timeout:.0f} s; "
                             "check the connection and reset the board")
        r, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
        if not r:
            continue
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        out += chunk
        for b in chunk:
            if b in (0x0D, 0x0A):
                m = re.search(rb"(\d+(?:\.\d+)?)\s*%", bytes(line))
                if m and float(m.group(1)) != last:
                    last = float(m.group(1))
                    progress(stage, last)
                line.clear()
            else:
                line.append(b)
    m = re.search(rb"(\d+(?:\.\d+)?)\s*%", bytes(line))
    if m and float(m.group(1)) != last:
        progress(stage, float(m.group(1)))
    status = proc.wait()
    return status, out.decode(errors="replace")


def _last_line(out: str) -> str:
    lines = [s.strip() for s in out.replace("\r", "\n").splitlines() if s.strip()]
    return lines[-1] if lines else "no output"


# ---- the serial port: missing, busy, permission ----

def is_pty(port: str) -> bool:
    try:
        return 136 <= os.major(os.stat(port).st_rdev) <= 143 or port.startswith("/dev/pts/")
    except OSError:
        return False


def _holders(port: str) -> list[str]:
    """Other processes with ``port`` open (Linux /proc), as 'PID (name)'."""
    try:
        target = os.path.realpath(port)
        found = []
        for fd in glob.glob("/proc/[0-9]*/fd/*"):
            pid = fd.split("/")[2]
            if pid == str(os.getpid()):
                continue
            try:
                if os.readlink(fd) == target:
                    name = Path(f"/proc/{pid}/comm").read_text().strip()
                    entry = f"{pid} ({name})"
                    if entry not in found:
                        found.append(entry)
            except OSError:
                continue
        return found
    except OSError:
        return []


def check_serial_port(port: str) -> None:
    """One sentence if ``port`` does not exist, is not accessible or is held by another program
    (an exclusive lock, TIOCEXCL, or another process with it open)."""
    if "://" in port:
        raise FlashError(f"{port}: stm32flash needs a serial device path such as /dev/ttyUSB0, not a URL")
    if not os.path.exists(port):
        raise FlashError(f"serial port {port} does not exist: connect the board's USB-serial adapter "
                         "and pass its port with --port")
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.EBUSY:
            raise FlashError(f"serial port {port} is busy: another program holds it open; close it "
                             "(serial monitor, ModemManager, squeezeedge send) and retry") from None
        if e.errno == errno.EACCES:
            raise FlashError(f"no permission to open {port}: add yourself to the dialout group "
                             "(sudo usermod -aG dialout $USER) and log in again") from None
        raise FlashError(f"cannot open serial port {port}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise FlashError(f"serial port {port} is busy: another program holds it locked; close it "
                             "(serial monitor, squeezeedge send) and retry") from None
    finally:
        os.close(fd)
    if not is_pty(port):  # a pty's slave is held by whoever serves it; only real ports
        holders = _holders(port)
        if holders:
            raise FlashError(f"serial port {port} is busy: held open by {', '.join(holders)}; "
                             "close that program and retry")


def default_serial_port() -> str:
    ports = sorted(glob.glob("/dev/ttyUSB*") + glob.glob("/dev/ttyACM*"))
    if len(ports) == 1:
        return ports[0]
    if not ports:
        raise FlashError("no serial port found (no /dev/ttyUSB* or /dev/ttyACM*): connect the board's "
                         "USB-serial adapter or pass --port")
    raise FlashError(f"several serial ports found ({', '.join(ports)}): choose one with --port")


# ---- the methods ----

class UartFlasher:
    """stm32flash over the ROM UART bootloader (AN3155)."""

    install = "apt-get install stm32flash"

    def __init__(self, port: str | None, board: str = "stm32f405", baud: int = DEFAULT_BAUD,
                 serial_mode: str | None = None, timeout: float = 300.0):
        self.tool = _tool("stm32flash", self.install)
        self.port = port or default_serial_port()
        self.board = board
        self.baud = baud
        self.timeout = timeout
        self.serial_mode = serial_mode  # None: 8e1 (what the ROM wants), 8n1 on a pty

    def _base(self) -> list[str]:
        mode = self.serial_mode or ("8n1" if is_pty(self.port) else "8e1")
        return [self.tool, "-m", mode, "-b", str(self.baud)]

    def _explain(self, out: str) -> FlashError:
        port = self.port
        if "Resource busy" in out or "Device or resource busy" in out:
            return FlashError(f"serial port {port} is busy: another program holds it open; close it and retry")
        if "Permission denied" in out:
            return FlashError(f"no permission to open {port}: add yourself to the dialout group "
                              "(sudo usermod -aG dialout $USER) and log in again")
        if "Failed to open port" in out or "Cannot handle device" in out:
            return FlashError(f"cannot open serial port {port}: check that it exists and is a serial device")
        m = re.search(r"Unknown/unsupported device \(Device ID: (0x[0-9a-fA-F]+)\)", out)
        if m:
            return self._wrong_chip(int(m.group(1), 16))
        if "Failed to init device" in out or "Failed to get device" in out or "timeout" in out.lower():
            return FlashError(f"no STM32 bootloader answered on {port}: set BOOT0 high, reset the board and "
                              "check that TX/RX are crossed and the baud rate is supported")
        if "Failed to write memory" in out or "Failed to read memory" in out:
            return FlashError(f"the bootloader on {port} refused a write or read-back: the flash may be "
                              "write/read protected (stm32flash -k / -u) or the line is noisy; retry at a "
                              "lower --baud")
        if "verification" in out.lower() or "Failed to verify" in out:
            return FlashError(f"verification failed on {port}: the flash does not hold the image; "
                              "retry at a lower --baud")
        return FlashError(f"stm32flash failed on {port}: {_last_line(out)}")

    def _wrong_chip(self, pid: int) -> FlashError:
        want = CHIP_IDS[self.board]
        return FlashError(f"wrong chip on {self.port}: the bootloader reports chip id 0x{pid:03x}, but the "
                          f"{self.board} firmware needs 0x{want:03x} (STM32F405/407); check the board")

    def chip_id(self, progress: Progress = no_progress) -> int:
        status, out = _run(self._base() + [self.port], progress, "connecting to the bootloader", min(self.timeout, 30))
        m = re.search(r"Device ID\s*:\s*(0x[0-9a-fA-F]+)", out)
        if status != 0 or not m:
            raise self._explain(out)
        return int(m.group(1), 16)

    def flash(self, image: Path, verify: bool = True, progress: Progress = no_progress) -> None:
        check_serial_port(self.port)
        pid = self.chip_id(progress)
        if pid != CHIP_IDS[self.board]:
            raise self._wrong_chip(pid)
        progress(f"chip id 0x{pid:03x} (STM32F405/407) on {self.port}", None)
        cmd = self._base() + ["-w", str(image)] + (["-v"] if verify else []) + ["-g", hex(FLASH_BASE), self.port]
        status, out = _run(cmd, progress, "writing and verifying" if verify else "writing", self.timeout)
        if status != 0 or "Done." not in out:
            raise self._explain(out)
        progress("started the firmware at 0x08000000", None)


class StlinkFlasher:
    """pyOCD over an ST-Link / CMSIS-DAP probe."""

    install = "pip install pyocd"

    def __init__(self, probe: str | None = None, board: str = "stm32f405", timeout: float = 300.0):
        self.tool = _tool("pyocd", self.install)
        self.probe = probe
        self.target = PYOCD_TARGETS[board]
        self.timeout = timeout

    def _common(self) -> list[str]:
        return ["-W", "-t", self.target] + (["-u", self.probe] if self.probe else [])

    def _explain(self, out: str) -> FlashError:
        if "No connected debug probes" in out or "No target device available" in out or "No probe" in out:
            return FlashError("no ST-Link or CMSIS-DAP probe found: plug in the board's ST-Link over USB "
                              "(pyocd list shows the probes it sees)")
        if "not recognized" in out.lower() or "unknown target" in out.lower():
            return FlashError(f"pyocd does not know the {self.target}: run pyocd pack install {self.target}")
        if "LIBUSB_ERROR_ACCESS" in out or "Permission denied" in out:
            return FlashError("no permission to open the ST-Link: install the probe's udev rules "
                              "(pyocd's udev/ directory) and replug it")
        if "IDCODE" in out or "Target type" in out or "does not match" in out:
            return FlashError(f"the probe's target is not an {self.target}: {_last_line(out)}")
        return FlashError(f"pyocd failed: {_last_line(out)}")

    def flash(self, image: Path, verify: bool = True, progress: Progress = no_progress) -> None:
        cmd = [self.tool, "flash"] + self._common()
        if image.suffix == ".bin":
            cmd += ["--format", "bin", "-a", hex(FLASH_BASE)]
        status, out = _run(cmd + [str(image)], progress, "writing over SWD", self.timeout)
        if status != 0:
            raise self._explain(out)
        if verify and image.suffix == ".bin":
            with tempfile.TemporaryDirectory() as tmp:
                back = Path(tmp) / "readback.bin"
                size = image.stat().st_size
                status, out = _run([self.tool, "cmd"] + self._common() +
                                   ["-c", f"savemem {hex(FLASH_BASE)} {size} {back}"], progress, "verifying",
                                   self.timeout)
                if status != 0 or not back.is_file():
                    raise self._explain(out)
                if back.read_bytes() != image.read_bytes():
                    raise FlashError("verification failed: the flash read back over SWD differs from the image")


class DfuFlasher:
    """dfu-util over the ROM USB DFU bootloader (DfuSe, alt 0 = internal flash)."""

    install = "apt-get install dfu-util"

    def __init__(self, serial: str | None = None, timeout: float = 300.0):
        self.tool = _tool("dfu-util", self.install)
        self.serial = serial
        self.timeout = timeout

    def _common(self) -> list[str]:
        return ["-a", "0"] + (["-S", self.serial] if self.serial else [])

    def _explain(self, out: str) -> FlashError:
        if "No DFU capable USB device" in out:
            return FlashError("no USB DFU device found: set BOOT0 high, connect the board's USB and reset it "
                              "(dfu-util -l lists DFU devices)")
        if "More than one DFU capable USB device" in out:
            return FlashError("several USB DFU devices found: choose one with --port SERIAL")
        if "LIBUSB_ERROR_ACCESS" in out or "Cannot open DFU device" in out:
            return FlashError("no permission to open the USB DFU device: install a udev rule for 0483:df11 "
                              "or run as root")
        if "LIBUSB_ERROR_BUSY" in out or "Cannot claim interface" in out:
            return FlashError("the USB DFU device is busy: another program has claimed it; close it and retry")
        return FlashError(f"dfu-util failed: {_last_line(out)}")

    def flash(self, image: Path, verify: bool = True, progress: Progress = no_progress) -> None:
        if image.suffix != ".bin":
            raise FlashError(f"{image}: dfu-util writes raw .bin images; pass firmware.bin")
        size = image.stat().st_size
        status, out = _run([self.tool] + self._common() + ["-s", f"{hex(FLASH_BASE)}" + ("" if verify else ":leave"),
                                                           "-D", str(image)], progress, "writing over USB DFU",
                           self.timeout)
        if status != 0:
            raise self._explain(out)
        if verify:
            with tempfile.TemporaryDirectory() as tmp:
                back = Path(tmp) / "readback.bin"
                status, out = _run([self.tool] + self._common() + ["-s", f"{hex(FLASH_BASE)}:{size}:leave",
                                                                   "-U", str(back)], progress, "verifying",
                                   self.timeout)
                if status != 0 or not back.is_file():
                    raise self._explain(out)
                if back.read_bytes()[:size] != image.read_bytes():
                    raise FlashError("verification failed: the flash read back over USB DFU differs from the image")


# ---- images ----

def resolve_image(path, method: str) -> Path:
    """IMAGE (.bin/.hex/.elf) or a build directory (its firmware.bin) -> the file to flash."""
    p = Path(path)
    if p.is_dir():
        cands = [p / "firmware.bin"] + sorted(p.glob("*.bin"))
        for c in cands:
            if c.is_file():
                return c
        raise FlashError(f"{p} holds no firmware.bin: run squeezeedge build --board stm32f405 -o {p}")
    if not p.is_file():
        raise FlashError(f"{p}: no such image; pass firmware.bin or the build directory")
    if p.suffix == ".elf" and method != "stlink":
        sibling = p.with_suffix(".bin")
        if sibling.is_file():
            return sibling
        objcopy = shutil.which("arm-none-eabi-objcopy")
        if not objcopy:
            raise FlashError(f"{p}: {method} needs the .bin image (apt-get install binutils-arm-none-eabi "
                             "to convert the ELF)")
        out = Path(tempfile.mkdtemp(prefix="flash-")) / (p.stem + ".bin")
        subprocess.run([objcopy, "-O", "binary", str(p), str(out)], check=True)
        return out
    if p.suffix == ".hex" and method == "dfu":
        raise FlashError(f"{p}: dfu-util writes raw .bin images; pass firmware.bin")
    return p


def flash_stm32(image_path=None, method: str = "uart", port: str | None = None, verify: bool = True,
                progress: Progress | None = None, board: str = "stm32f405", baud: int = DEFAULT_BAUD,
                timeout: float = 300.0) -> Path:
    """Write ``image_path`` (a .bin/.hex/.elf or a build directory; None: build the firmware for
    ``board``) to the board's flash at 0x08000000 with ``method`` (uart, stlink, dfu), verify it,
    start it. ``port``: the serial port (uart), the probe's unique id (stlink) or the DFU
    device's serial (dfu). Returns the image flashed; raises FlashError (one sentence)."""
    say = progress or no_progress
    if board not in CHIP_IDS:
        raise FlashError(f"unknown board {board!r}; available: {', '.join(CHIP_IDS)}")
    if method not in METHODS:
        raise FlashError(f"unknown flash method {method!r}: use {', '.join(METHODS)}")
    if image_path is None:
        from .boards import build_board

        image_path = build_board(board, progress=lambda s: say(s, None)).bin
    image = resolve_image(image_path, method)
    if method == "uart":
        flasher = UartFlasher(port, board, baud, timeout=timeout)
    elif method == "stlink":
        flasher = StlinkFlasher(port, board, timeout=timeout)
    else:
        flasher = DfuFlasher(port, timeout=timeout)
    say(f"flashing {image} ({image.stat().st_size:,} bytes) with {method}", None)
    flasher.flash(image, verify, say)
    return image
