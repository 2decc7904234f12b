"""What every peer shares: its result type, its failure, and the way its outputs become ours."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..models.model_file import IntModel
from ..models.reference import Logits

PEERS = ("onnxrt", "litert", "tflm")
LABELS = {"onnxrt": "ONNX Runtime int8", "litert": "LiteRT int8", "tflm": "TFLite Micro int8"}


class PeerUnavailable(RuntimeError):
    """The peer cannot run here (package missing) or cannot run this model; str() says why."""


@dataclass
class PeerModel:
    """A built peer: ``run(ids)`` → float intent logits [K] and slot logits [len(ids), S]."""

    name: str
    size_bytes: int  # the model file a device would store (.onnx / .tflite)
    run: object  # callable(list[int]) -> (np.ndarray, np.ndarray)
    prepare: object = None  # callable(list[int]) -> callable(): inputs set up, the timed call runs the network
    arena_bytes: int | None = None  # TFLite Micro only: the smallest arena that runs it
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return LABELS[self.name]


def to_our_logits(model: IntModel, intent: np.ndarray, slots: np.ndarray) -> Logits:
    """Float logits (a peer's dequantized int8 outputs) → int8 logits in our heads' scales."""
    sc = model.info["scales"]

    def q(x, s):
        return np.clip(np.round(np.asarray(x, np.float64) / s), -128, 127).astype(np.int64)

    return Logits(intent=q(intent, sc["head.intent"]), slots=q(slots, sc["head.slot"]))
