"""Scheduled TIR → plain C kernels (no TVM headers, no packed-function ABI).

The s_tir lowering passes run without ``MakePackedAPI``; each function body is wrapped in a
``target`` attribute so ``SplitHostDevice`` outlines it into a kernel taking raw pointers and
scalars; ``target.build.c`` prints it. We keep only the kernel definitions and write our own
prologue. ``SplitHostDevice`` orders kernel parameters by name, so the host stub it leaves
behind is read to map each kernel parameter back to the original PrimFunc parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import tvm
from tvm import s_tir, tirx

C_TARGET = {"kind": "c"}


@dataclass
class Kernel:
    name: str  # C symbol
    params: list[str]  # C parameter declarations, in call order
    args: list  # per kernel parameter: ("param", index into the PrimFunc params) or ("var", name)
    source: str = ""  # the C definition
    local_bytes: int = 0  # bytes of kernel-local arrays (stack)
    extra: dict = field(default_factory=dict)


def _lowering_passes(compact: bool = True):
    passes = [
        s_tir.transform.CanonicalizeLoop(),
        s_tir.transform.LowerInitBlock(),
        s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
        s_tir.transform.ConvertBlocksToOpaque(),
        s_tir.transform.CompactBufferAllocation(),
        s_tir.transform.LowerMatchBuffer(),
        s_tir.transform.StmtSimplify(),
        s_tir.transform.LowerOpaqueBlock(),
        tirx.transform.FlattenBuffer(),
        tirx.transform.NarrowDataType(32),
        s_tir.transform.LoopPartition(),
        # no StorageRewrite: it folds the int64 LayerNorm scalars into the int32 accumulator array
        # (type punning that breaks strict aliasing); the kernel-local arrays are tiny anyway
        s_tir.transform.HoistIfThenElse(),
        tirx.transform.UnrollLoop(),
        s_tir.transform.RenormalizeSplitPattern(),
        tirx.transform.StmtSimplify(),
        tirx.transform.RemoveNoOp(),
        s_tir.transform.RewriteUnsafeSelect(),
        tirx.transform.CommonSubexprElim(),
        tirx.transform.VerifyMemory(),
    ]
    if not compact:  # hand-written kernels: their local arrays are sized for max_len on purpose
        passes = [p for p in passes if p.info.name != "s_tir.CompactBufferAllocation"]
    return passes


LENGTH_VAR = "n"


HANDWRITTEN = "se.handwritten"


def _is_te(f) -> bool:
    return not (f.attrs and HANDWRITTEN in f.attrs)


def _is_buffer(p) -> bool:
    return getattr(p, "data", None) is not None


def narrow_length(f: tirx.PrimFunc, max_len: int | None = None) -> tirx.PrimFunc:
    """Replace the symbolic int64 row count by ``(int64)n`` of an int32 variable ``n`` so that
    ``NarrowDataType`` can make the loops 32-bit (64-bit loop counters cost twice on an MCU)."""
    syms = {}
    for p in f.params:
        if _is_buffer(p):
            for d in p.shape:
                if isinstance(d, tirx.Var):
                    syms[d.name] = d
    if not syms:
        return f
    if list(syms) != [LENGTH_VAR]:
        raise RuntimeError(f"unexpected symbolic dimensions {list(syms)}")
    n32 = tirx.Var(LENGTH_VAR, "int32")
    # the entry has checked 1 <= length <= max_len; the (free) clamp lets NarrowDataType prove
    # that every index fits in 32 bits
    n64 = tirx.Cast("int64", n32 if max_len is None else tirx.min(n32, tirx.const(int(max_len), "int32")))
    for p in f.params:
        buf = p if _is_buffer(p) else None
        if buf is not None and any(isinstance(d, tirx.Var) and d.name == LENGTH_VAR for d in buf.shape):
            shape = [n64 if isinstance(d, tirx.Var) and d.name == LENGTH_VAR else d for d in buf.shape]
            return f.specialize({p: tirx.decl_buffer(shape, buf.dtype, buf.name)})
    return f


def _kernel_call(host: tirx.PrimFunc):
    found = []

    def visit(node):  # the stub is small: Seq / Bind / Assert / Evaluate around one call
        if type(node).__name__ == "Call" and isinstance(getattr(node, "op", None), tvm.ir.GlobalVar):
            found.append(node)
            return
        for attr in ("body", "value", "seq"):
            v = getattr(node, attr, None)
            if v is None:
                continue
            for child in (v if attr == "seq" else [v]):
                visit(child)

    visit(host.body)
    if len(found) != 1:
        raise RuntimeError(f"expected one kernel launch in the host stub, found {len(found)}")
    return found[0]


_LOCAL_ARRAY = re.compile(r"^\s+(u?int(8|16|32|64)_t)\s+\w+\[(\d+)\];", re.M)


def local_array_bytes(src: str) -> int:
    return sum(int(m.group(2)) // 8 * int(m.group(3)) for m in _LOCAL_ARRAY.finditer(src))


def clean_source(src: str) -> str:
    """Drop TVM's prologue, export macros and C++ guards; make kernels static."""
    out, skip = [], False
    for line in src.splitlines():
        s = line.strip()
        if s.startswith("#include") or s.startswith("#define TVM") or s.startswith("// tvm target") \
                or "__tvm_ffi__library_ctx" in s:
            continue
        if s == "#ifdef __cplusplus":
            skip = True
            continue
        if skip:
            if s == "#endif":
                skip = False
            continue
        out.append(line.replace("TVM_DLL ", "static "))
    return "\n".join(out).strip() + "\n"


