"""Integer kernels of the model as TE computations (and one TVMScript function for attention).

Every function here reproduces a piece of ``models/reference.py`` bit for bit:

* requantize = round-half-up ``(acc * m + 2**(n-1)) >> n`` in int64, then clamp to int8;
* integer LayerNorm with floored shifts, ``isqrt`` floor and ``inv = 2**40 // std``;
* the length-aware softmax with the 256-entry exp table.

The row count ``n`` (the sentence length) is symbolic: kernels loop over the real tokens only.
Fusion is decided here (each function is one kernel); loop order and temporaries in
``schedules.py``.
"""

from __future__ import annotations

from typing import Callable

from tvm import te, tirx
from tvm.script import tirx as T

from ..models import intmath as im

I64 = "int64"


def c64(v: int):
    return tirx.const(int(v), I64)


def clamp_i8(v):
    return te.max(te.min(v, tirx.const(127, str(v.ty))), tirx.const(-128, str(v.ty))).astype("int8")


def requant_expr(acc64, m, n):
    """clamp(round_half_up(acc64 * m / 2**n)) with per-element PrimExprs m (int32) and n (int8)."""
    n64 = n.astype(I64)
    return clamp_i8((acc64 * m.astype(I64) + (c64(1) << (n64 - c64(1)))) >> n64)


FAST_MIN_SHIFT = 33


REQUANT_FAST = "se_requant_fast"

# C helpers the kernels call through ``call_pure_extern`` (emitted once at the top of model.c).
# In a helper, TVM's simplifier cannot rewrite the arithmetic (it narrows casts and drops the
# clamp when it mis-bounds a variable shift), and GCC sees plain 32-bit code.
PROLOGUE = r"""
static inline int64_t se_smull(int32_t a, int32_t b) { return (int64_t)a * b; }
static inline int64_t se_mul_s32_s64(int32_t a, int64_t b) { return (int64_t)a * b; }
/* LayerNorm output: y = (d * inv) >> 30 fits in int32 (|d| < 2 sqrt(H) std, so |y| < 2^11 sqrt(H))
 * and so does z >> 20 for H < 2^16; same numbers as the int64 reference. */
static inline int8_t se_ln_out(int32_t d, int64_t inv, int32_t g, int32_t b) {
  int32_t y = (int32_t)(((int64_t)d * inv) >> 30);
  int32_t o = (int32_t)(((int64_t)y * g + b + ((int64_t)1 << 19)) >> 20);
#if defined(__ARM_FEATURE_SAT) && defined(__GNUC__)
  return (int8_t)__builtin_arm_ssat(o, 8);
#else
  return (int8_t)(o < -128 ? -128 : (o > 127 ? 127 : o));
#endif
}
/* Requantization for shifts n >= 33 with acc + b in int32: p = (acc + b) * m, hi = p >> 32;
 * (p + 2^(n-1)) >> n == (hi + 2^(n-33)) >> (n-32) exactly (the low word adds < 1). */
/* round_half_up(v * m / 2^n) for n >= 33, v * m in int64: same identity as below, no clamp. */
static inline int32_t se_mul_round_shift_hi(int32_t v, int32_t m, int32_t n) {
  int32_t hi = (int32_t)(((int64_t)v * (int64_t)m) >> 32);
  return (hi + ((int32_t)1 << (n - 33))) >> (n - 32);
}
static inline int8_t se_requant_fast(int32_t acc, int32_t b, int32_t m, int32_t n) {
  int32_t hi = (int32_t)(((int64_t)(acc + b) * (int64_t)m) >> 32);
  int32_t y = (hi + ((int32_t)1 << (n - 33))) >> (n - 32);
#if defined(__ARM_FEATURE_SAT) && defined(__GNUC__)
  return (int8_t)__builtin_arm_ssat(y, 8); /* one SSAT on Cortex-M3/M4/M7/M33 */
#else
  return (int8_t)(y < -128 ? -128 : (y > 127 ? 127 : y));
#endif
}
"""


_C_HELPERS = [True]


