"""The TVM-generated C model package: bit-exact with the integer reference interpreter."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from squeezeedge.compiler import aot
from squeezeedge.compiler.host_engine import CEngine
from squeezeedge.compiler.package import compile_model
from squeezeedge.models import reference
from squeezeedge.models.config import PRESETS
from squeezeedge.models.engine import DEFAULT_MODEL, ReferenceEngine
from squeezeedge.models.synthetic import random_int_model

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

# (preset, seed, inputs): 1000+ inputs over three presets and four random models
MODELS = [("tiny", 11, 250), ("small", 1, 300), ("small", 2, 250), ("base", 3, 200)]


def _model(preset: str, seed: int):
    return random_int_model(PRESETS[preset].config, n_intents=43, n_slots=30, seed=seed)


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    out = {}
    for preset, seed, _ in MODELS:
        model = _model(preset, seed)
        d = tmp_path_factory.mktemp(f"pkg-{preset}-{seed}")
        pkg = compile_model(model, "host")
        pkg.write(d)
        out[(preset, seed)] = (model, d, pkg)
    return out


def _inputs(cfg, count: int, rng):
    """Random lengths 1..max_len and ids, plus the edges (length 1, max_len, id 0, id vocab-1)."""
    cases = [[0], [cfg.vocab_size - 1], [0] * cfg.max_len, [cfg.vocab_size - 1] * cfg.max_len,
             list(range(cfg.max_len))]
    while len(cases) < count:
        length = int(rng.integers(1, cfg.max_len + 1))
        cases.append(rng.integers(0, cfg.vocab_size, length).tolist())
    return cases


@pytest.mark.parametrize("preset,seed,count", MODELS)
def test_bit_exact_with_reference(packages, preset, seed, count):
    model, d, _ = packages[(preset, seed)]
    engine = CEngine(d, model=model)
    rng = np.random.default_rng(seed)
    for ids in _inputs(model.config, count, rng):
        want = reference.run(model, ids)
        got = engine.run(ids)
        assert np.array_equal(got.intent, want.intent), f"intent differs for {ids}"
        assert np.array_equal(got.slots, want.slots), f"slots differ for {ids}"


def test_padding_never_matters(packages):
    """Stale arena contents from a long input must not change a short input's result."""
    model, d, _ = packages[("small", 1)]
    engine = CEngine(d, model=model)
    rng = np.random.default_rng(5)
    short = rng.integers(0, model.config.vocab_size, 5).tolist()
    first = engine.run(short)
    engine.run(rng.integers(0, model.config.vocab_size, model.config.max_len).tolist())
    again = engine.run(short)
    assert np.array_equal(first.intent, again.intent) and np.array_equal(first.slots, again.slots)


def test_rejects_bad_inputs(packages):
    model, d, _ = packages[("tiny", 11)]
    engine = CEngine(d, model=model)
    cfg = model.config
    assert engine.run_status([])[0] == -2
    assert engine.run_status([1] * (cfg.max_len + 1))[0] == -2
    assert engine.run_status([1, -1])[0] == -3
    assert engine.run_status([1, cfg.vocab_size])[0] == -3
    with pytest.raises(ValueError):
        engine.run([cfg.vocab_size])


def test_memory_plan_and_budget(packages):
    for (preset, seed), (model, d, pkg) in packages.items():
        info = json.loads((d / "model.json").read_text())
        for key in ("arena_bytes", "stack_bytes", "weight_bytes", "macs"):
            assert isinstance(info[key], int) and info[key] > 0
        assert info["weight_bytes"] <= model.weight_bytes()
        bufs = [aot.Buffer(b["name"], "", b["offset"], b["bytes"], *b["live"]) for b in info["arena"]]
        aot.check_plan(aot.Plan([], {b.name: b for b in bufs}, {}, [], info["arena_bytes"]))
        # every activation in the arena is int8 [max_len, <= 3*hidden]: no int32 intermediates
        assert max(b.nbytes for b in bufs) <= 3 * model.config.hidden * model.config.max_len
        if preset == "small":
            assert info["arena_bytes"] + info["stack_bytes"] <= 24 * 1024


def test_overlap_detector_catches_overlap():
    a = aot.Buffer("a", "", 0, 100, 0, 2)
    b = aot.Buffer("b", "", 50, 100, 1, 3)
    with pytest.raises(AssertionError):
        aot.check_plan(aot.Plan([], {"a": a, "b": b}, {}, [], 200))
    b.first = 3  # not live together: fine
    aot.check_plan(aot.Plan([], {"a": a, "b": b}, {}, [], 200))


