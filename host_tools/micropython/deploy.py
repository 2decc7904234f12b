"""Deploy a ``squeezeedge build --micropython`` folder to a MicroPython board with mpremote.

The folder holds ``squeezeedge.mpy`` (the native module), ``squeezeedge.bin`` (the weights blob)
and ``manifest.json`` (``arch``, ``mpy_version``, ``files``). ``deploy(folder, port)``:

1. connects with mpremote's own transport (``mpremote.transport_serial.SerialTransport``: serial
   ports, ``/dev/pts/N`` and ``socket://HOST:PORT``), used as a library rather than a subprocess
   so every failure comes back as an exception we can turn into one sentence;
2. reads the board's ``sys.implementation._mpy`` and refuses, before copying anything, when the
   .mpy's version or architecture (its 4-byte header, mpyfile.py) is not one the board loads;
3. puts the blob into ROMFS partition 0 when the board can write it (``vfs.rom_ioctl`` with a
   partition object, or with ``GET_MIN_PREPARE`` > 0), through mpremote's own ``romfs deploy``
   code, as an image whose file data is 4-byte aligned (ports.romfs_image); otherwise it copies
   the blob to the filesystem next to the .mpy;
4. copies the .mpy to the board's writable filesystem (the current directory if writable, else
   ``/flash``, else ``/``) and verifies every file by its SHA-256 computed on the device
   (``verify(folder, port)`` does that check alone, later).

Files travel base64-encoded in 4 KB chunks (``binascii.a2b_base64`` on the device; mpremote's own
``fs_writefile`` sends ``repr(bytes)`` in small chunks, about 3.5 characters a byte for binary data):
measured on the qemu board, 32 KB took 8.4 s with mpremote's way and 3.6 s this way. A board without
``binascii`` gets mpremote's way.

MicroPython's stock qemu port has no filesystem and a read-only ROMFS (measured: ``vfs.mount()`` is
empty, ``os.listdir('/')`` is ``[]``, ``rom_ioctl(3, ...)`` and ``rom_ioctl(6, 0)`` return
-EINVAL), so a deploy there stops with one sentence saying so; use ``mpremote mount`` or a
preloaded ROMFS image (ports.MicroPythonQemu) there instead, or the filesystem variant of the
qemu firmware (``ports.qemu(board, filesystem=True)``: a LittleFS at ``/flash``), which is what
deploy's tests run against; with ``writable_romfs=True`` as well, its ROMFS takes mpremote's writes,
so the tests run step 3's ROMFS path too.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import mpyfile
from .source import MicroPythonError

MODULE = "squeezeedge.mpy"
BLOB = "squeezeedge.bin"
MANIFEST = "manifest.json"
ROMFS_ID = 0
CHUNK = 4096  # bytes per exec when copying (base64 on the wire)


class DeployError(MicroPythonError):
    """The folder could not be deployed; the message is one sentence saying why and what to do."""


@dataclass
class DeployReport:
    port: str
    machine: str                          # sys.implementation._machine
    board_format: mpyfile.MpyFormat
    module_format: mpyfile.MpyFormat
    placed: dict[str, str] = field(default_factory=dict)   # local file -> path on the device
    sha256: dict[str, str] = field(default_factory=dict)
    blob_in_romfs: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        where = ", ".join(f"{k} -> {v}" for k, v in self.placed.items())
        checked = "verified by SHA-256" if self.sha256 else "not verified"
        return (f"deployed to {self.machine} at {self.port} ({self.board_format.describe()}): {where}; "
                f"{checked}; {self.seconds:.1f} s")


# ---- the folder ----

def read_folder(folder) -> tuple[dict, mpyfile.MpyFormat]:
    """The manifest and the .mpy's format; DeployError when the folder is not a complete build or
    its manifest disagrees with the .mpy's header."""
    folder = Path(folder)
    missing = [n for n in (MODULE, BLOB, MANIFEST) if not (folder / n).is_file()]
    if missing:
        raise DeployError(f"{folder} is not a `squeezeedge build --micropython` folder (missing {', '.join(missing)}); "
                          "build one with `squeezeedge build --micropython --arch ARCH -o DIR`")
    manifest = json.loads((folder / MANIFEST).read_text())
    try:
        fmt = mpyfile.MpyFormat.from_file(folder / MODULE)
    except ValueError as e:
        raise DeployError(f"{e}; rebuild the folder") from None
    said = (manifest.get("arch"), tuple(manifest.get("mpy_version", ())))
    if said != (fmt.arch, fmt.version_pair):
        raise DeployError(f"{folder / MANIFEST} says {said[0]} .mpy {said[1]}, but {MODULE} is {fmt.describe()}: "
                          "the folder is inconsistent; rebuild it")
    return manifest, fmt


