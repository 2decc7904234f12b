"""Integer primitives that define every bit of inference (see FORMAT.md, "Integer semantics").

All arithmetic is on numpy int64 arrays; ``>>`` is numpy's arithmetic (flooring) shift,
which is what C's ``>>`` on a signed 64-bit value does with GCC and Clang on every target
we build for. Rounding is always "half up": add half of the divisor, then floor.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
# Integer LayerNorm: inv_std carries LN_INV_BITS fraction bits, the normalized value
# LN_Y_BITS, and the folded gamma/beta LN_OUT_BITS.
LN_INV_BITS = 40
LN_Y_BITS = 10
LN_OUT_BITS = 20
# Residual adds bring both operands to a common scale with multipliers below 2**RES_BITS.
RES_BITS = 12
# Softmax: exp table of 256 Q15 entries over [0, 256 * EXP_STEP); probabilities come out as
# 0..255 meaning p/255.
EXP_STEP = 1.0 / 32.0
EXP_ONE = 1 << 15
PROB_MAX = 255
PROB_BITS = 23
# Confidence is an integer in 0..CONF_ONE, printed as CONF_ONE-ths.
CONF_ONE = 10000


def quantize_multiplier(real: float) -> tuple[int, int]:
    """``real`` ≈ m / 2**n with m in [2**30, 2**31) and 1 <= n <= 62."""
    if not (real > 0 and math.isfinite(real)):
        raise ValueError(f"multiplier must be positive and finite, got {real}")
    mant, exp = math.frexp(real)  # real = mant * 2**exp, mant in [0.5, 1)
    m = round(mant * (1 << 31))
    n = 31 - exp
    if m == 1 << 31:
        m //= 2
        n -= 1
    while n > 62:  # tiny multipliers: give up mantissa bits rather than shift further
        m = (m + 1) >> 1
        n -= 1
    if n < 1:
        raise ValueError(f"multiplier {real} is too large")
    return int(m), int(n)


def round_shift(x: np.ndarray, n) -> np.ndarray:
    """floor((x + 2**(n-1)) / 2**n) on int64: a right shift rounding half up."""
    n = np.asarray(n, dtype=np.int64)
    return (np.asarray(x, dtype=np.int64) + (np.int64(1) << (n - 1))) >> n


def requantize(acc: np.ndarray, m, n, zero_point: int = 0) -> np.ndarray:
    """int32 accumulator → int8: clamp(round_half_up(acc * m / 2**n) + zero_point)."""
    scaled = round_shift(np.asarray(acc, dtype=np.int64) * np.asarray(m, dtype=np.int64), n)
    return np.clip(scaled + zero_point, INT8_MIN, INT8_MAX).astype(np.int64)


def isqrt(x: np.ndarray) -> np.ndarray:
    """Exact floor(sqrt(x)) of non-negative int64 values."""
    x = np.asarray(x, dtype=np.int64)
    return np.array([math.isqrt(int(v)) for v in x.reshape(-1)], dtype=np.int64).reshape(x.shape)


def layer_norm(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer LayerNorm over the last axis (a power of two long) of int64 ``r``.

    mean and variance are floored shifts; the normalized value y = d / std carries
    LN_Y_BITS fraction bits; out = clamp(round_half_up((y * g + b) / 2**LN_OUT_BITS)).
    """
    r = np.asarray(r, dtype=np.int64)
    h = r.shape[-1]
    shift = h.bit_length() - 1
    if 1 << shift != h:
        raise ValueError("LayerNorm width must be a power of two")
    mean = r.sum(axis=-1, keepdims=True) >> shift
    d = r - mean
    var = (d * d).sum(axis=-1, keepdims=True) >> shift
    std = np.maximum(isqrt(var), 1)
    inv = (np.int64(1) << LN_INV_BITS) // std
    y = (d * inv) >> (LN_INV_BITS - LN_Y_BITS)
    out = round_shift(y * np.asarray(g, np.int64) + np.asarray(b, np.int64), LN_OUT_BITS)
    return np.clip(out, INT8_MIN, INT8_MAX)


def residual(a: np.ndarray, b: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Sum of two int8 tensors of different scales, in a common integer scale: a*k0 + b*k1."""
    return np.asarray(a, np.int64) * int(k[0]) + np.asarray(b, np.int64) * int(k[1])


def residual_multipliers(scale_a: float, scale_b: float) -> np.ndarray:
    """k such that a*k0 + b*k1 is proportional to a*scale_a + b*scale_b (LayerNorm follows,
    so only the ratio matters)."""
    top = max(scale_a, scale_b)
    return np.array([round(scale_a / top * (1 << RES_BITS)), round(scale_b / top * (1 << RES_BITS))],
                    dtype=np.int32)


def exp_table() -> np.ndarray:
    """EXP[k] = round(2**15 * exp(-k * EXP_STEP)); the last entry is 0 ("far below the max")."""
    k = np.arange(256, dtype=np.float64)
    table = np.round(EXP_ONE * np.exp(-k * EXP_STEP)).astype(np.int64)
    table[255] = 0
    return table.astype(np.uint16)


def exp_of_gap(gap: np.ndarray, m: int, n: int, table: np.ndarray) -> np.ndarray:
    """table[min(255, round_half_up(gap * m / 2**n))] for non-negative int64 ``gap``."""
    idx = np.minimum(round_shift(np.asarray(gap, np.int64) * np.int64(m), n), 255)
    return np.asarray(table, np.int64)[idx]


def softmax_probs(scores: np.ndarray, length: int, m: int, n: int, table: np.ndarray) -> np.ndarray:
    """Length-aware integer softmax over the last axis: int32 scores → 0..255 (meaning p/255).

    Only the first ``length`` keys take part; the others get probability 0 exactly.
    """
    s = np.asarray(scores, np.int64)[..., :length]
    e = exp_of_gap(s.max(axis=-1, keepdims=True) - s, m, n, table)
    total = e.sum(axis=-1, keepdims=True)  # >= EXP_ONE: the max itself contributes table[0]
    recip = (np.int64(PROB_MAX) << PROB_BITS) // total
    p = (e * recip + (np.int64(1) << (PROB_BITS - 1))) >> PROB_BITS
    out = np.zeros(scores.shape, dtype=np.int64)
    out[..., :length] = p
    return out


def confidence(logits: np.ndarray, top: int, m: int, n: int, table: np.ndarray) -> int:
    """Softmax probability of class ``top`` as an integer in 0..CONF_ONE (rounded half up)."""
    z = np.asarray(logits, np.int64)
    e = exp_of_gap(z[top] - z, m, n, table)
    total = int(e.sum())
    return (int(table[0]) * CONF_ONE + total // 2) // total


def argmax(x: np.ndarray) -> int:
    """Index of the largest value; the lowest index wins ties (as numpy and the C code do)."""
    return int(np.argmax(x))