class plain_tir:
    """Within ``with plain_tir():`` the kernels use no C helper (``call_pure_extern``): the same
    integer algorithm in pure TIR, e.g. to run the graph in TVM's own VM on LLVM."""

    def __enter__(self):
        _C_HELPERS.append(False)
        return self

    def __exit__(self, *exc):
        _C_HELPERS.pop()


def c_helpers() -> bool:
    return _C_HELPERS[-1]


def smull_expr(a, b):
    """int64 product of two int32 expressions, opaque to TVM's simplifier (which would otherwise
    push the int64 casts into ``a`` and ``b`` and do their arithmetic in 64 bits)."""
    if not c_helpers():
        return a.astype(I64) * b.astype(I64)
    return tirx.call_pure_extern(I64, "se_smull", a, b)


def mul_s32_s64_expr(a, b):
    if not c_helpers():
        return a.astype(I64) * b
    return tirx.call_pure_extern(I64, "se_mul_s32_s64", a, b)


def requant_fast_expr(acc32, bias, m, n):
    """``requant_expr`` for shifts n >= 33 and ``acc + bias`` that fits in int32, in 32-bit steps:
    with p = v * m and hi = p >> 32, (p + 2**(n-1)) >> n == (hi + 2**(n-33)) >> (n-32) exactly
    (the low word only ever adds a fraction below one). One 32x32->64 multiply (its high word),
    no 64-bit shifts: ~8 instructions instead of ~30 on a 32-bit core."""
    if not c_helpers():
        return requant_expr(acc32.astype(I64) + bias.astype(I64), m, n)
    return tirx.call_pure_extern("int8", REQUANT_FAST, acc32, bias.astype("int32"), m.astype("int32"),
                                 n.astype("int32"))


def fast_requant_ok(w, b, n) -> bool:
    """Whether ``requant_fast_expr`` applies to a conv (numpy weight, bias and shift arrays)."""
    import numpy as np

    kin = int(w.shape[1])
    bmax = int(np.abs(b.astype(np.int64)).max()) if b.size else 0
    return int(n.min()) >= FAST_MIN_SHIFT and kin * (1 << 14) + bmax < (1 << 31)


def _isqrt_step(v, prev, b):
    return lambda t: tirx.Select((prev[t] + b) * (prev[t] + b) <= v[t], prev[t] + b, prev[t])


def isqrt_stages(v, bits: int, name: str):
    """floor(sqrt(v[t])) of non-negative int64 ``v < 4**bits``: a bitwise binary search, one
    TE stage per result bit (``r += b`` when ``(r + b)**2 <= v``; no division, no loop). The
    schedule computes every stage at the token loop, so each is one scalar."""
    r = None
    for i in reversed(range(bits)):
        b = c64(1 << i)
        if r is None:
            r = te.compute(v.shape, lambda t: tirx.Select(b * b <= v[t], b, c64(0)), name=f"{name}_isq{i}")
        else:
            r = te.compute(v.shape, _isqrt_step(v, r, b), name=f"{name}_isq{i}")
    return r


def conv_stage(x, w, b, m, n, in_index: Callable, name: str, rows=None, fast: bool = False):
    """1x1 (grouped) convolution + bias + requantization: two TE stages (int32 accumulator,
    int8 output). ``in_index(o, k)`` is the input channel of weight ``w[o, k]``;
    ``rows`` overrides the row extent (the intent head reads row 0 only)."""
    cout, kin = (int(s) for s in w.shape)
    t_ext = x.shape[0] if rows is None else rows
    k = te.reduce_axis((0, kin), name="k")
    acc = te.compute(
        (t_ext, cout),
        lambda t, o: te.sum(x[t, in_index(o, k)].astype("int32") * w[o, k].astype("int32"), axis=k),
        name=f"{name}_acc",
    )
    if fast:
        out = te.compute((t_ext, cout), lambda t, o: requant_fast_expr(acc[t, o], b[o], m[o], n[o]), name=name)
    else:
        out = te.compute((t_ext, cout), lambda t, o: requant_expr(acc[t, o].astype(I64) + b[o].astype(I64),
                                                                  m[o], n[o]), name=name)
    return acc, out