# ---- the connection ----

def _open_error(port: str, exc: Exception) -> DeployError:
    """One sentence for why ``port`` cannot be opened (pyserial's own exception in ``exc``)."""
    text = str(exc)
    if "exclusively lock" in text or "Resource temporarily unavailable" in text or "busy" in text.lower():
        return DeployError(f"{port} is busy: another program has it open (a serial monitor, another mpremote, "
                           "an IDE); close it and try again")
    if "Connection refused" in text or "No such file" in text or "could not open port" in text.lower() \
            or "Errno 2" in text or "Errno 111" in text:
        return DeployError(f"no board at {port}: nothing answers there (check the cable and the port name; "
                           "`mpremote devs` lists serial ports)")
    return DeployError(f"cannot open {port}: {text}")


def connect(port: str):
    """mpremote's SerialTransport on ``port`` (exclusive), in the raw REPL; DeployError otherwise."""
    import serial
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    try:
        transport = SerialTransport(port, baudrate=115200, exclusive=True)
    except TransportError:
        # mpremote drops pyserial's reason ("failed to access PORT"): open it once more to learn it.
        try:
            serial.serial_for_url(port, baudrate=115200, exclusive=True, timeout=1).close()
        except (OSError, ValueError) as e:
            raise _open_error(port, e) from None
        raise DeployError(f"cannot open {port} (it opened on a second try: retry)") from None
    try:
        transport.enter_raw_repl(soft_reset=True)
    except (TransportError, OSError) as e:
        with contextlib.suppress(Exception):
            transport.close()
        raise DeployError(f"{port} opened, but no MicroPython REPL answers there ({e}): is the board running "
                          "MicroPython, and is no other program talking to it?") from None
    return transport


_PROBE = """\
import sys, os
try:
    import vfs
except ImportError:
    vfs = None
def _se_writable(p):
    try:
        st = os.statvfs(p)
        n = (p.rstrip('/') or '') + '/.se_probe'
        open(n, 'wb').close()
        os.remove(n)
        return st[0] * st[4]
    except Exception:
        return -1
_se_dirs = []
for _se_d in (os.getcwd(), '/flash', '/'):
    if _se_d not in _se_dirs:
        _se_dirs.append(_se_d)
_se_fs = [(d, _se_writable(d)) for d in _se_dirs]
_se_rom = None
if vfs is not None and hasattr(vfs, 'rom_ioctl') and vfs.rom_ioctl(1) > 0:
    _se_dev = vfs.rom_ioctl(2, 0)
    _se_rom = (hasattr(_se_dev, 'ioctl') or vfs.rom_ioctl(6, 0) > 0,
               _se_dev.ioctl(4, 0) * _se_dev.ioctl(5, 0) if hasattr(_se_dev, 'ioctl') else len(_se_dev))
"""


@dataclass(frozen=True)
class BoardInfo:
    machine: str
    format: mpyfile.MpyFormat
    fs_dir: str | None          # a writable directory, None when the board has none
    fs_free: int
    romfs_writable: bool
    romfs_size: int


