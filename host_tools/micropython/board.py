"""The native module on a MicroPython board in QEMU, driven by mpremote: what the board tests and
``squeezeedge bench --micropython`` run.

Library first::

    from squeezeedge.micropython.board import QemuModuleBoard
    with QemuModuleBoard("MPS2_AN500", "armv7emsp") as b:   # .mpy + weights preloaded in ROMFS
        print(b.import_report)          # heap free before/after `import squeezeedge`, info()
        print(b.classify(["turn off the kitchen lights"]))  # [{"intent": ..., ...}]

The board boots the qemu port's firmware with a ROMFS image holding ``squeezeedge.mpy`` and
``squeezeedge.bin``: ``/rom`` is on the port's ``sys.path``, so ``import squeezeedge`` loads the
.mpy (its code into the heap) and binds the weights in place (``memoryview`` of the ROMFS file).
Requests go through mpremote's raw REPL (``SerialTransport.exec``), many sentences per exec.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .natmod import MPY_FILE, WEIGHTS_FILE, build_native_module, write_user_module
from .source import MicroPythonError

# Which .mpy arch each qemu board runs (and what it stands for).
BOARD_ARCH = {
    "MPS2_AN385": "armv7m",     # Cortex-M3
    "MPS2_AN500": "armv7emsp",  # Cortex-M7 (runs armv7emsp code: the SMLAD kernels)
    "VIRT_RV32": "rv32imc",     # RV32IMC, the ESP32-C3's ISA
}

# Run on MicroPython (json imported): the heap before and after `import squeezeedge` (ImportReport).
IMPORT_REPORT = """
import gc, sys
gc.collect()
_f0 = gc.mem_free()
import squeezeedge
gc.collect()
_f1 = gc.mem_free()
print(json.dumps({"free_before": _f0, "free_after": _f1, "weights_path": getattr(squeezeedge, "weights_path", None),
                  "info": squeezeedge.info(), "machine": sys.implementation._machine}))
"""

# One exec classifies a list of texts (bytes) and prints one JSON line each; ticks are the
# board's microseconds per call (instructions / 1000 when QEMU runs with -icount shift=0).
_CLASSIFY = """
for _t in {texts!r}:
    _s = time.ticks_us()
    try:
        _r = squeezeedge.classify(_t)
    except (ValueError, RuntimeError) as _e:
        _r = {{"error": str(_e), "type": type(_e).__name__}}
    _r["ticks_us"] = time.ticks_diff(time.ticks_us(), _s)
    print(json.dumps(_r))
"""


@dataclass
class ImportReport:
    free_before: int
    free_after: int
    weights_path: str | None
    info: dict
    machine: str

    @property
    def heap_used(self) -> int:
        return self.free_before - self.free_after


class QemuModuleBoard:
    """``board`` (a qemu-port board of ports.QEMU_BOARDS) running MicroPython with the native module
    for ``arch`` preloaded in ROMFS, or (``usermod``) a firmware built with the user C module;
    ``icount``: deterministic instruction counting (slower)."""

    def __init__(self, board: str, arch: str | None = None, model=None, icount: bool = False,
                 usermod: bool = False, progress=None):
        from . import ports

        self.board, self.arch, self.usermod = board, arch or BOARD_ARCH[board], usermod
        self._tmp = tempfile.TemporaryDirectory(prefix="se-romfs-")
        if usermod:
            self.module = None
            elf = ports.qemu(board, user_c_modules=write_user_module(model, Path(self._tmp.name) / "usermods",
                                                                   arch=self.arch, progress=progress),
                             progress=progress)
            image = None
        else:
            self.module = build_native_module(model, self.arch, progress=progress)
            elf = ports.qemu(board, progress=progress)
            image = ports.romfs_image({MPY_FILE: self.module.mpy, WEIGHTS_FILE: self.module.weights},
                                      Path(self._tmp.name) / "module.romfs")
        self.qemu = ports.MicroPythonQemu(board, elf, image, icount=icount)
        self.transport = None
        self.import_report: ImportReport | None = None

    def start(self) -> "QemuModuleBoard":
        from mpremote.transport_serial import SerialTransport

        self.qemu.start()
        try:
            self.transport = SerialTransport(self.qemu.url, baudrate=115200)
            self.transport.enter_raw_repl(soft_reset=False)
            self.exec("import json, time")
            self.import_report = ImportReport(**json.loads(self.exec(IMPORT_REPORT)))
        except BaseException:
            self.stop()
            raise
        return self

    def exec(self, code: str, timeout: float = 120) -> str:
        out, err = self.transport.exec_raw(code, timeout=timeout)
        if err:
            raise MicroPythonError(f"{self.board}: {err.decode(errors='replace').strip().splitlines()[-1]}")
        return out.decode()

    def classify(self, texts, batch: int = 25) -> list[dict]:
        """squeezeedge.classify's dict for each text (str or bytes), or {"error", "type"}."""
        out = []
        data = [t.encode() if isinstance(t, str) else bytes(t) for t in texts]
        for i in range(0, len(data), batch):
            lines = self.exec(_CLASSIFY.format(texts=data[i:i + batch])).splitlines()
            out += [json.loads(x) for x in lines]
        return out

    def names_add(self, entries) -> int:
        """Add (kind, text) pairs; returns how many names the module holds."""
        pairs = list(entries)
        return int(self.exec(f"for _k, _t in {pairs!r}:\n    squeezeedge.names_add(_k, _t)\n"
                             "print(squeezeedge.names())"))

    def names_clear(self) -> None:
        self.exec("squeezeedge.names_clear()")

    def stop(self) -> None:
        if self.transport is not None:
            try:
                self.transport.close()
            finally:
                self.transport = None
        self.qemu.stop()
        self._tmp.cleanup()

    def __enter__(self) -> "QemuModuleBoard":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
