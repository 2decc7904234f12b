"""The host emulator: the firmware core + a model package, built for this machine and run as a
process that serves the line protocol (firmware/PROTOCOL.md) on stdin/stdout, TCP or a pty.

Library first::

    from squeezeedge.emulator import Emulator, prepare_package, build_emulator
    pkg = prepare_package(model)              # IntModel, .semodel path or package dir
    with Emulator(build_emulator(pkg), "tcp:0") as emu:
        print(emu.url)                        # socket://127.0.0.1:PORT (or a /dev/pts/N path)

``names=HomeNames(...)`` tells the emulated device the home's names before it serves (as the host
tools would over the protocol: ``names_add`` lines, passed with ``--init``; names live in the
device's RAM and are lost when it stops).

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

from .models.gazetteer import HomeNames, NamesError
from .models.model_file import IntModel
from .resources import CACHE_DIR, CORE_DIR, PORTS_DIR

HOST_PORT_DIR = PORTS_DIR / "host"
PACKAGE_FILES = ("model.c", "model.h", "model_meta.c", "model_meta.h")
READY_TIMEOUT = 15.0


class EmulatorError(RuntimeError):
    """The emulator could not be prepared, built or started (the message says what to do)."""


def model_digest(model: IntModel) -> str:
    from .compiler.meta import META_FORMAT_VERSION

    h = hashlib.sha256()
    meta = {"meta_format": META_FORMAT_VERSION, "config": model.config.to_dict(), "vocab": model.vocab, "intents": model.intents, "slots": model.slots,
            "oos_threshold": model.oos_threshold, "oos_threshold_without_names": model.oos_threshold_without_names,
            "value_table": model.value_table,
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
    pkg = CACHE_DIR / f"pkg-{model_digest(model)}"
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


def names_init_lines(names: HomeNames) -> list[str]:
    """The protocol lines that tell a device ``names``: one ``names_add`` each, its index as id."""
    from .names import add_requests

    return [json.dumps({"id": i, **request}) for i, request in enumerate(add_requests(names))]


def write_names_init(names: HomeNames, directory=None) -> Path:
    """A temporary ``--init`` file for the emulator holding :func:`names_init_lines`."""
    fd, path = tempfile.mkstemp(prefix="names-", suffix=".init", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in names_init_lines(names)))
    return Path(path)


def _names_refusal(names: HomeNames, stderr_lines: list[str]) -> str | None:
    """The sentence for an emulator that stopped on a refused name (its error answer on stderr)."""
    for line in reversed(stderr_lines):
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if isinstance(answer, dict) and "error" in answer:
            i = answer.get("id")
            what = f"{names.entries[i][0]} {names.entries[i][1]!r}" if isinstance(i, int) and 0 <= i < len(names) else "a name"
            return f"the device refused {what} from the home's names: {answer['error']} ({answer.get('code')})"
    return None


class Emulator:
    """A running host emulator process. ``url`` is what ``transport.open_transport`` takes:
    ``socket://127.0.0.1:PORT`` or a pty path (None for stdio, where ``proc`` has the pipes).
    ``names``: the home's names, sent to the device before it serves."""

    def __init__(self, binary, serial: str = "tcp:0", env: dict | None = None, args: list[str] | None = None,
                 names: HomeNames | None = None):
        self.binary = Path(binary)
        self.serial = serial
        self.args = list(args) if args is not None else parse_serial(serial)  # args: e.g. --broker URL --device ID
        self.env = env
        self.names = names
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.stderr_lines: list[str] = []

    def start(self, timeout: float = READY_TIMEOUT) -> "Emulator":
        init = write_names_init(self.names, _cache_dir()) if self.names else None
        try:
            return self._start(timeout, ["--init", str(init)] if init else [])
        finally:
            if init:  # read before SE_READY (or the start failed)
                init.unlink(missing_ok=True)

    def _start(self, timeout: float, init_args: list[str]) -> "Emulator":
        stdio = self.serial == "stdio"
        self.proc = subprocess.Popen([str(self.binary), *init_args, *self.args],
                                     stdin=subprocess.PIPE if stdio else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if stdio else subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=self.env)
        ready = threading.Event()
        announced: list[str] = []  # the SE_READY line: set, or the process ended without one

        def pump():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.stderr_lines.append(line)
                if line.startswith("SE_READY"):
                    announced.append(line)
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
        if not ready.wait(timeout) or not announced:
            self.stop()
            refusal = _names_refusal(self.names, self.stderr_lines) if self.names else None
            if refusal:
                raise EmulatorError(refusal + "; fix or remove it in the names file")
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