def probe(transport) -> BoardInfo:
    """What the board offers: its .mpy format, a writable directory, a writable ROMFS."""
    transport.exec(_PROBE)
    mpy = transport.eval("getattr(sys.implementation, '_mpy', None)")
    machine = transport.eval("getattr(sys.implementation, '_machine', sys.platform)")
    if mpy is None:
        raise DeployError(f"the MicroPython on the board ({machine}) cannot load .mpy files "
                          "(no sys.implementation._mpy): use a firmware built with the user C module instead")
    fs = [(d, free) for d, free in transport.eval("_se_fs") if free >= 0]
    rom = transport.eval("_se_rom")
    return BoardInfo(machine, mpyfile.MpyFormat.from_sys_mpy(mpy), fs[0][0] if fs else None,
                     fs[0][1] if fs else 0, bool(rom and rom[0]), rom[1] if rom else 0)


# ---- copying ----

def _device_sha256(transport, path: str) -> str | None:
    """The SHA-256 of ``path`` on the device (hashlib there, else read back); None: no such file."""
    from mpremote.transport import TransportError

    try:
        transport.fs_stat(path)
    except OSError:
        return None
    try:
        return transport.fs_hashfile(path, "sha256").hex()
    except (TransportError, OSError):  # no hashlib.sha256 on the device: read the file back
        return hashlib.sha256(transport.fs_readfile(path)).hexdigest()


def _last_line(e: Exception) -> str:
    text = getattr(e, "error_output", None) or str(e) or type(e).__name__
    lines = [x.strip() for x in str(text).splitlines() if x.strip()]
    return lines[-1] if lines else type(e).__name__


