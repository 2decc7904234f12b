"""The integer reference interpreter: THE definition of every output bit.

Generated C (any target) must produce exactly these intent and slot logits for every input.
Only the ``length`` real tokens are computed: every op is position-wise except attention,
whose keys are limited to the real tokens, so padding can never change a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import intmath as im
from .model_file import IntModel


@dataclass(frozen=True)
class Logits:
    intent: np.ndarray  # int8-valued int64 [n_intents]
    slots: np.ndarray  # int8-valued int64 [length, n_tags]


def grouped_linear(x: np.ndarray, w: np.ndarray, groups: int) -> np.ndarray:
    """1x1 convolution with ``groups``: x [T, C_in], w [C_out, C_in/groups] → int64 [T, C_out]."""
    t, c_in = x.shape
    c_out, per_group = w.shape
    xg = x.reshape(t, groups, c_in // groups)
    wg = w.reshape(groups, c_out // groups, per_group).astype(np.int64)
    return np.einsum("tgi,goi->tgo", xg, wg).reshape(t, c_out)


def conv(model: IntModel, name: str, x: np.ndarray, groups: int) -> np.ndarray:
    """Grouped 1x1 conv + bias, requantized per output channel to int8."""
    acc = grouped_linear(x, model[f"{name}.w"], groups) + model[f"{name}.b"].astype(np.int64)
    return im.requantize(acc, model[f"{name}.m"], model[f"{name}.n"])


def attention(model: IntModel, i: int, x: np.ndarray) -> np.ndarray:
    cfg = model.config
    g = cfg.groups
    q = conv(model, f"layer{i}.q", x, g)
    k = conv(model, f"layer{i}.k", x, g)
    v = conv(model, f"layer{i}.v", x, g)
    length, d = x.shape[0], cfg.head_dim
    sm, sn = int(model[f"layer{i}.score.m"][0]), int(model[f"layer{i}.score.n"][0])
    ctx = np.empty((length, cfg.hidden), dtype=np.int64)
    for h in range(cfg.heads):
        cols = slice(h * d, (h + 1) * d)
        scores = q[:, cols] @ k[:, cols].T  # [query, key], int32 range
        probs = im.softmax_probs(scores, length, sm, sn, model["exp_table"])
        ctx[:, cols] = probs @ v[:, cols]
    return im.requantize(ctx, model[f"layer{i}.ctx.m"], model[f"layer{i}.ctx.n"])


def layer(model: IntModel, i: int, x: np.ndarray) -> np.ndarray:
    p = f"layer{i}"
    a = conv(model, f"{p}.o", attention(model, i, x), 1)
    x = im.layer_norm(im.residual(x, a, model[f"{p}.res1.k"]), model[f"{p}.ln1.g"], model[f"{p}.ln1.b"])
    f = conv(model, f"{p}.ffn1", x, model.config.groups)
    gelu = model[f"{p}.gelu.lut"].astype(np.int64)[f + 128]
    o = conv(model, f"{p}.ffn2", gelu, model.config.groups)
    return im.layer_norm(im.residual(x, o, model[f"{p}.res2.k"]), model[f"{p}.ln2.g"], model[f"{p}.ln2.b"])


def embed(model: IntModel, ids: np.ndarray) -> np.ndarray:
    tok = model["embed.token"][ids]
    pos = model["embed.position"][: len(ids)]
    return im.layer_norm(im.residual(tok, pos, model["embed.k"]), model["embed.ln.g"], model["embed.ln.b"])


def run(model: IntModel, ids: Sequence[int]) -> Logits:
    """Integer inference on one sentence's token ids (``1 <= len(ids) <= max_len``)."""
    ids = np.asarray(ids, dtype=np.int64)
    if not 1 <= len(ids) <= model.config.max_len:
        raise ValueError(f"need 1..{model.config.max_len} token ids, got {len(ids)}")
    if ids.min() < 0 or ids.max() >= model.config.vocab_size:
        raise ValueError("token id out of vocabulary range")
    x = embed(model, ids)
    for i in range(model.config.layers):
        x = layer(model, i, x)
    intent = conv(model, "head.intent", x[:1], 1)[0]
    slots = conv(model, "head.slot", x, 1)
    return Logits(intent=intent, slots=slots)
