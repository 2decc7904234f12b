"""Ahead-of-time executor: walk the memory-planned Relax ``main`` into a C entry function.

After ``StaticPlanBlockMemory`` the body of ``main`` is a flat list of bindings:
``alloc_storage`` (sizes planned for the ``max_len`` upper bound), ``alloc_tensor(storage,
offset)``, kernel calls with variables and constants as arguments, aliases, and
``builtin.alloc_tensor`` for the two outputs. Storages are laid out one after another in the
caller's arena; the outputs are the caller's ``intent_logits`` / ``slot_logits``; constants
become ``static const`` arrays (flash on an MCU).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax

from .c_text import C_TYPES
from .lower import Kernel

ARENA_ALIGN = 8


@dataclass
class Buffer:
    name: str  # relax variable
    storage: str
    offset: int  # bytes from the arena start
    nbytes: int  # at max_len
    first: int = -1  # index of the first call that touches it
    last: int = -1


@dataclass
class Call:
    kernel: str  # PrimFunc name
    args: list[str]  # C expressions, one per PrimFunc parameter
    buffers: list[str] = field(default_factory=list)  # arena buffers touched


@dataclass
class Plan:
    calls: list[Call]
    buffers: dict[str, Buffer]
    storages: dict[str, tuple[int, int]]  # name -> (offset, bytes)
    constants: list[tuple[str, np.ndarray]]
    arena_bytes: int


def _align(v: int, a: int = ARENA_ALIGN) -> int:
    return (v + a - 1) // a * a


def _int(e) -> int:
    return int(e.value) if hasattr(e, "value") else int(e)


def _shape_bytes(shape_expr, dtype: str, upper: dict[str, int]) -> int:
    n = 1
    for d in shape_expr.values:
        if hasattr(d, "value"):
            n *= int(d.value)
        else:  # symbolic: its planned upper bound
            n *= int(upper[d.name])
    return n * np.dtype(dtype).itemsize


def walk_main(func: relax.Function, upper: dict[str, int]) -> Plan:
    """Call sequence, arena layout and constants of the memory-planned ``main``."""
    blocks = func.body.blocks
    bindings = [b for blk in blocks for b in blk.bindings]
    param = func.params[0]
    expr: dict = {param: "token_ids"}  # relax var -> C pointer expression
    alias: dict = {}
    storages: dict[str, tuple[int, int]] = {}
    storage_of: dict = {}
    buffers: dict[str, Buffer] = {}
    buf_of_var: dict = {}
    constants: list[tuple[str, np.ndarray]] = []
    const_objs: list = []
    outputs: list = []
    calls: list[Call] = []
    arena_end = 0

    def root(v):
        while v in alias:
            v = alias[v]
        return v

    def const_name(c) -> str:
        for i, o in enumerate(const_objs):
            if o.same_as(c):
                return constants[i][0]
        arr = c.value.numpy()
        name = f"se_const{len(constants)}"
        const_objs.append(c)
        constants.append((name, arr))
        return name

    for b in bindings:
        v, val = b.var, b.value
        tname = type(val).__name__
        if tname == "Var":
            alias[v] = val
            continue
        if tname == "Tuple":
            outputs = [root(f) for f in val.fields]
            continue
        if tname != "Call":
            raise RuntimeError(f"unsupported binding {tname} in main")
        op = val.op
        if isinstance(op, tvm.ir.Op) and op.name == "relax.memory.alloc_storage":
            size = _int(val.args[0].values[0])
            storages[v.name] = (arena_end, size)
            storage_of[v] = v.name
            arena_end = _align(arena_end + size)
        elif isinstance(op, tvm.ir.Op) and op.name == "relax.memory.alloc_tensor":
            st = storage_of[val.args[0]]
            off = storages[st][0] + _int(val.args[1])
            dtype = str(val.args[3].value) if hasattr(val.args[3], "value") else "int8"
            nbytes = _shape_bytes(val.args[2], dtype if dtype in C_TYPES else "int8", upper)
            buffers[v.name] = Buffer(v.name, st, off, nbytes)
            buf_of_var[v] = v.name
            expr[v] = f"(arena + {off})"
        elif isinstance(op, tvm.ir.Op) and op.name == "relax.builtin.alloc_tensor":
            expr[v] = None  # an output: bound below once we know which
            buf_of_var[v] = None
        elif isinstance(op, tvm.ir.GlobalVar):
            args, touched = [], []
            for a in val.args:
                an = type(a).__name__
                if an == "GenericConst" or isinstance(a, relax.Constant if hasattr(relax, "Constant") else ()):
                    args.append(const_name(a))
                else:
                    r = root(a)
                    args.append(r)
                    if buf_of_var.get(r):
                        touched.append(buf_of_var[r])
            calls.append(Call(op.name_hint, args, touched))
        else:
            raise RuntimeError(f"unsupported call {op} in main")
    final = func.body.body
    if type(final).__name__ == "Var" and not outputs:
        outputs = [root(final)]
    names = ["intent_logits", "slot_logits"]
    for i, o in enumerate(outputs):
        expr[o] = names[i]
    for c in calls:
        c.args = [a if isinstance(a, str) else expr[a] for a in c.args]
    for i, c in enumerate(calls):
        for bn in c.buffers:
            bf = buffers[bn]
            bf.first = i if bf.first < 0 else bf.first
            bf.last = i
    return Plan(calls, buffers, storages, constants, arena_end)


def check_plan(plan: Plan) -> None:
    """No two buffers that are live at the same time overlap; all fit in the arena."""
    bs = list(plan.buffers.values())
    for b in bs:
        if b.offset < 0 or b.offset + b.nbytes > plan.arena_bytes:
            raise AssertionError(f"buffer {b.name} [{b.offset}, {b.offset + b.nbytes}) outside the arena")
    for i, a in enumerate(bs):
        for b in bs[i + 1:]:
            if a.first < 0 or b.first < 0:
                continue
            live = a.first <= b.last and b.first <= a.last
            overlap = a.offset < b.offset + b.nbytes and b.offset < a.offset + a.nbytes
            if live and overlap:
                raise AssertionError(f"buffers {a.name} and {b.name} overlap while both live")


def entry_function(plan: Plan, kernels: dict[str, Kernel], prefix: str = "se_model",
                   weights_pointer: str | None = None) -> str:
    """The entry; ``weights_pointer``: the constants are read through this pointer, which must be
    set (SE_ERR_WEIGHTS otherwise)."""
    lines = [
        f"int {prefix}_run(const int32_t *token_ids, int32_t length, int8_t *intent_logits,",
        f"                 int8_t *slot_logits, uint8_t *arena) {{",
        "  int32_t i;",
        "  if (token_ids == 0 || intent_logits == 0 || slot_logits == 0 || arena == 0) return SE_ERR_NULL;",
        "  if (length < 1 || length > SE_MODEL_MAX_LEN) return SE_ERR_LENGTH;",
        *([f"  if ({weights_pointer} == 0) return SE_ERR_WEIGHTS;"] if weights_pointer else []),
        "  for (i = 0; i < length; ++i) {",
        "    if (token_ids[i] < 0 || token_ids[i] >= SE_MODEL_VOCAB_SIZE) return SE_ERR_TOKEN;",
        "  }",
    ]
    for c in plan.calls:
        k = kernels[c.kernel]
        cargs = []
        for (kind, val), decl in zip(k.args, k.params):
            ctype = decl.rsplit(" ", 1)[0].strip()
            if kind == "var":
                cargs.append(f"({ctype})length")
            else:
                a = c.args[val]
                cargs.append(f"({ctype}){a}")
        lines.append(f"  if ({k.name}({', '.join(cargs)}) != 0) return SE_ERR_KERNEL;")
    lines += ["  return SE_OK;", "}"]
    return "\n".join(lines) + "\n"
