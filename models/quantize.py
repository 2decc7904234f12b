"""Post-training quantization: float SqueezeBERT + calibration sentences → int8 IntModel.

Weights: symmetric int8 per output channel. Activations: int8 with one scale per tensor,
calibrated as the largest magnitude seen on real tokens (padding excluded); the GELU output
alone is asymmetric, its zero point folded into the next layer's bias. Every float→integer
decision is made here, once; the interpreter and the generated C only see integers.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch
from torch.nn import functional as F

from . import intmath as im
from .architecture import SqueezeBert
from .labels import Batchable, LabelSpace
from .model_file import IntModel

EPS = 1e-8


class _Ranges:
    """Running min/max of named activations over real (non-padding) tokens."""

    def __init__(self):
        self.lo = defaultdict(lambda: math.inf)
        self.hi = defaultdict(lambda: -math.inf)

    def see(self, name: str, x: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        if mask is not None:
            x = x[mask]
        if x.numel():
            self.lo[name] = min(self.lo[name], float(x.min()))
            self.hi[name] = max(self.hi[name], float(x.max()))

    def scale(self, name: str) -> float:
        return max(abs(self.lo[name]), abs(self.hi[name]), EPS) / 127.0


@torch.no_grad()
def calibrate(model: SqueezeBert, data: Batchable, batch_size: int = 256) -> _Ranges:
    """Run the float model op by op (as the integer model will) and record activation ranges."""
    model.eval()
    r = _Ranges()
    for i in range(0, len(data.ids), batch_size):
        ids = torch.from_numpy(data.ids[i:i + batch_size])
        lengths = torch.from_numpy(data.lengths[i:i + batch_size])
        t = int(lengths.max())
        ids = ids[:, :t]
        valid = torch.arange(t)[None, :] < lengths[:, None]  # [B, T]
        vc = valid[:, None, :]  # for [B, C, T] tensors, broadcast over channels

        def see(name, x_bct):
            r.see(name, x_bct.transpose(1, 2), valid)

        x = model.ln(model.token(ids) + model.position.weight[:t][None]).transpose(1, 2)
        see("embed.ln", x)
        for li, layer in enumerate(model.layers):
            p = f"layer{li}"
            b, c, _ = x.shape
            d = c // layer.heads
            q, k, v = layer.q(x), layer.k(x), layer.v(x)
            see(f"{p}.q", q), see(f"{p}.k", k), see(f"{p}.v", v)
            qh, kh, vh = (z.view(b, layer.heads, d, t) for z in (q, k, v))
            scores = torch.einsum("bhdi,bhdj->bhij", qh, kh) / math.sqrt(d)
            scores = scores.masked_fill(~valid[:, None, None, :], float("-inf"))
            ctx = torch.einsum("bhij,bhdj->bhdi", torch.softmax(scores, -1), vh).reshape(b, c, t)
            see(f"{p}.ctx", ctx)
            a = layer.o(ctx)
            see(f"{p}.o", a)
            x = layer._ln(layer.ln1, x + a)
            see(f"{p}.ln1", x)
            f = layer.ffn1(x)
            see(f"{p}.ffn1", f)
            g = F.gelu(f)
            see(f"{p}.gelu", g)
            o = layer.ffn2(g)
            see(f"{p}.ffn2", o)
            x = layer._ln(layer.ln2, x + o)
            see(f"{p}.ln2", x)
        h = x.transpose(1, 2)
        r.see("head.intent", model.intent(h[:, 0]))
        r.see("head.slot", model.slot(h), valid)
        del vc
    return r


def _multipliers(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [im.quantize_multiplier(float(x)) for x in np.atleast_1d(real)]
    return (np.array([m for m, _ in pairs], dtype=np.int32), np.array([n for _, n in pairs], dtype=np.int8))


def _int32(x: np.ndarray, what: str) -> np.ndarray:
    x = np.round(x)
    if np.abs(x).max(initial=0) >= 2**31:
        raise OverflowError(f"{what} does not fit in int32; the float model has extreme values")
    return x.astype(np.int32)


def quantize_linear(arrays: dict, name: str, weight: torch.Tensor, bias: torch.Tensor,
                    s_in: float, s_out: float, in_zero_point: int = 0) -> None:
    """int8 per-channel weights, int32 bias (input zero point folded in), requant m/n."""
    w = weight.detach().double().numpy().reshape(weight.shape[0], -1)
    s_w = np.maximum(np.abs(w).max(axis=1), EPS) / 127.0
    wq = np.clip(np.round(w / s_w[:, None]), -127, 127).astype(np.int8)
    b = bias.detach().double().numpy() / (s_in * s_w)
    b = b - in_zero_point * wq.astype(np.int64).sum(axis=1)
    arrays[f"{name}.w"] = wq
    arrays[f"{name}.b"] = _int32(b, f"{name} bias")
    arrays[f"{name}.m"], arrays[f"{name}.n"] = _multipliers(s_in * s_w / s_out)


def quantize_layer_norm(arrays: dict, name: str, ln: torch.nn.LayerNorm, s_out: float) -> None:
    gamma = ln.weight.detach().double().numpy()
    beta = ln.bias.detach().double().numpy()
    arrays[f"{name}.g"] = _int32(gamma / s_out * 2 ** (im.LN_OUT_BITS - im.LN_Y_BITS), f"{name} gamma")
    arrays[f"{name}.b"] = _int32(beta / s_out * 2**im.LN_OUT_BITS, f"{name} beta")


def gelu_table(s_in: float, s_out: float, zero_point: int) -> np.ndarray:
    x = torch.arange(-128, 128, dtype=torch.float64) * s_in
    y = torch.round(F.gelu(x) / s_out) + zero_point
    return y.clamp(-128, 127).numpy().astype(np.int8)


def quantize(model: SqueezeBert, calibration: Batchable, labels: LabelSpace, vocab: list[str],
             value_table: dict, oos_threshold: int = 0, info: dict | None = None) -> IntModel:
    cfg = model.cfg
    r = calibrate(model, calibration)
    arrays: dict[str, np.ndarray] = {"exp_table": im.exp_table()}

    tok = model.token.weight.detach().double().numpy()
    pos = model.position.weight.detach().double().numpy()
    s_tok, s_pos = np.abs(tok).max() / 127.0, np.abs(pos).max() / 127.0
    arrays["embed.token"] = np.clip(np.round(tok / s_tok), -127, 127).astype(np.int8)
    arrays["embed.position"] = np.clip(np.round(pos / s_pos), -127, 127).astype(np.int8)
    arrays["embed.k"] = im.residual_multipliers(s_tok, s_pos)
    s_x = r.scale("embed.ln")
    quantize_layer_norm(arrays, "embed.ln", model.ln, s_x)
    scales = {"embed.token": s_tok, "embed.position": s_pos, "embed.ln": s_x}

    for li, layer in enumerate(model.layers):
        p = f"layer{li}"
        s = {k: r.scale(f"{p}.{k}") for k in ("q", "k", "v", "ctx", "o", "ln1", "ffn1", "ln2", "ffn2")}
        for part in ("q", "k", "v"):
            conv = getattr(layer, part)
            quantize_linear(arrays, f"{p}.{part}", conv.weight, conv.bias, s_x, s[part])
        score_real = s["q"] * s["k"] / math.sqrt(cfg.head_dim) / im.EXP_STEP
        arrays[f"{p}.score.m"], arrays[f"{p}.score.n"] = _multipliers(score_real)
        arrays[f"{p}.ctx.m"], arrays[f"{p}.ctx.n"] = _multipliers(s["v"] / im.PROB_MAX / s["ctx"])
        quantize_linear(arrays, f"{p}.o", layer.o.weight, layer.o.bias, s["ctx"], s["o"])
        arrays[f"{p}.res1.k"] = im.residual_multipliers(s_x, s["o"])
        quantize_layer_norm(arrays, f"{p}.ln1", layer.ln1, s["ln1"])
        quantize_linear(arrays, f"{p}.ffn1", layer.ffn1.weight, layer.ffn1.bias, s["ln1"], s["ffn1"])
        lo, hi = min(r.lo[f"{p}.gelu"], 0.0), max(r.hi[f"{p}.gelu"], EPS)
        s_g = (hi - lo) / 255.0
        z_g = int(round(-128 - lo / s_g))
        arrays[f"{p}.gelu.lut"] = gelu_table(s["ffn1"], s_g, z_g)
        quantize_linear(arrays, f"{p}.ffn2", layer.ffn2.weight, layer.ffn2.bias, s_g, s["ffn2"], z_g)
        arrays[f"{p}.res2.k"] = im.residual_multipliers(s["ln1"], s["ffn2"])
        quantize_layer_norm(arrays, f"{p}.ln2", layer.ln2, s["ln2"])
        scales.update({f"{p}.{k}": v for k, v in s.items()})
        scales[f"{p}.gelu"] = s_g
        scales[f"{p}.gelu.zero_point"] = z_g
        s_x = s["ln2"]

    s_il, s_sl = r.scale("head.intent"), r.scale("head.slot")
    quantize_linear(arrays, "head.intent", model.intent.weight, model.intent.bias, s_x, s_il)
    quantize_linear(arrays, "head.slot", model.slot.weight, model.slot.bias, s_x, s_sl)
    arrays["head.conf.m"], arrays["head.conf.n"] = _multipliers(s_il / im.EXP_STEP)
    scales.update({"head.intent": s_il, "head.slot": s_sl})

    info = dict(info or {})
    info["scales"] = {k: float(v) for k, v in scales.items()}
    int_model = IntModel(config=cfg, vocab=list(vocab), intents=list(labels.intents), slots=list(labels.slots),
                         arrays=arrays, oos_threshold=oos_threshold, value_table=value_table, info=info)
    int_model.validate()
    return int_model
