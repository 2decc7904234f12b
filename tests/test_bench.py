"""``squeezeedge bench`` on the tiny preset: the numbers are there and consistent, the report is
written. No timing is asserted (only that timings exist and are positive)."""

from __future__ import annotations

import argparse
import shutil

import pytest

from squeezeedge import bench
from squeezeedge.cli import bench as bench_cli
from squeezeedge import compiler_bench
from squeezeedge.compiler.package import macs
from squeezeedge.models.config import PRESETS
from squeezeedge.models.synthetic import random_int_model

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


@pytest.fixture(scope="module")
def tiny_result():
    model = random_int_model(PRESETS["tiny"].config, n_intents=43, n_slots=30, seed=0)
    return model, compiler_bench.bench_model("tiny", model, lengths=(8, 32), runs=5,
                                        with_ort=True, per_kernel=True)


def test_bench_numbers(tiny_result):
    model, r = tiny_result
    cfg = model.config
    assert r.macs == {n: macs(cfg, 43, len(model.tags), n) for n in (8, 32)}
    assert [t.target for t in r.targets] == ["cortex-m4", "rv32imc"]
    for t in r.targets:
        assert t.arena_bytes > 0 and t.stack_bytes > 0
        if shutil.which(compiler_bench.TARGETS[t.target]["cc"]):
            # kernels + const weights: at least the weights, not absurdly more
            assert r.weight_bytes <= t.flash_bytes < 4 * r.weight_bytes + 64 * 1024
    for n in (8, 32):
        med, p90 = r.host[n]
        assert 0 < med <= p90
    if shutil.which("arm-none-eabi-gcc"):
        pytest.importorskip("unicorn")
        for variant in ("portable", "smlad"):
            assert r.instr[variant][8] < r.instr[variant][32]
            assert r.instr_per_mac(variant, 32) > 0 and r.est_ms(variant, 32) > 0
        assert r.instr["smlad"][32] < r.instr["portable"][32]
        # the per-kernel split adds up to about the whole (noinline build: a little more)
        split = sum(r.kernel_instr["portable"].values())
        assert 0.9 * r.instr["portable"][32] < split < 1.5 * r.instr["portable"][32]
    if compiler_bench.ort_available():
        assert isinstance(r.ort, dict), r.ort
        assert all(0 < m <= p for m, p in r.ort.values())
    else:
        assert r.ort == "not installed (pip install .[bench])"


def test_bench_weights_are_what_compile_prints(tiny_result):
    """The "weights B" column is the package's const arrays (`squeezeedge compile`'s number), not the
    model file's arrays, whose scalars the compiler turns into immediates (issue 18)."""
    from squeezeedge.compiler.package import compile_model

    model, r = tiny_result
    assert r.weight_bytes == compile_model(model, "cortex-m4", measure=False).info["weight_bytes"]
    scalars = sum(a.nbytes for a in model.arrays.values() if a.size <= 2)
    assert r.weight_bytes == model.weight_bytes() - scalars


def test_bench_report(tiny_result, tmp_path):
    _, r = tiny_result
    md = bench.markdown([r], "squeezeedge bench --presets tiny", runs=5)
    for word in ("Compiler benchmark", "machine:", "command:", "CPI", "assumption", "| tiny |", "cortex-m4",
                 "rv32imc", "ONNX Runtime"):
        assert word in md, word
    head, body, thead, tbody = bench.rows([r])
    assert len(body) == 1 and len(body[0]) == len(head)
    assert len(tbody) == 2 and all(len(row) == len(thead) for row in tbody)


def test_bench_cli_arguments(monkeypatch, tmp_path, capsys):
    p = argparse.ArgumentParser()
    bench_cli.add_bench_parser(p.add_subparsers())
    a = p.parse_args(["bench", "--presets", "huge", "--no-shipped", "--quick", "-o", str(tmp_path / "x.md")])
    assert a.quick and a.no_shipped
    assert a.func(a) == 2  # unknown preset: one clear error
    assert "unknown preset" in capsys.readouterr().err


def test_float_model_from_int_runs(tiny_result):
    torch = pytest.importorskip("torch")
    model, _ = tiny_result
    net = compiler_bench.float_model_from_int(model)
    ids = torch.randint(4, model.config.vocab_size, (1, 8))
    intent, slots = net(ids, torch.tensor([8]))
    assert intent.shape == (1, len(model.intents)) and slots.shape == (1, 8, len(model.tags))
    assert torch.isfinite(intent).all()


def test_startup_bench_times_every_listed_command_and_writes_its_report(tmp_path, capsys):
    """`squeezeedge bench --startup`: each command of the issue as a new process, beside the bare
    interpreter; the numbers are the report's, not asserted (benchmarks/STARTUP.md)."""
    from squeezeedge import startup_bench

    p = argparse.ArgumentParser()
    bench_cli.add_bench_parser(p.add_subparsers())
    out = tmp_path / "STARTUP.md"
    a = p.parse_args(["bench", "--startup", "--runs", "1", "-o", str(out)])
    a.func(a)  # its exit status says whether each median is under the budget: a measurement, not a check
    table = capsys.readouterr().out
    for command in ["python -c pass", *startup_bench.COMMANDS]:
        assert f"| `{command}" in table and f"`{command}" in out.read_text()
    assert "squeezeedge bench --startup" in out.read_text()
