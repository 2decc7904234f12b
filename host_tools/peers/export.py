"""The float network every peer starts from, and its static-shape form for TFLite.

All peers are built from the same trained weights as our int8 model: the IntModel's integers
dequantized back into the float ``SqueezeBert`` (``compiler_bench.float_model_from_int``).
TFLite Micro needs static shapes and has no GELU kernel, so ``StaticNet`` runs the same
network on a fixed ``max_len`` window with padded keys masked, and GELU as x·sigmoid(1.702x).
"""

from __future__ import annotations

import math

import numpy as np

from ..models.model_file import IntModel

# Added to the attention scores of padded keys. Finite because a -inf (or the -10000 of the
# usual recipe) would stretch the int8 range of the score tensor until no precision is left;
# exp(-30) is zero in any int8 softmax output.
MASK_PENALTY = 30.0


def float_net(model: IntModel):
    from ..compiler_bench import float_model_from_int

    return float_model_from_int(model)


def static_net(model: IntModel, gelu: str = "sigmoid"):
    """``float_net`` wrapped for a fixed-length TFLite graph: ids [1, max_len] int32 and
    length [1] int32 in, intent [1, K] and slot [1, max_len, S] logits out."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    net = float_net(model)
    cfg = model.config

    def act(x):
        return x * torch.sigmoid(1.702 * x) if gelu == "sigmoid" else F.gelu(x)

    class StaticNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.register_buffer("pos", torch.arange(cfg.max_len, dtype=torch.int32)[None, :])

        def forward(self, ids, length):
            n = self.net
            penalty = (self.pos >= length[:, None]).to(torch.float32) * -MASK_PENALTY  # [1, T]
            x = n.token(ids.long()) + n.position.weight[None]
            x = n.ln(x).transpose(1, 2)
            for layer in n.layers:
                b, c, t = x.shape
                d = c // layer.heads
                q = layer.q(x).view(b, layer.heads, d, t)
                k = layer.k(x).view(b, layer.heads, d, t)
                v = layer.v(x).view(b, layer.heads, d, t)
                scores = torch.matmul(q.transpose(2, 3), k) / math.sqrt(d) + penalty[:, None, None, :]
                probs = torch.softmax(scores, dim=-1)
                ctx = torch.matmul(v, probs.transpose(2, 3)).reshape(b, c, t)
                x = layer._ln(layer.ln1, x + layer.o(ctx))
                x = layer._ln(layer.ln2, x + layer.ffn2(act(layer.ffn1(x))))
            h = x.transpose(1, 2)
            return n.intent(h[:, 0]), n.slot(h)

    return StaticNet().eval()


def padded(ids, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids → the static graph's inputs: ids padded with 0 to max_len, and the length."""
    a = np.zeros((1, max_len), dtype=np.int32)
    a[0, : len(ids)] = ids
    return a, np.array([len(ids)], dtype=np.int32)
