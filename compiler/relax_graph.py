"""Model file → Relax IRModule of integer kernels (``emit_te`` / ``call_tir``).

The sentence length ``n`` is a symbolic dimension with upper bound ``max_len``
(``tir_var_upper_bound``): the memory planner sizes buffers for ``max_len`` while the kernels
loop over the ``n`` real tokens only. Weights, biases, multipliers and tables are Relax
constants; ``aot.py`` turns them into ``static const`` C arrays.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, tirx

from ..models.model_file import IntModel
from . import kernels as K


class CompileError(ValueError):
    """The model file cannot be compiled (shape or range outside what the kernels support)."""


def _const(a: np.ndarray) -> relax.Constant:
    return relax.const(np.ascontiguousarray(a))


def isqrt_bits_for(k: np.ndarray) -> int:
    """Bits of the LayerNorm isqrt search for a residual ``a*k0 + b*k1`` of int8 operands."""
    rmax = 128 * (abs(int(k[0])) + abs(int(k[1])))
    var_max = (2 * rmax) ** 2
    if var_max >= 1 << 61:
        raise CompileError(f"residual multipliers {list(map(int, k))} too large for int64 LayerNorm")
    return max(1, (var_max.bit_length() + 1) // 2)


def check_model(model: IntModel) -> None:
    cfg = model.config
    a = model.arrays
    need = ["embed.token", "embed.position", "embed.k", "embed.ln.g", "embed.ln.b", "exp_table",
            "head.intent.w", "head.slot.w"]
    for i in range(cfg.layers):
        p = f"layer{i}"
        need += [f"{p}.{c}.{s}" for c in ("q", "k", "v", "o", "ffn1", "ffn2") for s in "wbmn"]
        need += [f"{p}.score.m", f"{p}.score.n", f"{p}.ctx.m", f"{p}.ctx.n", f"{p}.res1.k", f"{p}.res2.k",
                 f"{p}.ln1.g", f"{p}.ln1.b", f"{p}.ln2.g", f"{p}.ln2.b", f"{p}.gelu.lut"]
    missing = [x for x in need if x not in a]
    if missing:
        raise CompileError(f"model lacks arrays {missing[:4]}{'...' if len(missing) > 4 else ''}")
    if a["exp_table"].shape != (256,):
        raise CompileError("exp_table must have 256 entries")
    for name, arr in a.items():
        if name.endswith(".n") and arr.size and (arr.min() < 1 or arr.max() > 62):
            raise CompileError(f"{name}: shift out of 1..62")
    g = cfg.groups
    for i in range(cfg.layers):
        p = f"layer{i}"
        shapes = {"q": (cfg.hidden, cfg.hidden // g), "k": (cfg.hidden, cfg.hidden // g),
                  "v": (cfg.hidden, cfg.hidden // g), "o": (cfg.hidden, cfg.hidden),
                  "ffn1": (cfg.ffn, cfg.hidden // g), "ffn2": (cfg.hidden, cfg.ffn // g)}
        for c, shp in shapes.items():
            if a[f"{p}.{c}.w"].shape != shp:
                raise CompileError(f"{p}.{c}.w has shape {a[f'{p}.{c}.w'].shape}, expected {shp}")
        if a[f"{p}.gelu.lut"].shape != (256,):
            raise CompileError(f"{p}.gelu.lut must have 256 entries")
    for name in [n for n in a if n.endswith(".w")]:
        kin = a[name].shape[1]
        bias = a.get(name[:-2] + ".b")
        bmax = int(np.abs(bias.astype(np.int64)).max()) if bias is not None and bias.size else 0
        if kin * (1 << 14) >= 1 << 31 or kin * (1 << 14) + bmax >= 1 << 32:
            raise CompileError(f"{name}: accumulator could overflow")


def build_relax(model: IntModel, dot4: str | None = None, c_helpers: bool = True) -> tuple[tvm.IRModule, dict]:
    """The whole network as one Relax function ``main(ids[n]) -> (intent[n_intents], slots[n, n_tags])``.

    ``c_helpers=False``: no calls to the C helpers of ``kernels.PROLOGUE`` (nor ``dot4``), so the
    module also builds for TVM's LLVM target and runs in its VM."""
    if not c_helpers:
        with K.plain_tir():
            return build_relax(model, dot4=None)
    check_model(model)
    cfg = model.config
    a = model.arrays
    H = cfg.hidden
    bb = relax.BlockBuilder()
    n = tirx.Var("n", "int64")
    ids = relax.Var("ids", relax.TensorType((n,), "int32"))
    info = {"kernels": []}

    def fast(prefix):
        return K.fast_requant_ok(a[f"{prefix}.w"], a[f"{prefix}.b"], a[f"{prefix}.n"])

    def te_call(fn, args, name, **kw):
        info["kernels"].append(name)
        return bb.emit_te(fn, *args, primfunc_name_hint=name, **kw)

    with bb.function("main", [ids], attrs={"tir_var_upper_bound": {"n": cfg.max_len}}):
        with bb.dataflow():
            x = te_call(K.embed_ln, [ids, _const(a["embed.token"]), _const(a["embed.position"]),
                                     _const(a["embed.ln.g"]), _const(a["embed.ln.b"])], "embed_ln",
                        k0=int(a["embed.k"][0]), k1=int(a["embed.k"][1]),
                        isqrt_bits=isqrt_bits_for(a["embed.k"]))
            table = _const(a["exp_table"])
            for i in range(cfg.layers):
                p = f"layer{i}"
                cat = {s: np.concatenate([a[f"{p}.{c}.{s}"] for c in "qkv"]) for s in "wbmn"}
                qkv = te_call(K.qkv_conv, [x, _const(cat["w"]), _const(cat["b"]), _const(cat["m"]),
                                           _const(cat["n"])], f"qkv{i}", groups=cfg.groups,
                              fast=K.fast_requant_ok(cat["w"], cat["b"], cat["n"]))
                attn = K.attention_func(max_len=cfg.max_len, hidden=H, heads=cfg.heads,
                                        score_m=int(a[f"{p}.score.m"][0]), score_n=int(a[f"{p}.score.n"][0]),
                                        ctx_m=int(a[f"{p}.ctx.m"][0]), ctx_n=int(a[f"{p}.ctx.n"][0]),
                                        dot4=dot4, exp_table=a["exp_table"])
                gv = bb.add_func(attn.with_attr("se.handwritten", True), f"attention{i}")
                info["kernels"].append(f"attention{i}")
                ctx = bb.emit(relax.call_tir(gv, [qkv, table], relax.TensorType((n, H), "int8")))
                r1, r2 = a[f"{p}.res1.k"], a[f"{p}.res2.k"]
                x = te_call(K.conv_res_ln, [ctx, x] + [_const(a[f"{p}.o.{s}"]) for s in "wbmn"] +
                            [_const(a[f"{p}.ln1.g"]), _const(a[f"{p}.ln1.b"])], f"proj_ln{i}",
                            groups=1, k0=int(r1[0]), k1=int(r1[1]), isqrt_bits=isqrt_bits_for(r1),
                            fast=fast(f"{p}.o"))
                x = te_call(K.ffn_res_ln, [x] + [_const(a[f"{p}.ffn1.{s}"]) for s in "wbmn"] +
                            [_const(a[f"{p}.gelu.lut"])] + [_const(a[f"{p}.ffn2.{s}"]) for s in "wbmn"] +
                            [_const(a[f"{p}.ln2.g"]), _const(a[f"{p}.ln2.b"])], f"ffn_ln{i}",
                            groups=cfg.groups, k0=int(r2[0]), k1=int(r2[1]), isqrt_bits=isqrt_bits_for(r2),
                            fast1=fast(f"{p}.ffn1"), fast2=fast(f"{p}.ffn2"))
            intent = te_call(K.head_conv, [x] + [_const(a[f"head.intent.{s}"]) for s in "wbmn"], "head_intent",
                             first_row_only=True, fast=fast("head.intent"))
            slots = te_call(K.head_conv, [x] + [_const(a[f"head.slot.{s}"]) for s in "wbmn"], "head_slot",
                            first_row_only=False)
            out = bb.emit_output(relax.Tuple([intent, slots]))
        bb.emit_func_output(out)
    return bb.get(), info


def relax_passes():
    """Graph-level passes up to (not including) scheduling."""
    import tvm

    return tvm.ir.transform.Sequential([
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.DeadCodeElimination(),
    ])


def memory_passes():
    """After scheduling: explicit memory, static plan over the max_len upper bound."""
    import tvm

    return tvm.ir.transform.Sequential([
        relax.transform.RewriteDataflowReshape(),
        relax.transform.ToNonDataflow(),
        relax.transform.RemovePurityChecking(),
        relax.transform.CallTIRRewrite(),
        relax.transform.StaticPlanBlockMemory(),
    ])
