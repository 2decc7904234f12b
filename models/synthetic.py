"""Int8 models without training: random weights, real quantization.

For compiler tests and benchmarks of a preset's shape (sizes, MACs, instruction counts do
not depend on what the weights learned) and for bit-exactness tests, where random weights
reach corners that a trained model rarely visits.
"""

from __future__ import annotations

import numpy as np
import torch

from .architecture import SqueezeBert
from .config import ModelConfig
from .labels import Batchable, LabelSpace
from .model_file import IntModel
from .quantize import quantize
from .tokenizer import CONTINUATION, SPECIAL_TOKENS


def random_int_model(config: ModelConfig, n_intents: int = 8, n_slots: int = 4, seed: int = 0,
                     weight_std: float = 0.2) -> IntModel:
    torch.manual_seed(seed)
    labels = LabelSpace((None, *[f"Intent{i}" for i in range(1, n_intents)]), tuple(f"slot{i}" for i in range(n_slots)))
    model = SqueezeBert(config, len(labels.intents), labels.n_tags, dropout=0.0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, weight_std)
        for layer_norm in [model.ln] + [m for layer in model.layers for m in (layer.ln1, layer.ln2)]:
            layer_norm.weight.uniform_(0.5, 1.5)
    model.eval()
    rng = np.random.default_rng(seed)
    n = 256
    lengths = rng.integers(1, config.max_len + 1, size=n)
    ids = rng.integers(len(SPECIAL_TOKENS), config.vocab_size, size=(n, config.max_len))
    ids[np.arange(config.max_len)[None, :] >= lengths[:, None]] = 0
    calib = Batchable(ids, lengths, np.zeros(n, np.int64), np.zeros_like(ids))
    vocab = list(SPECIAL_TOKENS) + [f"w{i}" for i in range(config.vocab_size - len(SPECIAL_TOKENS))]
    vocab[3:3 + 26] = [chr(97 + i) for i in range(26)]
    vocab[29:29 + 26] = [CONTINUATION + chr(97 + i) for i in range(26)]
    return quantize(model, calib, labels, vocab, {}, oos_threshold=0, info={"synthetic": True, "seed": seed})
