"""TFLite Micro int8: the very .tflite file LiteRT runs (``litert.build_tflite``), run by TFLite
Micro's Python interpreter (the reference kernels a microcontroller build uses), with the
smallest tensor arena that loads and runs it, found by bisection."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

import numpy as np

from ..models.model_file import IntModel
from .base import PeerModel, PeerUnavailable
from .export import padded
from .litert import dequantizer

ARENA_STEP = 256  # bisect to this granularity: TFLM aligns its allocations to 16 bytes anyway


def _interpreter(data: bytes, arena: int):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(data, arena_size=arena)


@contextlib.contextmanager
def _fd2_to(path: str = os.devnull):
    """TFLM's C++ side reports errors on fd 2 only: send them to ``path`` (bisection fails on
    purpose; a failing invoke is read back for the reason)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "w") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _silent_fd2():
    return _fd2_to(os.devnull)


class TFLMError(RuntimeError):
    pass


def _runs(data: bytes, arena: int, probe: list[np.ndarray]) -> bool:
    try:
        with _silent_fd2():
            it = _interpreter(data, arena)
            for i, a in enumerate(probe):
                it.set_input(a, i)
            it.invoke()
        return True
    except Exception:  # noqa: BLE001 - too small an arena fails in allocation or invoke
        return False


def smallest_arena(data: bytes, probe: list[np.ndarray], high: int = 4 << 20) -> int:
    """The smallest arena (multiple of ARENA_STEP) with which the model allocates and runs."""
    if not _runs(data, high, probe):
        raise PeerUnavailable(f"TFLite Micro cannot run the model even with a {high >> 20} MiB arena "
                              "(an unsupported operator or type)")
    lo, hi = 0, high // ARENA_STEP  # lo fails (or is 0), hi runs
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _runs(data, mid * ARENA_STEP, probe):
            hi = mid
        else:
            lo = mid
    return hi * ARENA_STEP


def load(model: IntModel, data: bytes) -> PeerModel:
    n = model.config.max_len
    probe = list(padded([2] + [4] * (n - 2) + [3], n))
    arena = smallest_arena(data, probe)
    it = _interpreter(data, arena)
    deq = [dequantizer(it.get_output_details(i)) for i in (0, 1)]

    def prepare(ids):
        a, length = padded(ids, n)

        def call():
            it.set_input(a, 0)
            it.set_input(length, 1)
            it.invoke()
            return it.get_output(0), it.get_output(1)
        return call

    def run(ids):
        with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
            try:
                with _fd2_to(log.name):
                    raw = prepare(ids)()
            except RuntimeError as e:
                said = [line.strip() for line in log.read().splitlines() if line.strip()]
                raise TFLMError(f"invoke failed on a held-out sentence: {'; '.join(said[:2]) or e}") from e
        intent, slots = (deq[i](x) for i, x in enumerate(raw))
        return intent.reshape(-1), slots.reshape(n, -1)[: len(ids)]

    return PeerModel("tflm", len(data), run, prepare, arena_bytes=arena,
                     notes=["the LiteRT int8 .tflite file; reference kernels; arena found by bisection",
                            "weights kept inside the flatbuffer: ai-edge-quantizer appends them after it (Buffer.offset) "
                            "past 256 KiB, a layout TFLite Micro does not read yet (tflite-micro#3196) and silently "
                            "replaces with uninitialized arena memory"])