def _code(src: str) -> str:
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def test_c_is_plain_and_strict(packages, tmp_path):
    _, d, _ = packages[("small", 1)]
    src = _code((d / "model.c").read_text())
    hdr = _code((d / "model.h").read_text())
    for word in ("float", "double", "malloc", "calloc", "free", "alloca", "TVM", "tvm"):
        assert not re.search(rf"\b{word}\b", src + hdr), word
    includes = set(re.findall(r"#include\s+[<\"]([^>\"]+)[>\"]", src + hdr))
    assert includes <= {"stdint.h", "stdbool.h", "model.h"}
    assert re.search(r"\bstatic const int8_t se_const\d+\[", src)
    # no VLAs: every local array has a constant extent
    assert not re.search(r"\b\w+_t\s+\w+\[[^\]0-9][^\]]*\];", src)
    r = subprocess.run(["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2", "-c",
                        str(d / "model.c"), "-o", str(tmp_path / "m.o")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_header_defines(packages):
    model, d, pkg = packages[("small", 1)]
    h = (d / "model.h").read_text()
    for name, value in [("SE_MODEL_MAX_LEN", model.config.max_len), ("SE_MODEL_VOCAB_SIZE", model.config.vocab_size),
                        ("SE_MODEL_N_INTENTS", len(model.intents)), ("SE_MODEL_N_TAGS", len(model.tags)),
                        ("SE_MODEL_ARENA_BYTES", pkg.info["arena_bytes"])]:
        assert re.search(rf"#define {name} {value}\b", h), name
    assert "int se_model_run(const int32_t *token_ids, int32_t length" in h


def test_classify_matches_reference_engine(packages):
    model, d, _ = packages[("small", 1)]
    c, ref = CEngine(d, model=model), ReferenceEngine(model)
    assert c.name == "c"
    for text in [b"turn off the kitchen lights", b"set the thermostat to 21 degrees", b"", b"x" * 400,
                 "caf\u00e9 lights".encode()]:
        assert c.classify(text) == ref.classify(text)


def test_cortex_m4_package_bit_exact_on_host(tmp_path):
    """A cortex-m4 package (SMLAD tensor intrinsic) compiled for the host takes the portable
    branch of se_dot4_s8: still bit-exact (QEMU checks the SMLAD branch itself)."""
    model = _model("small", 9)
    pkg = compile_model(model, "cortex-m4", measure=False)
    assert pkg.info["tensor_intrinsic"] == "se.cortex_m.dot4_s8"
    assert "__builtin_arm_smlad" in pkg.model_c and "se_dot4_s8(" in pkg.model_c
    pkg.write(tmp_path)
    engine = CEngine(tmp_path, model=model)
    rng = np.random.default_rng(9)
    for ids in _inputs(model.config, 120, rng):
        want, got = reference.run(model, ids), engine.run(ids)
        assert np.array_equal(got.intent, want.intent) and np.array_equal(got.slots, want.slots)


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no pretrained model yet")
def test_pretrained_model_bit_exact(tmp_path):
    from squeezeedge.models.model_file import IntModel

    model = IntModel.load(DEFAULT_MODEL)
    compile_model(model, "host").write(tmp_path)
    engine, ref = CEngine(tmp_path, model=model), ReferenceEngine(model)
    rng = np.random.default_rng(0)
    for ids in _inputs(model.config, 150, rng):
        want, got = reference.run(model, ids), engine.run(ids)
        assert np.array_equal(got.intent, want.intent) and np.array_equal(got.slots, want.slots)
    for text in [b"turn off the kitchen lights", b"set a timer for 10 minutes", b"what's the weather like"]:
        assert engine.classify(text) == ref.classify(text)


def test_the_compile_command_writes_the_whole_package_a_firmware_builds_with(tiny_model_path, tmp_path):
    import re
    import subprocess
    import sys

    out = tmp_path / "pkg"
    proc = subprocess.run([sys.executable, "-m", "squeezeedge", "compile", "--model", str(tiny_model_path),
                           "--target", "rv32imc", "-o", str(out), "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["model.c", "model.h", "model.json", "model_meta.c",
                                                      "model_meta.h"]
    model_h, meta_h = (out / "model.h").read_text(), (out / "model_meta.h").read_text()
    tags = re.search(r"#define SE_MODEL_N_TAGS (\d+)", model_h).group(1)
    assert re.search(r"#define SE_META_N_TAGS (\d+)", meta_h).group(1) == tags  # one model, both halves

    missing = subprocess.run([sys.executable, "-m", "squeezeedge", "compile", "--model", str(tmp_path / "no.semodel"),
                              "-o", str(tmp_path / "x")], capture_output=True, text=True)
    errors = [l for l in missing.stderr.splitlines() if "error" in l]
    assert missing.returncode == 2 and errors == [f"squeezeedge: error: {tmp_path / 'no.semodel'}: no such model file"]
