"""Cortex-M DSP tensor intrinsic: a 4-long int8 dot product on SXTB16 + SMLAD.

``NAME`` is registered as a ``tvm.s_tir.TensorIntrin``: its description is the scalar reduction
the TE kernels compute (``C[0] += int32(A[k]) * int32(B[k])`` for k < 4); its implementation
calls the C function ``se_dot4_s8(a, b, acc)`` through ``T.call_extern``. ``Schedule.tensorize``
segfaults in the apache-tvm 0.27.0.post1 wheel (inside ``s_tir::Tensorize``, also with TVM's own
ARM/x86 intrinsics), so ``tensorize_dot4`` does the same job by hand: ``blockize`` the loop,
match the block against the description, replace its body by the implementation's call. ``PROLOGUE`` defines that
function: on a core with the DSP extension (``__ARM_FEATURE_DSP``: Cortex-M4/M7/M33) two word
loads, four SXTB16 (two with ``ror #8``) and two SMLAD; anywhere else the same sum in plain C,
so a package built for Cortex-M4 stays bit-exact (and testable) on the host too.

x0 w0 + x1 w1 + x2 w2 + x3 w3 = SMLAD(SXTB16(x), SXTB16(w)) [lanes 0, 2]
                              + SMLAD(SXTB16(x ror 8), SXTB16(w ror 8)) [lanes 1, 3]
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.script import tirx as T

NAME = "se.cortex_m.dot4_s8"
EXTERN = "se_dot4_s8"

PROLOGUE = r"""
/* 4-long int8 dot product (SqueezeEdge Cortex-M tensor intrinsic, see compiler/intrin.py). */
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
static inline int32_t se_ror8_sxtb16(uint32_t v) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
  return (int32_t)r;
}
static inline int32_t se_dot4_s8(const int8_t *a, const int8_t *b, int32_t acc) {
  uint32_t x, w;
  __builtin_memcpy(&x, a, 4); /* one (possibly unaligned) LDR each: allowed on ARMv7E-M */
  __builtin_memcpy(&w, b, 4);
  acc = __builtin_arm_smlad(__builtin_arm_sxtb16(x), __builtin_arm_sxtb16(w), acc);
  return __builtin_arm_smlad(se_ror8_sxtb16(x), se_ror8_sxtb16(w), acc);
}
#else
static inline int32_t se_dot4_s8(const int8_t *a, const int8_t *b, int32_t acc) {
  return acc + (int32_t)a[0] * b[0] + (int32_t)a[1] * b[1] + (int32_t)a[2] * b[2] + (int32_t)a[3] * b[3];
}
#endif
"""

K = 4


@T.prim_func(s_tir=True)
def _desc(A: T.Buffer((4,), "int8", offset_factor=1), B: T.Buffer((4,), "int8", offset_factor=1),
          C: T.Buffer((1,), "int32", offset_factor=1)) -> None:
    with T.sblock("root"):
        T.reads(C[0:1], A[0:4], B[0:4])
        T.writes(C[0:1])
        for k in T.serial(0, 4):
            with T.sblock("update"):
                vk = T.axis.remap("R", [k])
                C[0] = C[0] + T.cast(A[vk], "int32") * T.cast(B[vk], "int32")


@T.prim_func(s_tir=True)
def _impl(A: T.Buffer((4,), "int8", offset_factor=1), B: T.Buffer((4,), "int8", offset_factor=1),
          C: T.Buffer((1,), "int32", offset_factor=1)) -> None:
    with T.sblock("root"):
        T.reads(C[0:1], A[0:4], B[0:4])
        T.writes(C[0:1])
        C[0] = T.call_extern("int32", EXTERN, A.access_ptr("r"), B.access_ptr("r"), C[0])


_registered = False


def register() -> str:
    global _registered
    if not _registered:
        try:
            s_tir.TensorIntrin.register(NAME, _desc, _impl)
        except Exception:  # noqa: BLE001 - already registered in this process
            pass
        _registered = True
    return NAME


def _dt(e) -> str:
    return str(getattr(e, "dtype", None) or e.ty)


def _region_start(region):
    return tirx.BufferLoad(region.source, [r.min for r in region.region])


def _match_dot4(block) -> tuple:
    """Check that a blockized block computes the intrinsic's description: returns the regions
    (C, A, B) of ``C[0] += int32(A[k]) * int32(B[k]), k < 4`` or raises ValueError."""
    loop = block.body
    if type(loop).__name__ != "For" or int(loop.extent) != K:
        raise ValueError("not a 4-long loop")
    inner = loop.body.block if type(loop.body).__name__ == "SBlockRealize" else None
    store = inner.body if inner is not None else None
    if type(store).__name__ != "BufferStore":
        raise ValueError("no BufferStore in the inner block")
    v = store.value
    ok = (type(v).__name__ == "Add" and type(v.a).__name__ in ("BufferLoad", "TensorLoad") and v.a.source.same_as(store.buffer)
          and type(v.b).__name__ == "Mul" and type(v.b.a).__name__ == "Cast" and type(v.b.b).__name__ == "Cast"
          and _dt(v.b.a.value) == "int8" and _dt(v.b.b.value) == "int8" and _dt(v) == "int32")
    if not ok:
        raise ValueError(f"update is not the dot4 description: {v}")
    a_buf, b_buf = v.b.a.value.source, v.b.b.value.source
    c_reg = [w for w in block.writes if w.source.same_as(store.buffer)][0]
    a_reg = [r for r in block.reads if r.source.same_as(a_buf)][0]
    b_reg = [r for r in block.reads if r.source.same_as(b_buf)][0]
    for reg in (a_reg, b_reg):
        exts = [int(r.extent) for r in reg.region]
        if exts[-1] != K or any(e != 1 for e in exts[:-1]):
            raise ValueError(f"region of {reg.source.name} is not 4 contiguous elements")
    if any(int(r.extent) != 1 for r in c_reg.region):
        raise ValueError("accumulator region is not one element")
    return c_reg, a_reg, b_reg


def tensorize_dot4(sch, loop) -> None:
    """What ``Schedule.tensorize(loop, NAME)`` does, done by hand: TVM 0.27's ``tensorize``
    segfaults in this wheel (also with its own built-in ARM/x86 intrinsics), so we blockize the
    loop, check the block against the registered description (``_match_dot4``) and replace its
    body by the implementation: ``C = se_dot4_s8(&A[start], &B[start], C)``."""
    register()
    rv = sch.blockize(loop)
    block = sch.get(rv)
    c_reg, a_reg, b_reg = _match_dot4(block)
    c_idx = [r.min for r in c_reg.region]
    call = tirx.call_extern("int32", EXTERN, tirx.address_of(_region_start(a_reg)),
                            tirx.address_of(_region_start(b_reg)), tirx.BufferLoad(c_reg.source, c_idx))
    body = tirx.BufferStore(c_reg.source, call, c_idx)
    new = s_tir.SBlock(block.iter_vars, block.reads, block.writes, block.name_hint, body, block.init,
                       block.alloc_buffers, block.match_buffers, block.annotations)
    sch.state.replace(sch.get_sref(rv), new, {block: new})


class Dot4:
    """What ``schedules.py`` needs: the reduction length and how to apply the intrinsic."""

    k = K
    prologue = PROLOGUE
    extern = EXTERN

    def apply(self, sch, block, loop) -> None:
        tensorize_dot4(sch, loop)


def for_target(target: str):
    """The tensor intrinsic used on ``target`` (None: portable C only)."""
    return Dot4() if target == "cortex-m4" else None
