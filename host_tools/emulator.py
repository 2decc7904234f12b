"""The host emulator: the firmware core + a model package, built for this machine and run as a
process that serves the line protocol (firmware/PROTOCOL.md) on stdin/stdout, TCP or a pty.

Library first::

    from squeezeedge.emulator import Emulator, prepare_package, build_emulator
    pkg = prepare_package(model)              # IntModel, .semodel path or package dir
    with Emulator(build_emulator(pkg), "tcp:0") as emu:
        print(emu.url)                        # socket://127.0.0.1:PORT (or a /dev/pts/N path)

Builds are cached (``$SQUEEZEEDGE_CACHE`` or the temp dir) under a key made of every source
byte and the build flags, so a second run starts at once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .models.model_file import IntModel

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE_DIR = ROOT / "firmware"
CORE_DIR = FIRMWARE_DIR / "core"
HOST_PORT_DIR = FIRMWARE_DIR / "ports" / "host"
CACHE_DIR = Path(os.environ.get("SQUEEZEEDGE_CACHE", Path(tempfile.gettempdir()) / "squeezeedge-c-cache"))
PACKAGE_FILES = ("model.c", "model.h", "model_meta.c", "model_meta.h")
READY_TIMEOUT = 15.0


class EmulatorError(RuntimeError):
    """The emulator could not be prepared, built or started (the message says what to do)."""


def _model_digest(model: IntModel) -> str:
    from .compiler.meta import META_FORMAT_VERSION

    h = hashlib.sha256()
    meta = {"meta_format": META_FORMAT_VERSION, "config": model.config.to_dict(), "vocab": model.vocab, "intents": model.intents, "slots": model.slots,
            "oos_threshold": model.oos_threshold, "value_table": model.value_table,
            "intent_slots": getattr(model, "intent_slots", None)}
    h.update(json.dumps(meta, sort_keys=True).encode())
    for name in sorted(model.arrays):
        arr = model.arrays[name]
        h.update(f"{name}:{arr.dtype}:{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()[:20]


def prepare_package(source, progress=None) -> Path:
    """A package directory with model.c/.h and model_meta.c/.h for ``source``: an IntModel, a
    ``.semodel`` path (compiled into the cache, once) or an existing package directory."""
    say = progress or (lambda s: None)
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        pkg = Path(source)
        missing = [f for f in PACKAGE_FILES if not (pkg / f).is_file()]
        if missing:
            raise EmulatorError(f"{pkg}: not a complete model package (missing {', '.join(missing)}); "
                                "pass the .semodel file instead and it will be compiled")
        return pkg
    if isinstance(source, (str, Path)):
        model = IntModel.load(source)
    elif isinstance(source, IntModel):
        model = source
    else:
        raise EmulatorError(f"cannot make a model package from {type(source).__name__}")
    pkg = CACHE_DIR / f"pkg-{_model_digest(model)}"
    if all((pkg / f).is_file() for f in PACKAGE_FILES):
        return pkg
    from .compiler.meta import write_meta
    from .compiler.package import compile_model

    say("compiling the model to C (TVM)")
    tmp = Path(tempfile.mkdtemp(prefix="pkg-", dir=_cache_dir()))
    compile_model(model, "host").write(tmp)
    write_meta(model, tmp)
    try:
        os.replace(tmp, pkg)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return pkg


def _cache_dir() -> Path:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    return CACHE_DIR


def _make(package_dir: Path, target: str, product: str, files, sanitize: bool, cc: str, say, mqtt: bool = False) -> Path:
    if shutil.which("make") is None or shutil.which(cc) is None:
        raise EmulatorError(f"building the emulator needs make and {cc}: install build-essential")
    h = hashlib.sha256(f"{target} sanitize={int(sanitize)} cc={cc}{' mqtt=1' if mqtt else ''}".encode())
    for path in sorted(CORE_DIR.glob("*.[ch]")) + sorted(HOST_PORT_DIR.glob("*.[ch]")) + \
            [HOST_PORT_DIR / "Makefile"] + [package_dir / f for f in files]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    out = _cache_dir() / f"{product}-{h.hexdigest()[:20]}{'-san' if sanitize else ''}{'-mqtt' if mqtt else ''}"
    binary = out / product
    if binary.is_file():
        return binary
    say(f"building {product}" + (" (ASan+UBSan)" if sanitize else ""))
    tmp = Path(tempfile.mkdtemp(prefix="build-", dir=_cache_dir()))
    cmd = ["make", "-s", "-C", str(HOST_PORT_DIR), target, f"MODEL_DIR={package_dir.resolve()}", f"BUILD_DIR={tmp}",
           f"CC={cc}"]
    if sanitize:
        cmd.append("SANITIZE=1")
    if mqtt:  # links libmosquitto
        cmd.append("MQTT=1")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise EmulatorError(f"building {product} failed:\n{(r.stdout + r.stderr)[-4000:]}")
    try:
        os.replace(tmp, out)
    except OSError:  # built concurrently by another process
        shutil.rmtree(tmp, ignore_errors=True)
    return binary


def build_emulator(package_dir, sanitize: bool = False, cc: str = "cc", progress=None, mqtt: bool = False) -> Path:
    """Build (or reuse) the emulator binary for a package; returns its path. ``mqtt=True`` adds
    the MQTT transport (``--broker``/``--device``; needs libmosquitto-dev)."""
    return _make(Path(package_dir), "all", "se_emulator", PACKAGE_FILES, sanitize, cc, progress or (lambda s: None),
                 mqtt=mqtt)


def build_tokenizer_tool(meta_dir, sanitize: bool = False, cc: str = "cc") -> Path:
    """Build the tokenizer-only test tool for a directory holding model_meta.c/.h."""
    return _make(Path(meta_dir), "tokenizer", "se_tokenize", ("model_meta.c", "model_meta.h"), sanitize, cc,
                 lambda s: None)


def parse_serial(spec: str) -> list[str]:
    """``pty`` | ``tcp:PORT`` | ``stdio`` → emulator arguments."""
    if spec == "pty":
        return ["--pty"]
    if spec == "stdio":
        return ["--stdio"]
    if spec.startswith("tcp:"):
        port = spec[4:]
        if not port.isdigit() or int(port) > 65535:
            raise EmulatorError(f"--serial {spec}: the port must be a number 0..65535 (0 = any free port)")
        return ["--tcp", port]
    raise EmulatorError(f"--serial {spec!r}: use pty, tcp:PORT or stdio")


class Emulator:
    """A running host emulator process. ``url`` is what ``transport.open_transport`` takes:
    ``socket://127.0.0.1:PORT`` or a pty path (None for stdio, where ``proc`` has the pipes)."""

    def __init__(self, binary, serial: str = "tcp:0", env: dict | None = None, args: list[str] | None = None):
        self.binary = Path(binary)
        self.serial = serial
        self.args = list(args) if args is not None else parse_serial(serial)  # args: e.g. --broker URL --device ID
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.stderr_lines: list[str] = []

    def start(self, timeout: float = READY_TIMEOUT) -> "Emulator":
        stdio = self.serial == "stdio"
        self.proc = subprocess.Popen([str(self.binary), *self.args], stdin=subprocess.PIPE if stdio else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if stdio else subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=self.env)
        ready = threading.Event()

        def pump():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.stderr_lines.append(line)
                if line.startswith("SE_READY"):
                    parts = line.split()
                    if parts[1] == "tcp":
                        self.url = f"socket://{parts[2]}"
                    elif parts[1] == "pty":
                        self.url = parts[2]
                    elif parts[1] == "mqtt":  # SE_READY mqtt HOST:PORT DEVICE
                        self.url = f"mqtt://{parts[2]}"
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or self.proc.poll() is not None and self.url is None and not stdio:
            self.stop()
            raise EmulatorError("the emulator did not start: " + " | ".join(self.stderr_lines[-5:]))
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f:
                try:
                    f.close()
                except OSError:
                    pass
        return self.proc.returncode

    def __enter__(self) -> "Emulator":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_emulator(model_or_package, serial: str = "tcp:0", sanitize: bool = False, progress=None) -> Emulator:
    """Prepare, build and start an emulator; the caller stops it (or uses ``with``)."""
    pkg = prepare_package(model_or_package, progress)
    return Emulator(build_emulator(pkg, sanitize=sanitize, progress=progress), serial).start()


