"""ONNX Runtime int8: torch.onnx.export of the float network (dynamic length, exact GELU),
``quantize_static`` (QDQ, per-channel int8 weights, int8 activations) calibrated on training
sentences, run with one thread at each sentence's true length."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from ..models.model_file import IntModel
from .base import PeerModel


def build(model: IntModel, calibration: list[list[int]], work) -> PeerModel:
    from ..compiler_bench import build_ort_int8

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_static's advice ("consider pre-processing") is noise here
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = build_ort_int8(model, Path(work), calibration=calibration)
    finally:
        root.setLevel(level)
    return load(path)


def load(path: Path) -> PeerModel:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def prepare(ids):
        feed = {"ids": np.asarray([ids], np.int64), "lengths": np.array([len(ids)], np.int64)}
        return lambda: sess.run(None, feed)

    def run(ids):
        intent, slots = prepare(ids)()
        return intent[0], slots[0]

    return PeerModel("onnxrt", Path(path).stat().st_size, run, prepare,
                     notes=["QDQ graph: ORT's int8 kernels between QuantizeLinear/DequantizeLinear pairs; "
                            "outputs are float (DequantizeLinear of int8)"])