def start_emulator(model_or_package, serial: str = "tcp:0", sanitize: bool = False, progress=None,
                   names: HomeNames | None = None) -> Emulator:
    """Prepare, build and start an emulator (told ``names``, the home's names, if given); the
    caller stops it (or uses ``with``)."""
    pkg = prepare_package(model_or_package, progress)
    return Emulator(build_emulator(pkg, sanitize=sanitize, progress=progress), serial, names=names).start()


# ---- CLI: squeezeedge emulate ----

def default_model_path() -> Path:
    from .resources import DEFAULT_MODEL

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
    p.add_argument("--image", metavar="PATH",
                   help="with --board stm32f405|rv32-virt: run this firmware image as it is (the firmware.elf, or "
                        "the directory, that `squeezeedge build --board ... -o DIR` wrote) instead of building one")
    p.add_argument("--serial", default="pty", help="pty | tcp:PORT | stdio (default: pty)")
    p.add_argument("--sanitize", action="store_true", help="build with AddressSanitizer and UBSan")
    from .broker import add_broker_arguments

    add_broker_arguments(p, "serve over MQTT instead: mqtt://host[:port] or mqtts://host[:port] (TLS); credentials "
                            "from --credentials FILE or the environment, never from this URL if you can help it")
    p.add_argument("--mqtt", action="store_true",
                   help="serve over MQTT on an in-process broker, started here on 127.0.0.1:1883 (where `squeezeedge "
                        "mqtt send` looks by default) when that port is free, else on any free port")
    p.add_argument("--device", default="emulator", help="the device id on the broker (default: emulator)")
    p.add_argument("--names", metavar="FILE.json",
                   help='the home\'s names, sent to the device before it serves: {"area": [...], "floor": [...], '
                        '"name": {"light": [...], ...}} (host emulator over a serial line)')
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
    names = None
    if getattr(args, "names", None):
        if args.board != "host" or getattr(args, "broker", None) or getattr(args, "mqtt", False):
            print("emulate: --names works with the host emulator on a serial line (pty, tcp or stdio); "
                  "tell other devices with `squeezeedge names push FILE --port URL` (or --broker URL "
                  "--device ID) once they run", file=sys.stderr)
            return 2
        try:
            names = HomeNames.load(args.names)
        except NamesError as e:
            print(f"emulate: {e}", file=sys.stderr)
            return 2
    if getattr(args, "image", None) and args.board == "host":
        print("emulate: --image runs a board's firmware image under QEMU (--board stm32f405 or rv32-virt); "
              "the host emulator is built from --model", file=sys.stderr)
        return 2
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
        init = write_names_init(names) if names else None
        if init:  # a dry run with no input first, so that a refused name is one sentence, not raw JSON
            r = subprocess.run([argv[0], "--init", str(init), "--stdio"], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, errors="replace")
            if r.returncode != 0:
                init.unlink(missing_ok=True)
                refusal = _names_refusal(names, r.stderr.splitlines())
                print(f"emulate: {refusal + '; fix or remove it in the names file' if refusal else r.stderr.strip()}",
                      file=sys.stderr)
                return 2
        proc = subprocess.Popen([argv[0], *(["--init", str(init)] if init else []), *argv[1:]])
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGTERM)
            return proc.wait()
        finally:
            if init:
                init.unlink(missing_ok=True)
    emu = Emulator(binary, args.serial, names=names)
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