# ---- CLI: squeezeedge emulate ----

def default_model_path() -> Path:
    from .models.engine import DEFAULT_MODEL

    return DEFAULT_MODEL


def add_emulate_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("emulate", help="run the firmware on this machine (host emulator)",
                              description="Build the host emulator for a model (cached) and serve the "
                                          "device protocol in the foreground until interrupted.")
    p.add_argument("--board", default="host", choices=BOARDS,
                   help="host: the POSIX emulator of the firmware (default); stm32f405: the board's real firmware "
                        "image under qemu-system-arm -M netduinoplus2, its USART1 on --serial tcp:PORT; rv32-virt: "
                        "the firmware on the ESP32-C3's ISA under qemu-system-riscv32 -M virt, its UART on "
                        "--serial tcp:PORT")
    p.add_argument("--model", help="a .semodel file or a model package directory (default: the shipped model)")
    p.add_argument("--serial", default="pty", help="pty | tcp:PORT | stdio (default: pty)")
    p.add_argument("--sanitize", action="store_true", help="build with AddressSanitizer and UBSan")
    p.add_argument("--broker", metavar="URL", help="serve over MQTT instead: mqtt://[user:pass@]host[:port]")
    p.add_argument("--mqtt", action="store_true", help="serve over MQTT on an in-process broker (started here)")
    p.add_argument("--device", default="emulator", help="the device id on the broker (default: emulator)")
    p.set_defaults(func=cmd_emulate)
    return p


