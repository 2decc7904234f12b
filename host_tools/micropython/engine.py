"""``squeezeedge classify --engine micropython``: the unix port of MicroPython answers, through the
native module (``squeezeedge.mpy``, built for x64) or a firmware with the user C module.

Library first::

    from squeezeedge.micropython.engine import MicroPythonEngine
    with MicroPythonEngine(model) as eng:                      # built on demand, cached
        eng.names_add("area", "sunroom")
        print(eng.classify(b"turn on the lights in the sunroom"))   # an Answer, as every engine

The engine starts ``micropython`` once and speaks one JSON line per request over its stdin and
stdout (``DRIVER`` below runs on MicroPython): the text travels as hex so that any bytes, invalid
UTF-8 included, reach ``squeezeedge.classify`` as they are.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from ..models.decode import Answer
from ..models.gazetteer import HomeNames
from .source import MicroPythonError

CONF_ONE = 10000

# Runs on the unix port: one JSON request per stdin line, one JSON answer per stdout line.
DRIVER = """
import sys, json
import squeezeedge as se
print(json.dumps({"ready": se.info()}))
while True:
    line = sys.stdin.readline()
    if not line:
        break
    req = json.loads(line)
    try:
        if "kind" in req:
            r = {"names": se.names_add(req["kind"], req["name"])}
        elif "line" in req:
            r = {"answer": se.handle(bytes.fromhex(req["line"])).decode()}
        elif req.get("cmd") == "names_clear":
            se.names_clear()
            r = {"names": se.names()}
        else:
            r = se.classify(bytes.fromhex(req["hex"]))
    except (ValueError, RuntimeError) as e:
        r = {"error": str(e), "type": type(e).__name__}
    print(json.dumps(r))
"""


class MicroPythonEngineError(MicroPythonError):
    """The module raised (``.type``: ValueError or RuntimeError, ``.message``: its text)."""

    def __init__(self, type_: str, message: str):
        super().__init__(f"{type_}: {message}")
        self.type = type_
        self.message = message


def answer_from_dict(d: dict) -> Answer:
    """squeezeedge.classify's dict → the Answer every engine returns (confidence back to 0..10000:
    the module divides an integer by 10000, so rounding recovers it exactly)."""
    return Answer(d["intent"], round(d["confidence"] * CONF_ONE), dict(d["slots"]))


class MicroPythonEngine:
    """The unix ``micropython`` importing ``squeezeedge``: the native module for x64 (``usermod``
    False) or the module compiled into the firmware (``usermod`` True)."""

    name = "micropython"

    def __init__(self, model=None, names: HomeNames | None = None, usermod: bool = False, progress=None):
        from . import natmod, ports

        self.model = natmod.load_model(model)
        self.usermod = usermod
        self._tmp = tempfile.TemporaryDirectory(prefix="se-mpy-")
        work = Path(self._tmp.name)
        if usermod:
            binary = ports.unix(natmod.write_user_module(self.model, work / "usermods", progress=progress),
                                progress=progress)
            env = ports.unix_env()
        else:
            binary = ports.unix(progress=progress)
            env = ports.unix_env(first=[natmod.build_native_module(self.model, "x64", progress=progress).directory])
        (work / "driver.py").write_text(DRIVER)
        self.proc = subprocess.Popen([str(binary), str(work / "driver.py")], cwd=work, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = self._read()
        if "ready" not in first:
            self.close()
            raise MicroPythonError(f"MicroPython did not start the module: {first}")
        self.info = first["ready"]
        if names:
            for kind, text in names.entries:
                self.names_add(kind, text)

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        try:
            return json.loads(line)
        except ValueError:
            if self.proc.poll() is None:
                self.proc.kill()
            out = (line + self.proc.stdout.read() + self.proc.stderr.read()).decode(errors="replace").strip()
            raise MicroPythonError(f"MicroPython stopped answering (status {self.proc.wait()}): "
                                   f"{out[-800:] or 'no message'}") from None

    def _request(self, req: dict) -> dict:
        self.proc.stdin.write(json.dumps(req).encode() + b"\n")
        self.proc.stdin.flush()
        r = self._read()
        if "error" in r:
            raise MicroPythonEngineError(r["type"], r["error"])
        return r

    def classify(self, data: bytes) -> Answer:
        return answer_from_dict(self._request({"hex": bytes(data).hex()}))

    def handle(self, line: bytes) -> dict:
        """squeezeedge.handle: the firmware's line protocol answer to ``line``, parsed."""
        return json.loads(self._request({"line": bytes(line).hex()})["answer"])

    def names_add(self, kind: str, text: str) -> int:
        return self._request({"kind": kind, "name": text})["names"]

    def names_clear(self) -> None:
        self._request({"cmd": "names_clear"})

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()
        self._tmp.cleanup()

    def __enter__(self) -> "MicroPythonEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MicroPythonBoardEngine:
    """``squeezeedge classify --engine micropython --arch ARCH`` for a non-host arch: the native
    module on the qemu-port board that runs ARCH (board.BOARD_ARCH), loaded from ROMFS and driven
    by mpremote; one exec per command."""

    name = "micropython"

    def __init__(self, model=None, arch: str = "armv7emsp", names: HomeNames | None = None, progress=None):
        from .board import BOARD_ARCH, QemuModuleBoard
        from .natmod import load_model

        boards = [b for b, a in BOARD_ARCH.items() if a == arch]
        if not boards:
            raise MicroPythonError(f"no QEMU board here runs {arch} code; choose x64 (the unix port) or one of "
                                   f"{', '.join(sorted(set(BOARD_ARCH.values())))}")
        self.model = load_model(model)
        self.board = QemuModuleBoard(boards[0], arch, model=self.model, progress=progress).start()
        self.info = self.board.import_report.info
        if names:
            self.board.names_add(names.entries)

    def classify(self, data: bytes) -> Answer:
        d = self.board.classify([bytes(data)])[0]
        if "error" in d:
            raise MicroPythonEngineError(d["type"], d["error"])
        return answer_from_dict(d)

    def close(self) -> None:
        self.board.stop()

    def __enter__(self) -> "MicroPythonBoardEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
