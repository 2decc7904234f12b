"""Peers for ``squeezeedge bench``: other int8 runtimes given the same trained weights.

Each peer module has one job: build its int8 model from an ``IntModel`` (through the float
network of ``export.py``), run it on token ids, and report its size (and arena, where the
runtime has one). Their packages are the optional ``bench`` extra (``pip install .[bench]``).

So that only the network differs, a peer's outputs are scored with our decoding: its int8
logits are dequantized with the peer's own output scale and zero point, then requantized to
our heads' scales (``round(x / s_head)``, clipped to int8) and handed to ``models.decode``
(intent, confidence threshold, BIO Viterbi), exactly as our integer logits are.
"""

from __future__ import annotations

from ..models.model_file import IntModel
from .base import LABELS, PEERS, PeerModel, PeerUnavailable, to_our_logits  # noqa: F401 - the peers' API

INSTALL_HINT = "pip install '.[bench]', or make bench"
LITERT_TORCH_HINT = ("make bench-deps installs it; by hand (after pip install '.[bench]', which holds its dependencies): "
                     "pip install --no-deps litert-torch==0.10.0 litert-converter==0.5.0 xdsl==0.28.0")


def missing(name: str) -> str | None:
    """None when the peer's packages import, otherwise the reason it cannot run."""
    mods = {"onnxrt": ("onnx", "onnxruntime"), "litert": ("litert_torch", "ai_edge_quantizer", "ai_edge_litert"),
            "tflm": ("litert_torch", "ai_edge_quantizer", "tflite_micro")}[name]
    for m in mods:
        try:
            __import__(m)
        except ImportError:
            hint = LITERT_TORCH_HINT if m == "litert_torch" else INSTALL_HINT
            return f"{m} not installed ({hint})"
    return None


def build(name: str, model: IntModel, calibration: list[list[int]], work, tflite: bytes | None = None) -> PeerModel:
    """Build peer ``name`` for ``model``; ``calibration`` is a list of token id lists (training
    sentences). The LiteRT int8 file is shared by ``litert`` and ``tflm`` (pass it as ``tflite``)."""
    reason = missing(name)
    if reason:
        raise PeerUnavailable(reason)
    if not model.info.get("scales"):
        raise PeerUnavailable("the model file has no quantization scales (info['scales'])")
    if name == "onnxrt":
        from . import onnxrt

        return onnxrt.build(model, calibration, work)
    from . import litert, tflm

    data = tflite if tflite is not None else litert.build_tflite(model, calibration, work)
    return litert.load(model, data) if name == "litert" else tflm.load(model, data)
