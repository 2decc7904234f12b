"""Run a model package on the host: gcc -O2 → shared library → ctypes."""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..models.decode import Answer, decode
from ..models.engine import Encoder
from ..models.model_file import IntModel
from ..models.reference import Logits
from ..resources import CACHE_DIR

HOST_CFLAGS = ["-O2", "-std=c99", "-fPIC", "-shared"]

_ERRORS = {-1: "null pointer", -2: "length outside 1..max_len", -3: "token id out of range", -4: "kernel failed"}


class CEngineError(RuntimeError):
    pass


def build_shared(package_dir: Path, cc: str = "gcc") -> Path:
    """Compile ``model.c`` of a package into a cached shared library (keyed by content)."""
    src = (package_dir / "model.c").read_bytes() + (package_dir / "model.h").read_bytes()
    key = hashlib.sha256(src + " ".join(HOST_CFLAGS).encode()).hexdigest()[:20]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    lib = CACHE_DIR / f"se_model_{key}.so"
    if lib.exists():
        return lib
    if shutil.which(cc) is None:
        raise CEngineError(f"{cc} not found: install build-essential")
    tmp = lib.with_suffix(f".{os.getpid()}.tmp")
    r = subprocess.run([cc, *HOST_CFLAGS, "-I", str(package_dir), str(package_dir / "model.c"), "-o", str(tmp)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise CEngineError(f"gcc failed on {package_dir / 'model.c'}:\n{r.stderr[-4000:]}")
    os.replace(tmp, lib)
    return lib


class CEngine:
    """The generated C, compiled for the host. ``CEngine(package_dir)`` or ``CEngine(model)``
    (compiles the model first, into a temporary package)."""

    name = "c"

    def __init__(self, source, model: IntModel | None = None, names=None):
        if isinstance(source, IntModel):
            from .package import compile_model

            model = source
            self._tmp = tempfile.TemporaryDirectory(prefix="se-pkg-")
            package_dir = compile_model(model, "host").write(self._tmp.name)
        else:
            package_dir = Path(source)
            if not (package_dir / "model.c").is_file():
                raise CEngineError(f"{package_dir}: no model.c; not a model package")
        import json

        self.package_dir = package_dir
        self.info = json.loads((package_dir / "model.json").read_text())
        self.model = model
        self.encoder = Encoder(model, names) if model is not None else None
        cfg = self.info["config"]
        self.max_len, self.vocab_size = cfg["max_len"], cfg["vocab_size"]
        self.n_intents, self.n_tags = self.info["n_intents"], self.info["n_tags"]
        self._lib = ctypes.CDLL(str(build_shared(package_dir)))
        fn = self._lib.se_model_run
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.POINTER(ctypes.c_int32), ctypes.c_int32, ctypes.POINTER(ctypes.c_int8),
                       ctypes.POINTER(ctypes.c_int8), ctypes.POINTER(ctypes.c_uint8)]
        self._fn = fn
        self._arena = (ctypes.c_uint8 * max(1, self.info["arena_bytes"]))()
        self._intent = (ctypes.c_int8 * self.n_intents)()
        self._slots = (ctypes.c_int8 * (self.max_len * self.n_tags))()

    def run_status(self, ids) -> tuple[int, Logits | None]:
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int32))
        buf = (ctypes.c_int32 * max(1, len(ids)))(*ids.tolist())
        rc = self._fn(buf, len(ids), self._intent, self._slots, self._arena)
        if rc != 0:
            return rc, None
        intent = np.frombuffer(self._intent, dtype=np.int8).astype(np.int64).copy()
        slots = np.frombuffer(self._slots, dtype=np.int8).reshape(self.max_len, self.n_tags)[: len(ids)]
        return 0, Logits(intent=intent, slots=slots.astype(np.int64).copy())

    def run(self, ids) -> Logits:
        rc, logits = self.run_status(ids)
        if rc != 0:
            raise ValueError(f"se_model_run failed: {_ERRORS.get(rc, rc)}")
        return logits

    def classify(self, data: bytes) -> Answer:
        if self.model is None:
            raise CEngineError("classify needs the model file (vocabulary and labels): CEngine(pkg, model=...)")
        enc = self.encoder.encode(data)
        return decode(self.model, data, enc.ids, enc.offsets, self.run(enc.ids), self.encoder.names_told)
