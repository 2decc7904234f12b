"""MCU schedules (``s_tir.Schedule``) for the TE kernels of ``kernels.py``.

One rule set for every kernel, applied from the output backwards:

* element-wise producers that are cheap to recompute (``embed_res``) are inlined into their
  consumers; the FFN up-conv's requantization is inlined into the GELU table lookup, so the
  lookup is the reduction's epilogue (once per hidden element, not once per MAC);
* every conv accumulator is computed at its requantization epilogue's output-channel loop,
  split into register blocks of ``OUT_BLOCK`` channels: the reduction runs k-outer,
  channel-inner (unrolled), so ``OUT_BLOCK`` int32 accumulators live in registers and share
  every input load; the reduction is unrolled by ``K_BLOCK`` (contiguous int8 reads, constant
  offsets); the requantization is the block's epilogue (once per output, params loaded once);
* with a tensor intrinsic (``intrin.Dot4`` on cortex-m4) the ``K_BLOCK`` = 4 inner reduction is
  replaced by one ``se_dot4_s8`` call (SXTB16 + SMLAD), also for unblocked convs;
* every other per-row stage (conv output rows, LayerNorm sum / variance / 1/std) is computed
  at the output's token loop, so its temporaries shrink to one row (kernel-local, on the stack)
  and nothing but int8 activations ever reaches the arena;
* reduction inits are hoisted; other reductions are unrolled by 4.

Measured on Cortex-M4 (unicorn, preset small, 32 tokens): OUT_BLOCK 8 and K_BLOCK 8 are worse
than 4/4 (GCC spills), and so is unrolling the whole 16-long grouped reduction.

No ``vectorize`` (the C target would print vector types) and no MetaSchedule.
"""

from __future__ import annotations

from tvm import s_tir, tirx

FULL_UNROLL = 0  # measured on Cortex-M4: full unrolling of the 16-long group reductions spills registers
PARTIAL_UNROLL = 4
OUT_BLOCK = 4  # output channels per register block (accumulators kept in registers)
INTRIN_OUT_BLOCK = 4  # with SMLAD (8 measured worse: GCC spills)
K_BLOCK = 4  # reduction steps per unrolled body (and per SMLAD pair)
INTRIN_K_UNROLL = 1  # with SMLAD: dot4 steps per loop iteration (2 measured worse: 3.21 vs 3.01 instr/MAC)
INTRIN_FULL_UNROLL = 1  # with SMLAD: unroll the outer reduction loop too when it has at most this many steps
K_FULL_UNROLL = 1  # unroll the outer reduction loop too when it has at most this many steps


def _blocks(sch: s_tir.Schedule) -> list:
    root = sch.get_sblock("root") if _has_root(sch) else None
    return list(sch.get_child_blocks(root)) if root is not None else []


def _has_root(sch) -> bool:
    try:
        sch.get_sblock("root")
        return True
    except Exception:  # noqa: BLE001
        return False


def _name(sch, b) -> str:
    return sch.get(b).name_hint


def _extent(sch, loop):
    ext = sch.get(loop).extent
    return int(ext) if isinstance(ext, tirx.IntImm) else None


def schedule_te_kernel(func: tirx.PrimFunc, unroll: bool = True, intrin=None) -> tirx.PrimFunc:
    """Schedule one TE-generated kernel (a PrimFunc with blocks); functions without blocks
    (hand-written TVMScript) come back unchanged."""
    if func.attrs and "se.handwritten" in func.attrs:
        return func  # TVMScript kernel: already written loop by loop
    sch = s_tir.Schedule(func)
    blocks = _blocks(sch)
    if len(blocks) <= 1:
        return func
    names = [_name(sch, b) for b in blocks]
    out = blocks[-1]
    if names[-1] == "head_row":  # CLS-only head: fold the row pick into its producer
        sch.reverse_compute_inline(out)
        blocks, names = blocks[:-1], names[:-1]
        out = blocks[-1]
    t_loop = sch.get_loops(out)[0]
    reductions = []
    inlined = set()
    blocked = set()
    for b, name in reversed(list(zip(blocks[:-1], names[:-1]))):
        if name.endswith("_res"):
            sch.compute_inline(b)
        elif name == "gelu":  # the table lookup becomes the up-conv's epilogue: once per element
            sch.compute_at(b, t_loop, preserve_unit_loops=False)
        elif name == "ffn1" and "gelu" in names:
            sch.compute_inline(b)
            inlined.add(name)
        elif name.endswith("_acc"):
            epilogue = name[: -len("_acc")]
            consumer = sch.get_sblock("gelu" if epilogue in inlined else epilogue)
            o_loop = sch.get_loops(consumer)[-1]
            ext = _extent(sch, o_loop)
            ob = INTRIN_OUT_BLOCK if intrin is not None else OUT_BLOCK
            if unroll and ext is not None and ext % ob == 0 and ext > ob:
                # register blocking: ob accumulators share every input load
                oo, oi = sch.split(o_loop, [None, ob])
                sch.unroll(oi)
                sch.compute_at(b, oo, preserve_unit_loops=False)
                blocked.add(name)
            else:
                sch.compute_at(b, o_loop, preserve_unit_loops=False)
            reductions.append(b)
        else:
            sch.compute_at(b, t_loop, preserve_unit_loops=False)
            if name.endswith("_sum") or name.endswith("_var"):
                reductions.append(b)
    for b in reductions:
        name = sch.get(b).name_hint
        is_acc = name.endswith("_acc")
        loops = sch.get_loops(b)
        k = loops[-1]
        if name in blocked:
            oi = loops[-2]
            sch.reorder(k, oi)
            sch.decompose_reduction(b, k)
            ext = _extent(sch, k)
            kb = K_BLOCK if ext % K_BLOCK == 0 else 1
            ko, ki = sch.split(k, [None, kb])
            sch.reorder(ko, oi, ki)
            use_intrin = intrin is not None and kb == intrin.k
            if use_intrin:
                intrin.apply(sch, b, ki)
            else:
                sch.unroll(ki)
            sch.unroll(oi)
            if ext // kb <= (INTRIN_FULL_UNROLL if use_intrin else K_FULL_UNROLL):
                sch.unroll(ko)
            elif use_intrin and INTRIN_K_UNROLL > 1 and (ext // kb) % INTRIN_K_UNROLL == 0:
                _, ko_i = sch.split(ko, [None, INTRIN_K_UNROLL])
                sch.unroll(ko_i)
            continue
        sch.decompose_reduction(b, k)
        if unroll and is_acc:
            ext = _extent(sch, k)
            if ext is not None and ext <= FULL_UNROLL:
                sch.unroll(k)
            elif intrin is not None and ext is not None and ext % intrin.k == 0:
                _, ki = sch.split(k, [None, intrin.k])  # unblocked (e.g. 61 slot tags): still SMLAD
                intrin.apply(sch, b, ki)
            elif ext is not None and ext % PARTIAL_UNROLL == 0:
                _, ki = sch.split(k, [None, PARTIAL_UNROLL])
                sch.unroll(ki)
    return sch.mod["main"]


def schedule_module(mod, unroll: bool = True, intrin=None):
    """Schedule every PrimFunc of a Relax IRModule in place (returns the new module)."""
    for gv, f in list(mod.functions.items()):
        if isinstance(f, tirx.PrimFunc):
            mod[gv] = schedule_te_kernel(f, unroll=unroll, intrin=intrin)
    return mod
