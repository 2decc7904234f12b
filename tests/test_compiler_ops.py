"""Pieces of the compiler: TE kernels vs numpy (intmath), the Relax graph vs the reference
(run in TVM's own VM on LLVM, independent of our schedules and C path), and the schedules."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import tvm
from tvm import relax, te

from squeezeedge.compiler import kernels as K
from squeezeedge.compiler import lower, relax_graph, schedules
from squeezeedge.models import intmath as im
from squeezeedge.models import reference
from squeezeedge.models.config import PRESETS
from squeezeedge.models.synthetic import random_int_model


def _run(tensors_in, out, arrays, out_dtype):
    f = te.create_prim_func([*tensors_in, out])
    lib = tvm.compile(f, target="llvm")
    args = [tvm.runtime.tensor(a) for a in arrays]
    res = tvm.runtime.tensor(np.zeros([int(s) for s in out.shape], dtype=out_dtype))
    lib(*args, res)
    return res.numpy()


def test_isqrt_stages_exact():
    vals = np.array([0, 1, 2, 3, 4, 15, 16, 17, 99, 100, 101, (1 << 20) - 1, 1 << 20, 123456789,
                     (1 << 42) - 1, 1 << 42, (1 << 44) - 1], dtype=np.int64)
    v = te.placeholder((len(vals),), "int64", name="v")
    out = K.isqrt_stages(v, 22, "t")
    got = _run([v], out, [vals], "int64")
    assert got.tolist() == [math.isqrt(int(x)) for x in vals]


def test_conv_requant_matches_reference():
    rng = np.random.default_rng(0)
    t, cin, cout, g = 7, 64, 256, 4
    x = rng.integers(-128, 128, (t, cin)).astype(np.int8)
    w = rng.integers(-128, 128, (cout, cin // g)).astype(np.int8)
    b = rng.integers(-5000, 5000, cout).astype(np.int32)
    m = rng.integers(1 << 30, 1 << 31, cout).astype(np.int32)
    n = rng.integers(36, 41, cout).astype(np.int8)
    X, W, B, M, N = (te.placeholder(a.shape, str(a.dtype)) for a in (x, w, b, m, n))
    _, out = K.conv_stage(X, W, B, M, N, K.grouped_index(cin, cout, g), "c")
    got = _run([X, W, B, M, N], out, [x, w, b, m, n], "int8")
    want = im.requantize(reference.grouped_linear(x, w, g) + b.astype(np.int64), m, n)
    assert np.array_equal(got, want)


def test_layer_norm_matches_intmath():
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (9, 64)).astype(np.int8)
    bb = rng.integers(-128, 128, (9, 64)).astype(np.int8)
    a[0] = 5  # constant row: variance 0, std clamps to 1
    bb[0] = 5
    k = np.array([4096, 3001], dtype=np.int32)
    g = rng.integers(8000, 30000, 64).astype(np.int32)
    beta = rng.integers(-10_000_000, 10_000_000, 64).astype(np.int32)
    A, Bt, G, Be = (te.placeholder(v.shape, str(v.dtype)) for v in (a, bb, g, beta))
    out = K.layer_norm_stages(lambda t, c: A[t, c].astype("int64") * 4096 + Bt[t, c].astype("int64") * 3001,
                              9, 64, G, Be, relax_graph.isqrt_bits_for(k), "ln")[-1]
    got = _run([A, Bt, G, Be], out, [a, bb, g, beta], "int8")
    assert np.array_equal(got, im.layer_norm(im.residual(a, bb, k), g, beta))


@pytest.mark.parametrize("preset,seed", [("tiny", 4), ("small", 5)])
def test_relax_graph_in_tvm_vm(preset, seed):
    """The unscheduled Relax graph, built by TVM for LLVM and run in its VM, equals the reference."""
    model = random_int_model(PRESETS[preset].config, n_intents=43, n_slots=30, seed=seed)
    mod, _ = relax_graph.build_relax(model, c_helpers=False)
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    rng = np.random.default_rng(seed)
    for length in (1, 2, 7, model.config.max_len):
        ids = rng.integers(0, model.config.vocab_size, length).astype(np.int32)
        out = vm["main"](tvm.runtime.tensor(ids))
        want = reference.run(model, ids)
        assert np.array_equal(out[0].numpy(), want.intent)
        assert np.array_equal(out[1].numpy(), want.slots)


def test_graph_is_length_symbolic_and_fused():
    model = random_int_model(PRESETS["small"].config, n_intents=43, n_slots=30, seed=0)
    mod, info = relax_graph.build_relax(model)
    main = mod["main"]
    assert "n" in str(main.params[0].ty)  # ids: (n,) with n symbolic
    assert main.attrs["tir_var_upper_bound"]["n"] == model.config.max_len
    # one kernel per fused block: embed, then 4 per layer, then the 2 heads
    assert len(info["kernels"]) == 1 + 4 * model.config.layers + 2
    mod = schedules.schedule_module(relax_graph.relax_passes()(mod))
    kernels = lower.lower_kernels(mod)
    cfg = model.config
    for name, k in kernels.items():
        # the FFN hidden row, conv rows and int32 accumulators are small kernel-local arrays
        assert k.local_bytes <= cfg.ffn + 8 * cfg.max_len + 4 * cfg.hidden, (name, k.local_bytes)
        for ctype, ext in re.findall(r"(int32_t|int64_t) \w+\[(\d+)\];", k.source):
            assert int(ext) <= cfg.max_len, (name, ctype, ext)
        assert "length" not in k.params


def test_compile_errors_are_clear():
    model = random_int_model(PRESETS["tiny"].config, n_intents=43, n_slots=30, seed=0)
    del model.arrays["layer0.q.w"]
    with pytest.raises(relax_graph.CompileError, match="layer0.q.w"):
        relax_graph.build_relax(model)