BOARDS = ("host", "stm32f405", "rv32-virt")  # the boards' own list: host_tools/boards.py


def wait_while_alive(emu: "Emulator") -> int:
    """Block until the emulator exits (an error: it should run until interrupted)."""
    while emu.alive():
        time.sleep(0.2)
    print(f"emulate: the emulator exited with status {emu.proc.returncode}", file=sys.stderr)
    return 1


def cmd_emulate(args) -> int:
    if args.board != "host":
        from .boards import run_board_emulator

        return run_board_emulator(args)
    say = lambda s: print(f"emulate: {s}", file=sys.stderr, flush=True)  # noqa: E731
    if getattr(args, "broker", None) or getattr(args, "mqtt", False):
        from .mqtt import cmd_emulate_mqtt

        return cmd_emulate_mqtt(args, say)
    try:
        source = args.model or default_model_path()
        if not Path(source).exists():
            raise EmulatorError(f"{source}: no such model; pass --model FILE.semodel or a package directory")
        binary = build_emulator(prepare_package(source, say), sanitize=args.sanitize, progress=say)
        argv = [str(binary), *parse_serial(args.serial)]
    except EmulatorError as e:
        print(f"emulate: {e}", file=sys.stderr)
        return 2
    if args.serial == "stdio":  # the protocol on our own stdin/stdout
        proc = subprocess.Popen(argv)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGTERM)
            return proc.wait()
    emu = Emulator(binary, args.serial)
    try:
        emu.start()
        print(f"emulator listening on {emu.url}  (squeezeedge send 'turn on the light' --port {emu.url}); "
              "Ctrl-C stops it", flush=True)
        return wait_while_alive(emu)
    except KeyboardInterrupt:
        return 0
    except EmulatorError as e:
        print(f"emulate: {e}", file=sys.stderr)
        return 2
    finally:
        emu.stop()
