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

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .broker import BrokerSettings, resolve, toml_string
from .models.gazetteer import HomeNames
from .models.model_file import IntModel
from .resources import CACHE_DIR, CORE_DIR, PORTS_DIR, SHARED_MAKEFILES
from .process import ManagedProcess

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
    return cached_package(model, "host", say)


def cached_package(model: IntModel, target: str, say) -> Path:
    """``model`` compiled for ``target`` (model.c/.h, model_meta.c/.h) in the cache: compiled
    once, then found under its digest (the emulator's and every board's packages alike)."""
    pkg = _cache_dir() / (f"pkg-{model_digest(model)}" if target == "host" else f"pkg-{target}-{model_digest(model)}")
    if all((pkg / f).is_file() for f in PACKAGE_FILES):
        return pkg
    from .compiler.meta import write_meta
    from .compiler.package import compile_model

    say("compiling the model to C (TVM)" if target == "host" else f"compiling the model to C for {target} (TVM)")
    tmp = Path(tempfile.mkdtemp(prefix="pkg-", dir=_cache_dir()))
    compile_model(model, target).write(tmp)
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
            [HOST_PORT_DIR / "Makefile", *SHARED_MAKEFILES] + [package_dir / f for f in files]:
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


def names_refusal(names: HomeNames, stderr_lines: list[str]) -> str | None:
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


class Emulator(ManagedProcess):
    """A running host emulator process. ``url`` is what ``transport.open_transport`` takes:
    ``socket://127.0.0.1:PORT`` or a pty path (None for stdio, where ``proc`` has the pipes).
    ``names``: the home's names, sent to the device before it serves."""

    def __init__(self, binary, serial: str = "tcp:0", env: dict | None = None, args: list[str] | None = None,
                 names: HomeNames | None = None):
        super().__init__()
        self.binary = Path(binary)
        self.serial = serial
        self.args = list(args) if args is not None else parse_serial(serial)  # args: e.g. --broker URL --device ID
        self.env = env
        self.names = names
        self.url: str | None = None
        self.announced = False  # its SE_READY line came

    def start(self, timeout: float = READY_TIMEOUT) -> "Emulator":
        init = write_names_init(self.names, _cache_dir()) if self.names else None
        try:
            return self._start(timeout, ["--init", str(init)] if init else [])
        finally:
            if init:  # read before SE_READY (or the start failed)
                init.unlink(missing_ok=True)

    def _start(self, timeout: float, init_args: list[str]) -> "Emulator":
        stdio = subprocess.PIPE if self.serial == "stdio" else subprocess.DEVNULL
        self.launch([str(self.binary), *init_args, *self.args], stdin=stdio, stdout=stdio, env=self.env)
        if not self.wait_until(lambda: self.announced, timeout):
            self.stop()
            refusal = names_refusal(self.names, self.stderr_lines) if self.names else None
            if refusal:
                raise EmulatorError(refusal + "; fix or remove it in the names file")
            raise EmulatorError("the emulator did not start: " + " | ".join(self.stderr_lines[-5:]))
        return self

    def on_stderr_line(self, line: str) -> None:
        if not line.startswith("SE_READY"):
            return
        parts = line.split()
        if parts[1] == "tcp":
            self.url = f"socket://{parts[2]}"
        elif parts[1] == "pty":
            self.url = parts[2]
        elif parts[1] == "mqtt":  # SE_READY mqtt HOST:PORT DEVICE
            self.url = f"mqtt://{parts[2]}"
        self.announced = True


def start_emulator(model_or_package, serial: str = "tcp:0", sanitize: bool = False, progress=None,
                   names: HomeNames | None = None) -> Emulator:
    """Prepare, build and start an emulator (told ``names``, the home's names, if given); the
    caller stops it (or uses ``with``)."""
    pkg = prepare_package(model_or_package, progress)
    return Emulator(build_emulator(pkg, sanitize=sanitize, progress=progress), serial, names=names).start()


def default_model_path() -> Path:
    from .resources import DEFAULT_MODEL

    return DEFAULT_MODEL


# ---- the emulator over MQTT ----

def emulator_mqtt_args(broker: "str | BrokerSettings | None", device: str) -> tuple[list[str], str | None]:
    """Emulator arguments for ``broker``/``device``. Credentials go into a private temp config
    file (not onto the command line, where `ps` shows them); returns (args, that file or None)."""
    from .mqtt import check_device

    s = resolve(broker)
    check_device(device)
    args = ["--broker", s.url, "--device", device]
    for option, path in (("--cafile", s.cafile), ("--certfile", s.certfile), ("--keyfile", s.keyfile)):
        if path:
            args += [option, os.path.abspath(path)]
    if s.tls and not s.check_hostname:
        args.append("--tls-insecure-no-hostname-check")
    if s.username is None:
        return args, None
    fd, path = tempfile.mkstemp(prefix="se-mqtt-", suffix=".conf")
    with os.fdopen(fd, "w") as f:  # mkstemp: mode 0600
        f.write(f"username = {toml_string(s.username)}\n")
        if s.password is not None:
            f.write(f"password = {toml_string(s.password)}\n")
    return args + ["--config", path], path


def start_mqtt_emulator(model, broker: "str | BrokerSettings | None", device: str, sanitize: bool = False, progress=None):
    """Build (MQTT=1) and start an emulator serving ``device`` on ``broker``; returns an Emulator."""
    pkg = prepare_package(model if model is not None else default_model_path(), progress)
    binary = build_emulator(pkg, sanitize=sanitize, progress=progress, mqtt=True)
    args, conf = emulator_mqtt_args(broker, device)
    emu = Emulator(binary, "mqtt", args=args)
    try:
        return emu.start()
    finally:
        if conf:
            os.unlink(conf)  # read at start-up; SE_READY comes after that
