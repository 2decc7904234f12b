"""LiteRT int8: litert-torch converts the static-shape float network (``export.static_net``:
fixed max_len window, padded keys masked, GELU as x·sigmoid(1.702x) because TFLite Micro has
no GELU kernel and the same file runs there), ai-edge-quantizer's static int8 recipe
(``static_wi8_ai8``) calibrated on training sentences quantizes it; the LiteRT interpreter
runs it with one thread. The embedding table gets ai-edge-quantizer's int8 dynamic-range config
(the static recipe would leave it float32). The file keeps every weight inside the flatbuffer
(``inline_buffers``), the only layout TFLite Micro reads."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import numpy as np

from ..models.model_file import IntModel
from .base import PeerModel, PeerUnavailable
from .export import padded, static_net


@contextlib.contextmanager
def _quiet():
    """The converter and quantizer print progress bars and reports; keep the bench output readable."""
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), contextlib.redirect_stderr(io.StringIO()):
        yield


def build_tflite(model: IntModel, calibration: list[list[int]], work) -> bytes:
    import litert_torch
    import torch
    from ai_edge_quantizer import qtyping, quantizer, recipe

    work = Path(work)
    net = static_net(model)
    n = model.config.max_len
    sample = tuple(torch.tensor(a) for a in padded(calibration[0], n))
    f32 = work / "model_f32.tflite"
    with _quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        litert_torch.convert(net, sample).export(str(f32))
        qt = quantizer.Quantizer(str(f32), recipe.static_wi8_ai8())
        qt.add_dynamic_config(".*", qtyping.TFLOperationName.EMBEDDING_LOOKUP, 8,
                              granularity=qtyping.QuantGranularity.TENSORWISE)
        feeds = [dict(zip(("args_0", "args_1"), padded(ids, n))) for ids in calibration]
        result = qt.quantize(qt.calibrate({"serving_default": feeds}, num_threads=1), enable_progress_report=False)
    data = inline_buffers(bytes(result.quantized_model))
    (work / "model_int8.tflite").write_bytes(data)
    return data


def external_buffers(data: bytes) -> int:
    """How many of the model's buffers are stored after the flatbuffer (``Buffer.offset``/``size``)."""
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAs(data, 0)
    return sum(1 for i in range(m.BuffersLength()) if m.Buffers(i).Offset())


def inline_buffers(data: bytes) -> bytes:
    """The model with every buffer's data inside the flatbuffer. ai-edge-quantizer appends the
    weights after the flatbuffer (``Buffer.offset``, the >2 GB layout) once they pass 256 KiB, as
    for the base preset; TFLite Micro reads only inline data, silently takes such weights for
    uninitialized arena tensors and computes garbage. LiteRT reads both layouts alike."""
    if not external_buffers(data):
        return data  # smaller models are written inline already: keep their bytes as they are
    from ai_edge_litert.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(flatbuffer_utils.read_model_from_bytearray(data)))


def dequantizer(detail: dict):
    """int8 output → float with the tensor's own scale and zero point (LiteRT and TFLM details)."""
    if "quantization" in detail:
        scale, zero = detail["quantization"][:2]
    else:
        qp = detail.get("quantization_parameters") or {}
        scales, zeros = list(qp.get("scales", [])), list(qp.get("zero_points", []))
        scale, zero = (float(scales[0]), int(zeros[0])) if len(scales) else (0.0, 0)
    if not scale:  # a float output
        return lambda x: np.asarray(x, np.float64)
    return lambda x: (np.asarray(x, np.float64) - zero) * scale


def load(model: IntModel, data: bytes) -> PeerModel:
    from ai_edge_litert.interpreter import Interpreter

    try:
        it = Interpreter(model_content=data, num_threads=1)
        it.allocate_tensors()
    except Exception as e:  # noqa: BLE001 - the runtime's own words are the reason
        raise PeerUnavailable(f"LiteRT cannot load the model: {str(e).strip().splitlines()[-1][:160]}") from e
    inp, out = it.get_input_details(), it.get_output_details()
    deq = [dequantizer(o) for o in out]
    n = model.config.max_len

    def prepare(ids):
        a, length = padded(ids, n)

        def call():
            it.set_tensor(inp[0]["index"], a)
            it.set_tensor(inp[1]["index"], length)
            it.invoke()
            return it.get_tensor(out[0]["index"]), it.get_tensor(out[1]["index"])
        return call

    def run(ids):
        intent, slots = (deq[i](x) for i, x in enumerate(prepare(ids)()))
        return intent[0], slots[0, : len(ids)]

    return PeerModel("litert", len(data), run, prepare,
                     notes=[f"static {n}-token graph (padded); GELU exported as x·sigmoid(1.702x)"])