def grouped_index(cin: int, cout: int, groups: int):
    per_in, per_out = cin // groups, cout // groups
    if groups == 1:
        return lambda o, k: k
    return lambda o, k: (o // per_out) * per_in + k


def residual_fits_int32(k0: int, k1: int, hidden: int) -> bool:
    """Whether a residual ``a*k0 + b*k1`` of int8 operands and its row sum fit in int32."""
    return 128 * (abs(int(k0)) + abs(int(k1))) * hidden < (1 << 31)


def residual_fn(a: Callable, b: Callable, k0: int, k1: int, hidden: int) -> tuple[Callable, bool]:
    """``(t, c) -> a(t, c)*k0 + b(t, c)*k1`` for int8 element functions: int32 arithmetic
    (one multiply-accumulate on a 32-bit core) when it cannot overflow, else int64."""
    if residual_fits_int32(k0, k1, hidden):
        i32 = "int32"
        return (lambda t, c: a(t, c).astype(i32) * tirx.const(int(k0), i32) +
                b(t, c).astype(i32) * tirx.const(int(k1), i32)), True
    return (lambda t, c: a(t, c).astype(I64) * c64(k0) + b(t, c).astype(I64) * c64(k1)), False


def layer_norm_stages(res: Callable, rows, hidden: int, g, b, isqrt_bits: int, name: str,
                      narrow: bool = False):
    """Integer LayerNorm of the row function ``res(t, c)`` → int8 [rows, hidden].

    ``res`` is int64, or int32 with ``narrow`` (the caller has checked that the residual and
    its row sum fit): then the sum and the centred values stay 32-bit and the variance is a
    32x32->64 multiply-accumulate; the numbers are the same as the int64 reference's."""
    sh = hidden.bit_length() - 1
    dt = "int32" if narrow else I64
    csh = tirx.const(sh, dt)
    c1 = te.reduce_axis((0, hidden), name="c")
    ssum = te.compute((rows,), lambda t: te.sum(res(t, c1), axis=c1), name=f"{name}_sum")
    c2 = te.reduce_axis((0, hidden), name="c")

    def centred(t, c):
        return res(t, c) - (ssum[t] >> csh)

    if narrow:
        var = te.compute((rows,), lambda t: te.sum(smull_expr(centred(t, c2), centred(t, c2)), axis=c2),
                         name=f"{name}_var")
    else:
        var = te.compute((rows,), lambda t: te.sum(centred(t, c2) * centred(t, c2), axis=c2), name=f"{name}_var")
    vsh = te.compute((rows,), lambda t: var[t] >> c64(sh), name=f"{name}_vsh")
    std = isqrt_stages(vsh, isqrt_bits, name)
    inv = te.compute((rows,), lambda t: tirx.truncdiv(c64(1 << im.LN_INV_BITS), te.max(std[t], c64(1))),
                     name=f"{name}_inv")
    yshift = im.LN_INV_BITS - im.LN_Y_BITS

    fast_out = narrow and c_helpers() and hidden < (1 << 16) and yshift == 30 and im.LN_OUT_BITS == 20

    def out_fn(t, c):
        if fast_out:
            return tirx.call_pure_extern("int8", "se_ln_out", centred(t, c), inv[t], g[c].astype("int32"),
                                         b[c].astype("int32"))
        if narrow:
            y = mul_s32_s64_expr(centred(t, c), inv[t]) >> c64(yshift)
        else:
            y = (centred(t, c) * inv[t]) >> c64(yshift)
        z = y * g[c].astype(I64) + b[c].astype(I64) + c64(1 << (im.LN_OUT_BITS - 1))
        return clamp_i8(z >> c64(im.LN_OUT_BITS))

    out = te.compute((rows, hidden), out_fn, name=name)
    return ssum, var, inv, out


# ---------------------------------------------------------------- the kernels (one each)

def embed_ln(ids, tok, pos, g, b, *, k0: int, k1: int, isqrt_bits: int):
    """Token + position embedding, residual add and LayerNorm: ids [n] → int8 [n, H]."""
    rows, hidden = ids.shape[0], int(tok.shape[1])
    fn, narrow = residual_fn(lambda t, c: tok[ids[t], c], lambda t, c: pos[t, c], k0, k1, hidden)
    res = te.compute((rows, hidden), fn, name="embed_res")
    return layer_norm_stages(lambda t, c: res[t, c], rows, hidden, g, b, isqrt_bits, "embed_ln",
                             narrow=narrow)[-1]


def qkv_conv(x, w, b, m, n, *, groups: int, fast: bool = False):
    """Q, K and V grouped convolutions as one kernel: x [n, H] → int8 [n, 3H]
    (weights stacked along the output channels, per-channel requantization)."""
    hidden = int(x.shape[1])
    per_in = hidden // groups
    per_out = hidden // groups

    def idx(o, k):
        return ((o % hidden) // per_out) * per_in + k

    return conv_stage(x, w, b, m, n, idx, "qkv", fast=fast)[1]


def conv_res_ln(a_in, x, w, b, m, n, g, beta, *, groups: int, k0: int, k1: int, isqrt_bits: int,
                fast: bool = False):
    """Grouped conv of ``a_in`` (requantized), residual add with ``x`` and LayerNorm → int8 [n, H]."""
    cin, hidden = int(a_in.shape[1]), int(x.shape[1])
    _, a = conv_stage(a_in, w, b, m, n, grouped_index(cin, hidden, groups), "proj", fast=fast)
    fn, narrow = residual_fn(lambda t, c: x[t, c], lambda t, c: a[t, c], k0, k1, hidden)
    return layer_norm_stages(fn, x.shape[0], hidden, g, beta, isqrt_bits, "ln", narrow=narrow)[-1]


def ffn_res_ln(x, w1, b1, m1, n1, lut, w2, b2, m2, n2, g, beta, *, groups: int, k0: int, k1: int,
               isqrt_bits: int, fast1: bool = False, fast2: bool = False):
    """FFN up-conv + GELU table, FFN down-conv, residual add and LayerNorm → int8 [n, H]."""
    hidden, ffn = int(x.shape[1]), int(w1.shape[0])
    _, f = conv_stage(x, w1, b1, m1, n1, grouped_index(hidden, ffn, groups), "ffn1", fast=fast1)
    gelu = te.compute(f.shape, lambda t, o: lut[f[t, o].astype("int32") + 128], name="gelu")
    return conv_res_ln(gelu, x, w2, b2, m2, n2, g, beta, groups=groups, k0=k0, k1=k1, isqrt_bits=isqrt_bits,
                       fast=fast2)


def head_conv(x, w, b, m, n, *, first_row_only: bool, fast: bool = False):
    """Classifier head (groups 1): CLS row → [n_intents], or every row → [n, n_tags]."""
    if first_row_only:
        _, out = conv_stage(x, w, b, m, n, lambda o, k: k, "head", rows=1, fast=fast)
        return te.compute((int(w.shape[0]),), lambda o: out[0, o], name="head_row")
    return conv_stage(x, w, b, m, n, lambda o, k: k, "head", fast=fast)[1]


def attention_func(*, max_len: int, hidden: int, heads: int, score_m: int, score_n: int,
                   ctx_m: int, ctx_n: int, dot4: str | None = None, exp_table=None):
    """Multi-head attention with the length-aware integer softmax, for one layer:
    qkv [n, 3H] int8 → context [n, H] int8 (requantized). Written in TVMScript, loop by loop:

    * scores: one int32 scalar per key (the head_dim reduction fully unrolled), or with
      ``dot4`` (the Cortex-M tensor intrinsic's C function) head_dim/4 SMLAD dot products;
    * P·V: four output channels at a time with four register accumulators, so each
      probability is loaded once per four MACs and the value row is read contiguously;
    * the context requantization is ``se_requant_fast`` when its shift allows (>= 33).
    The score row is a fixed-size (max_len) kernel-local array."""
    H, D, NH, MAXL = hidden, hidden // heads, heads, max_len
    SM, SN = int(score_m), int(score_n)
    CM, CN = int(ctx_m), int(ctx_n)
    PB = im.PROB_BITS
    PTOP = im.PROB_MAX << PB
    DB = 8 if D % 8 == 0 else (4 if D % 4 == 0 else 1)
    fast_ctx = CN >= FAST_MIN_SHIFT and c_helpers()
    fast_score = SN >= FAST_MIN_SHIFT and c_helpers()
    # probabilities in int32 when e * rcp + 2^(PB-1) cannot overflow: e <= max(table) and
    # rcp = PTOP // total <= PTOP // table[0] (the maximum key always contributes table[0])
    if exp_table is None:
        exp_table = im.exp_table()
    t0, tmax = int(exp_table[0]), int(max(exp_table))
    prob32 = t0 > 0 and tmax * (PTOP // t0) + (1 << (PB - 1)) < (1 << 31)
    use_dot4 = dot4 is not None and D % 4 == 0

    def requant_ctx(a):
        if fast_ctx:
            return T.call_pure_extern("int8", REQUANT_FAST, a, 0, CM, CN)
        return T.Cast("int8", T.max(T.min((T.Cast("int64", a) * T.int64(CM) + T.int64(1 << (CN - 1))) >> T.int64(CN),
                                          T.int64(127)), T.int64(-128)))

    @T.prim_func(private=True)
    def attention(qkv_h: T.handle, table: T.Buffer((256,), "uint16"), out_h: T.handle):
        n = T.int64()
        qkv = T.match_buffer(qkv_h, (n, 3 * H), "int8")
        out = T.match_buffer(out_h, (n, H), "int8")
        s = T.alloc_buffer((MAXL,), "int32")
        acc = T.alloc_buffer((DB,), "int32")
        mx = T.alloc_buffer((1,), "int32")
        tot = T.alloc_buffer((1,), "int32")
        rcp = T.alloc_buffer((1,), "int64")
        for i in range(n):
            for h in range(NH):
                for j in range(n):
                    s[j] = 0
                    if use_dot4:
                        for c in T.unroll(D // 4):
                            s[j] = T.call_extern("int32", dot4, T.address_of(qkv[i, h * D + c * 4]),
                                                 T.address_of(qkv[j, H + h * D + c * 4]), s[j])
                    else:
                        for d in T.unroll(D):
                            s[j] = s[j] + T.Cast("int32", qkv[i, h * D + d]) * T.Cast("int32", qkv[j, H + h * D + d])
                mx[0] = s[0]
                for j in range(n):
                    mx[0] = T.max(mx[0], s[j])
                tot[0] = 0
                for j in range(n):
                    if fast_score:
                        s[j] = T.Cast("int32", table[T.min(T.call_pure_extern("int32", "se_mul_round_shift_hi",
                                                                              mx[0] - s[j], SM, SN), 255)])
                    else:
                        s[j] = T.Cast("int32", table[T.min((T.Cast("int64", mx[0] - s[j]) * T.int64(SM) +
                                                            T.int64(1 << (SN - 1))) >> T.int64(SN), T.int64(255))])
                    tot[0] = tot[0] + s[j]
                rcp[0] = T.truncdiv(T.int64(PTOP), T.Cast("int64", tot[0]))
                for j in range(n):
                    if prob32:  # checked above: exact in int32
                        s[j] = (s[j] * T.Cast("int32", rcp[0]) + (1 << (PB - 1))) >> PB
                    else:
                        s[j] = T.Cast("int32", (T.Cast("int64", s[j]) * rcp[0] + T.int64(1 << (PB - 1))) >> T.int64(PB))
                for db in range(D // DB):
                    for dd in T.unroll(DB):
                        acc[dd] = 0
                    for j in range(n):
                        for dd in T.unroll(DB):
                            acc[dd] = acc[dd] + s[j] * T.Cast("int32", qkv[j, 2 * H + h * D + db * DB + dd])
                    for dd in T.unroll(DB):
                        out[i, h * D + db * DB + dd] = requant_ctx(acc[dd])

    return attention