def _copy(transport, data: bytes, dest: str, bar) -> None:
    """Write ``data`` to ``dest`` on the device, base64 in CHUNK-byte pieces (mpremote's
    ``fs_writefile`` when the board has no binascii); DeployError for a failed write."""
    from mpremote.transport import TransportError, TransportExecError

    def advance(done: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    try:
        try:
            transport.exec("import binascii\n_se_d = binascii.a2b_base64")
        except TransportExecError:
            transport.fs_writefile(dest, data, chunk_size=1024, progress_callback=lambda done, total: advance(done))
            return
        transport.exec(f"_se_f = open({dest!r}, 'wb')\n_se_w = _se_f.write")
        try:
            for i in range(0, len(data), CHUNK):
                chunk = binascii.b2a_base64(data[i:i + CHUNK], newline=False).decode()
                transport.exec(f"_se_w(_se_d({chunk!r}))")
                advance(min(i + CHUNK, len(data)))
        finally:
            with contextlib.suppress(TransportError):
                transport.exec("_se_f.close()\ndel _se_f, _se_w, _se_d")
    except (TransportError, OSError) as e:
        why = _last_line(e)
        hint = "the board's filesystem is full: delete files on it" if "ENOSPC" in why or "28" in why.split() \
            else "check the connection and run the deploy again"
        raise DeployError(f"writing {dest} on the board failed ({why}): {hint}") from None


class _RomfsState:
    """The two things mpremote's ``_do_romfs_deploy`` asks of its ``state``."""

    def __init__(self, transport):
        self.transport = transport

    def ensure_raw_repl(self, soft_reset=None):
        pass

    def did_action(self):
        pass


class _ProgressLines(io.TextIOBase):
    """Turns mpremote's "Writing at offset N" lines into progress-bar updates."""

    def __init__(self, bar):
        self.bar = bar

    def write(self, s):
        for m in re.finditer(r"Writing at offset (\d+)", s):
            if self.bar is not None:
                self.bar.update(int(m.group(1)) - self.bar.n)
        return len(s)


def _deploy_romfs(transport, blob: Path, tmp_dir: Path, bar) -> None:
    """Write a ROMFS image holding ``blob`` to partition ROMFS_ID with mpremote's ``romfs deploy``
    code and mount it at ``/rom``; ``bar`` (tqdm or None) follows the image's bytes to the end.
    DeployError (one sentence) when mpremote or the board fails."""
    import argparse

    from mpremote.commands import CommandError, _do_romfs_deploy
    from mpremote.transport import TransportError

    from .ports import romfs_image

    image = romfs_image({BLOB: blob}, tmp_dir / "squeezeedge.romfs")
    if bar is not None:
        bar.total = image.stat().st_size  # the image (header, padding, blob) is what is written
        bar.refresh()
    args = argparse.Namespace(path=str(image), partition=ROMFS_ID, mpy=False)
    try:
        with contextlib.redirect_stdout(_ProgressLines(bar)):
            _do_romfs_deploy(_RomfsState(transport), args)
        transport.exec("import vfs\ntry:\n vfs.mount(vfs.VfsRom(vfs.rom_ioctl(2,0)),'/rom')\nexcept OSError:\n pass")
    except (TransportError, CommandError, OSError) as e:
        raise DeployError(f"writing the board's ROMFS (partition {ROMFS_ID}) failed ({_last_line(e)}): check the "
                          "connection and run the deploy again, or deploy with --no-romfs") from None
    except SystemExit:  # mpremote exits (after printing why) for an invalid or too large image
        raise DeployError(f"mpremote refused the ROMFS image ({image.stat().st_size:,} bytes) for partition "
                          f"{ROMFS_ID}: deploy with --no-romfs to put {BLOB} on the filesystem") from None
    if bar is not None:  # mpremote reports each chunk's offset before writing it: the last one is done too
        bar.update(bar.total - bar.n)


def _check(transport, folder: Path, placed: dict[str, str]) -> dict[str, str]:
    """``{name: sha256}`` for every placed file whose device copy hashes like the local file;
    DeployError (one sentence) for the first one that is missing or differs."""
    from mpremote.transport import TransportError

    sums = {}
    for name, dest in placed.items():
        local = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        try:
            remote = _device_sha256(transport, dest)
        except (TransportError, OSError) as e:
            raise DeployError(f"could not read {dest} back from the board ({_last_line(e)}): check the "
                              "connection and verify again") from None
        if remote is None:
            raise DeployError(f"{dest} is not on the board: deploy {folder} again")
        if remote != local:
            raise DeployError(f"{dest} on the board does not match {folder / name} (SHA-256 {remote[:12]} "
                              f"!= {local[:12]}): the copy is corrupted or was changed; deploy again")
        sums[name] = local
    return sums


def _placement(transport, info: "BoardInfo") -> dict[str, str]:
    """Where a deploy to this board put the files: the blob in ROMFS when ``/rom`` holds it."""
    base = (info.fs_dir or "").rstrip("/")
    placed = {MODULE: f"{base}/{MODULE}", BLOB: f"{base}/{BLOB}"}
    try:
        transport.fs_stat(f"/rom/{BLOB}")
        placed[BLOB] = f"/rom/{BLOB}"
    except OSError:
        pass
    return placed


def verify(folder, port: str) -> dict[str, str]:
    """Check that the board at ``port`` holds ``folder``'s files as a deploy puts them (the .mpy
    in its writable directory, the blob in ``/rom`` or next to the .mpy), by SHA-256 computed on
    the device. Returns ``{name: sha256}``; DeployError (one sentence) for a missing or differing
    file, no board or a busy port."""
    folder = Path(folder)
    read_folder(folder)
    transport = connect(port)
    try:
        info = probe(transport)
        if info.fs_dir is None:
            raise DeployError(f"the board ({info.machine}) has no writable filesystem, so nothing was deployed to it")
        return _check(transport, folder, _placement(transport, info))
    finally:
        with contextlib.suppress(Exception):
            transport.exit_raw_repl()
        with contextlib.suppress(Exception):
            transport.close()


def _existing_size(transport, path: str) -> int:
    try:
        return transport.fs_stat(path).st_size
    except OSError:
        return 0


def deploy(folder, port: str, progress=None, verify: bool = True, replace_romfs: bool = True) -> DeployReport:
    """Copy ``folder`` (from ``squeezeedge build --micropython``) to the MicroPython board at
    ``port`` (a serial port, ``/dev/pts/N`` or ``socket://HOST:PORT``). ``progress``: a callable
    for one-line messages; when given, the copies also show tqdm bars. Writing ROMFS replaces
    partition 0's whole content (``replace_romfs=False`` puts the blob on the filesystem instead).
    Raises DeployError (one sentence) for an incomplete folder, no board, a busy port, a
    MicroPython whose .mpy version or arch does not match, no room or no writable filesystem."""
    from tqdm import tqdm

    say = progress or (lambda s: None)
    t0 = time.monotonic()
    folder = Path(folder)
    _manifest, fmt = read_folder(folder)
    module, blob = (folder / MODULE).read_bytes(), (folder / BLOB).read_bytes()
    transport = connect(port)
    try:
        info = probe(transport)
        why = mpyfile.refusal(info.format, fmt, MODULE)
        if why:
            raise DeployError(why[0].upper() + why[1:])
        report = DeployReport(port, info.machine, info.format, fmt)
        use_romfs = replace_romfs and info.romfs_writable and len(blob) + 64 <= info.romfs_size
        if info.fs_dir is None:
            raise DeployError(f"the board ({info.machine}) has no writable filesystem to copy {MODULE} to"
                              + ("" if info.romfs_size else " and no ROMFS")
                              + ("" if use_romfs or not info.romfs_size else " (and its ROMFS is read-only)")
                              + ": load the module with `mpremote mount DIR` instead, or flash a MicroPython "
                                "build that has a filesystem")
        base = info.fs_dir.rstrip("/")
        todo = [(MODULE, module)] + ([] if use_romfs else [(BLOB, blob)])
        need = sum(len(data) for _, data in todo)
        # the files being replaced make room for their new versions
        free = info.fs_free + sum(_existing_size(transport, f"{base}/{name}") for name, _ in todo)
        if need > free:
            raise DeployError(f"the board's filesystem at {info.fs_dir} has {free:,} bytes free, "
                              f"the files need {need:,}: delete files on the board or use a smaller model")
        if not use_romfs:
            # the module looks in /rom first: an older blob there would shadow the new one
            rom = _device_sha256(transport, f"/rom/{BLOB}")
            if rom is not None and rom != hashlib.sha256(blob).hexdigest():
                raise DeployError(f"the board's ROMFS holds another /rom/{BLOB}, which the module loads before "
                                  f"{base}/{BLOB}: " + ("deploy without --no-romfs so that it is replaced"
                                                        if info.romfs_writable and not replace_romfs else
                                                        "remove that ROMFS image from the board first"))
        bar_for = (lambda name, n: tqdm(total=n, unit="B", unit_scale=True, desc=name, leave=False)) \
            if progress else (lambda name, n: None)
        if use_romfs:
            import tempfile

            say(f"writing {BLOB} ({len(blob):,} bytes) into the board's ROMFS (partition {ROMFS_ID})")
            with tempfile.TemporaryDirectory() as tmp:
                bar = bar_for("ROMFS", len(blob))
                try:
                    _deploy_romfs(transport, folder / BLOB, Path(tmp), bar)
                finally:
                    if bar is not None:
                        bar.close()
            report.placed[BLOB] = f"/rom/{BLOB}"
            report.blob_in_romfs = True
        for name, data in todo:
            dest = f"{base}/{name}"
            say(f"copying {name} ({len(data):,} bytes) to {dest}")
            bar = bar_for(name, len(data))
            try:
                _copy(transport, data, dest, bar)
            finally:
                if bar is not None:
                    bar.close()
            report.placed[name] = dest
        if verify:
            say("verifying by SHA-256 on the board")
            report.sha256 = _check(transport, folder, report.placed)
        report.seconds = time.monotonic() - t0
        return report
    finally:
        with contextlib.suppress(Exception):
            transport.exit_raw_repl()
        with contextlib.suppress(Exception):
            transport.close()