_DECL = re.compile(r"^\s+(?:u?int(?:8|16|32|64)_t|bool) (\w+) = [^;]*;$")


def drop_unused_locals(fn_src: str) -> str:
    """Remove scalar locals that are never read (TVM's CSE leaves some behind; -Wall flags them)."""
    lines = fn_src.splitlines()
    changed = True
    while changed:
        changed = False
        text = "\n".join(lines)
        for i, line in enumerate(lines):
            m = _DECL.match(line)
            if m and len(re.findall(rf"\b{m.group(1)}\b", text)) == 1:
                del lines[i]
                changed = True
                break
    return "\n".join(lines) + "\n"


def void_unused_params(fn_src: str) -> str:
    """``(void)p;`` for parameters the body never reads (e.g. the length of the CLS head)."""
    head, _, body = fn_src.partition("{\n")
    params = re.match(r"^static \w+ \w+\((.*)\) $", head)
    names = [p.strip().split()[-1].lstrip("*") for p in params.group(1).split(",")] if params else []
    unused = [n for n in names if not re.search(rf"\b{n}\b", body)]
    return head + "{\n" + "".join(f"  (void){n};\n" for n in unused) + body


def _split_functions(src: str) -> dict[str, str]:
    """Kernel name → its definition (prototypes dropped)."""
    defs = {}
    lines = src.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^static \w+ (\w+)\((.*)\) \{$", lines[i])
        if m:
            j = i + 1
            while lines[j] != "}":
                j += 1
            defs[m.group(1)] = void_unused_params(drop_unused_locals("\n".join(lines[i: j + 1])))
            i = j + 1
        else:
            i += 1
    return defs


def lower_kernels(mod: tvm.IRModule) -> dict[str, Kernel]:
    """Every PrimFunc of ``mod`` → a ``Kernel`` with plain C source."""
    target = tvm.target.Target(C_TARGET)
    host_target = tvm.target.Target(C_TARGET, host=C_TARGET)
    max_len = None
    for gv, f in mod.functions.items():
        if not isinstance(f, tirx.PrimFunc) and f.attrs and "tir_var_upper_bound" in f.attrs:
            max_len = int(f.attrs["tir_var_upper_bound"][LENGTH_VAR])
    prims = {gv.name_hint: narrow_length(f, max_len) for gv, f in mod.functions.items()
             if isinstance(f, tirx.PrimFunc)}
    with tvm.transform.PassContext(opt_level=3, config={"tirx.disable_vectorize": True}):
        lowered = {}
        for te_made in (True, False):
            part = tvm.IRModule({tvm.ir.GlobalVar(name): f.with_attr("target", target).with_attr("global_symbol", name)
                                 for name, f in prims.items() if _is_te(f) == te_made})
            part = tvm.ir.transform.Sequential(_lowering_passes(compact=te_made))(part)
            lowered.update(dict(part.functions.items()))
        tmod = tvm.IRModule(lowered)
        wrapped = {}
        for gv, f in tmod.functions.items():
            body = tirx.AttrStmt(target, "target", 0, f.body)
            wrapped[gv] = f.with_body(body).with_attr("target", host_target)
        tmod = tirx.transform.SplitHostDevice()(tvm.IRModule(wrapped))
        kernels: dict[str, Kernel] = {}
        dev = {}
        for gv, f in tmod.functions.items():
            name = gv.name_hint
            if name in prims:
                call = _kernel_call(f)
                param_index = {p: i for i, p in enumerate(f.params)}
                args = []
                for a in call.args:
                    if type(a).__name__ == "Call" and a.op.name == "tirx.buffer_data":
                        a = a.args[0]
                    if type(a).__name__ != "Var":
                        raise RuntimeError(f"{name}: kernel argument {a} is not a variable")
                    if a in param_index:
                        args.append(("param", param_index[a]))
                    else:
                        args.append(("var", a.name))
                kname = call.op.name_hint
                kernels[name] = Kernel(name=kname, params=[], args=args)
            else:
                dev[gv] = f
        dmod = tirx.transform.LowerIntrin()(tvm.IRModule(dev))
    src = clean_source(tvm.get_global_func("target.build.c")(dmod, target).inspect_source())
    defs = _split_functions(src)
    for name, k in kernels.items():
        if k.name not in defs:
            raise RuntimeError(f"kernel {k.name} missing from the generated C")
        k.source = defs[k.name]
        k.params = [p.strip() for p in re.match(r"^static \w+ \w+\((.*)\) \{", k.source).group(1).split(",")]
        k.local_bytes = local_array_bytes(k.source)
    return kernels
