"""The float SqueezeBERT that is trained, and later quantized op for op.

Iandola et al. 2020: BERT whose position-wise fully connected layers are 1x1 convolutions,
grouped (G=4) for Q, K, V and both FFN layers, ungrouped for the post-attention projection.
Tensors are [batch, channels, tokens], as in the paper. Each op here has an integer
counterpart in ``reference.py``; keep the two in step.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import ModelConfig


def conv1x1(c_in: int, c_out: int, groups: int) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, kernel_size=1, groups=groups)


class SqueezeBertLayer(nn.Module):
    def __init__(self, cfg: ModelConfig, dropout: float):
        super().__init__()
        h, g = cfg.hidden, cfg.groups
        self.heads = cfg.heads
        self.q, self.k, self.v = conv1x1(h, h, g), conv1x1(h, h, g), conv1x1(h, h, g)
        self.o = conv1x1(h, h, 1)
        self.ln1 = nn.LayerNorm(h)
        self.ffn1 = conv1x1(h, cfg.ffn, g)
        self.ffn2 = conv1x1(cfg.ffn, h, g)
        self.ln2 = nn.LayerNorm(h)
        self.drop = nn.Dropout(dropout)

    @staticmethod
    def _ln(ln: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
        return ln(x.transpose(1, 2)).transpose(1, 2)

    def attention(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        d = c // self.heads
        q = self.q(x).view(b, self.heads, d, t)
        k = self.k(x).view(b, self.heads, d, t)
        v = self.v(x).view(b, self.heads, d, t)
        scores = torch.einsum("bhdi,bhdj->bhij", q, k) / math.sqrt(d)
        # Padded keys get no weight at all (the integer softmax skips them the same way).
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        probs = self.drop(torch.softmax(scores, dim=-1))
        return torch.einsum("bhij,bhdj->bhdi", probs, v).reshape(b, c, t)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        a = self.drop(self.o(self.attention(x, key_mask)))
        x = self._ln(self.ln1, x + a)
        f = self.drop(self.ffn2(F.gelu(self.ffn1(x))))
        return self._ln(self.ln2, x + f)


class SqueezeBert(nn.Module):
    """Token ids [B, T] + lengths [B] → intent logits [B, K] and slot logits [B, T, S].

    The intent head reads the [CLS] position; the slot head tags every token (BIO).
    """

    def __init__(self, cfg: ModelConfig, n_intents: int, n_tags: int, dropout: float = 0.1):
        super().__init__()
        self.cfg = cfg
        self.token = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.position = nn.Embedding(cfg.max_len, cfg.hidden)
        self.ln = nn.LayerNorm(cfg.hidden)
        self.layers = nn.ModuleList(SqueezeBertLayer(cfg, dropout) for _ in range(cfg.layers))
        self.intent = nn.Linear(cfg.hidden, n_intents)
        self.slot = nn.Linear(cfg.hidden, n_tags)
        self.drop = nn.Dropout(dropout)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.05)
        if isinstance(m, (nn.Linear, nn.Conv1d)) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Hidden states [B, H, T] after the last layer."""
        t = ids.shape[1]
        key_mask = torch.arange(t, device=ids.device)[None, :] < lengths[:, None]
        x = self.token(ids) + self.position.weight[:t][None]
        x = self.drop(self.ln(x)).transpose(1, 2)
        for layer in self.layers:
            x = layer(x, key_mask)
        return x

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor):
        h = self.encode(ids, lengths).transpose(1, 2)  # [B, T, H]
        return self.intent(h[:, 0]), self.slot(h)
