"""``squeezeedge bench`` against the peers, on the tiny preset: the peers are built from our
weights and decoded like us, the numbers of a results row are there and consistent, the
report and plots are written. Peer tests skip when the ``bench`` extra is not installed. No
timing is asserted."""

from __future__ import annotations

import argparse
import shutil
import sys

import numpy as np
import pytest

from squeezeedge import bench, peers
from squeezeedge.cli import bench as bench_cli
from squeezeedge.models import reference
from squeezeedge.models.config import PRESETS
from squeezeedge.models.engine import DEFAULT_MODEL, tokenizer_for
from squeezeedge.models.model_file import IntModel
from squeezeedge.models.synthetic import random_int_model
from squeezeedge.peers import compare, report

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

SENTENCES = ["turn off the kitchen lights", "set the thermostat to 21 degrees", "tell me a joke",
             "what is the temperature in the bedroom"]


def needs(peer):
    reason = peers.missing(peer)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


@pytest.fixture(scope="module")
def tiny():
    return random_int_model(PRESETS["tiny"].config, n_intents=43, n_slots=30, seed=0)


@pytest.fixture(scope="module")
def calibration(tiny):
    tok = tokenizer_for(tiny)
    return [tok.encode(s.encode()).ids for s in SENTENCES * 4]


@pytest.fixture(scope="module")
def tflite(tiny, calibration, tmp_path_factory):
    if peers.missing("litert"):
        pytest.skip(peers.missing("litert"))
    from squeezeedge.peers import litert

    return litert.build_tflite(tiny, calibration, tmp_path_factory.mktemp("tflite"))


def test_peers_start_from_our_trained_weights():
    """The float network the peers are built from reproduces the shipped int8 model's logits
    (to a few int8 steps: only our integer rounding differs)."""
    torch = pytest.importorskip("torch")
    from squeezeedge.peers.export import float_net, padded, static_net

    model = IntModel.load(DEFAULT_MODEL)
    tok = tokenizer_for(model)
    net, snet = float_net(model), static_net(model, gelu="exact")
    for text in SENTENCES:
        ids = tok.encode(text.encode()).ids
        ref = reference.run(model, ids)
        with torch.no_grad():
            i, s = net(torch.tensor([ids]), torch.tensor([len(ids)]))
            si, ss = snet(*(torch.tensor(a) for a in padded(ids, model.config.max_len)))
        ours = peers.to_our_logits(model, i[0].numpy(), s[0].numpy())
        assert np.abs(ours.intent - ref.intent).mean() < 2 and np.abs(ours.slots - ref.slots).mean() < 2
        assert int(np.argmax(ours.intent)) == int(np.argmax(ref.intent))
        # the padded static form computes the same network
        assert np.allclose(si[0].numpy(), i[0].numpy(), atol=1e-3)
        assert np.allclose(ss[0, : len(ids)].numpy(), s[0].numpy(), atol=1e-3)


def test_peer_logits_are_requantized_to_our_head_scales(tiny):
    sc = tiny.info["scales"]
    logits = peers.to_our_logits(tiny, np.array([3.0 * sc["head.intent"], 1e6, -1e6]),
                                 np.array([[2.4 * sc["head.slot"], -2.6 * sc["head.slot"]]]))
    assert logits.intent.tolist() == [3, 127, -128]
    assert logits.slots.tolist() == [[2, -3]]


def test_a_missing_peer_package_is_a_reason_not_a_crash(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    assert "onnxruntime not installed" in peers.missing("onnxrt")
    assert "pip install" in peers.missing("onnxrt")


@needs("onnxrt")
def test_onnxrt_peer_runs_at_the_true_length(tiny, calibration, tmp_path):
    p = peers.build("onnxrt", tiny, calibration, tmp_path)
    intent, slots = p.run(calibration[0])
    assert intent.shape == (len(tiny.intents),) and slots.shape == (len(calibration[0]), len(tiny.tags))
    assert p.size_bytes > tiny.weight_bytes() // 2 and p.arena_bytes is None


@needs("tflm")
def test_litert_and_tflm_run_the_same_file_alike(tiny, calibration, tflite):
    """Same .tflite, two interpreters: the outputs agree to a quantization step or two (a peer
    that is quietly wrong, as TFLM is with a per-channel int8 embedding table, fails here)."""
    lit = peers.build("litert", tiny, calibration, None, tflite=tflite)
    mic = peers.build("tflm", tiny, calibration, None, tflite=tflite)
    assert lit.size_bytes == mic.size_bytes == len(tflite)
    for ids in calibration[:4]:
        a, b = peers.to_our_logits(tiny, *lit.run(ids)), peers.to_our_logits(tiny, *mic.run(ids))
        assert a.slots.shape == b.slots.shape == (len(ids), len(tiny.tags))
        assert np.abs(a.intent - b.intent).max() <= 3 and np.abs(a.slots - b.slots).max() <= 3


@needs("tflm")
def test_tflm_runs_a_model_past_256_kib_alike(calibration, tmp_path):
    """Past 256 KiB of weights (the base preset) ai-edge-quantizer appends them after the
    flatbuffer, which TFLite Micro does not read (it computed garbage from uninitialized arena
    memory): the .tflite keeps them inline, and both interpreters agree again."""
    from squeezeedge.peers import litert

    base = random_int_model(PRESETS["base"].config, n_intents=43, n_slots=30, seed=0)
    data = litert.build_tflite(base, calibration, tmp_path)
    assert len(data) > 256 * 1024 and litert.external_buffers(data) == 0
    lit = peers.build("litert", base, calibration, None, tflite=data)
    mic = peers.build("tflm", base, calibration, None, tflite=data)
    for ids in calibration[:4]:
        a, b = peers.to_our_logits(base, *lit.run(ids)), peers.to_our_logits(base, *mic.run(ids))
        # two layers of rounding differences, a few steps; the garbage was off by ~100
        for x, y in ((a.intent, b.intent), (a.slots, b.slots)):
            assert np.abs(x - y).mean() < 2 and np.abs(x - y).max() <= 8


@needs("tflm")
def test_tflm_arena_is_the_smallest_that_runs(tiny, tflite):
    from squeezeedge.peers import tflm
    from squeezeedge.peers.export import padded

    probe = list(padded([2] + [5] * 29 + [3], tiny.config.max_len))
    arena = tflm.smallest_arena(tflite, probe)
    assert tflm._runs(tflite, arena, probe)
    assert not tflm._runs(tflite, arena - tflm.ARENA_STEP, probe)


@pytest.fixture(scope="module")
def row(tiny):
    """One results row, quick: 16 held-out sentences, 20 timed calls per engine."""
    return compare.bench_preset("tiny", limit=16, runs=20, rounds=2, with_m4=shutil.which("arm-none-eabi-gcc")
                                is not None, model=tiny)


def test_a_results_row_has_every_number(row, tiny):
    assert row.n_sentences == 16 and row.c_mismatches == 0  # generated C answers exactly like the reference
    assert row.engines["c"].metrics == row.engines["reference"].metrics
    assert row.ram["arena"] > 0 and row.ram["stack"] > 0 and row.ram["weights"] == tiny.weight_bytes()
    for name in peers.PEERS:
        e = row.engines[name]
        if peers.missing(name):
            assert "not installed" in e.status and e.metrics is None
        else:
            # random weights give near ties that int8 rounding flips, so a peer may be flagged here
            assert e.status == "ok" or e.status.startswith("wrong output: its intents agree"), e.status
            assert 0 <= e.metrics["intent_accuracy"] <= 1 and e.size_bytes > 0
            lo_mid_hi = row.ratio(name)
            assert lo_mid_hi[1] <= lo_mid_hi[0] <= lo_mid_hi[2]
    assert all(v["median_us"] <= v["p90_us"] and v["calls"] == 20 for v in row.latency.values())
    m = np.array(row.confusion["matrix"])
    assert m.sum() == 16 and row.confusion["labels"][-1] == "(out of scope)"
    if row.m4:
        assert row.m4["instr_per_mac"] > 0 and row.m4["mac_bound_cycles"] == row.m4["macs"] / 2


def test_the_report_says_what_ran_and_what_could_not(row, tmp_path):
    broken = compare.PresetResult(**{**row.__dict__, "preset": "base", "engines": dict(row.engines)})
    broken.engines["tflm"] = compare.Engine("tflm", "TFLite Micro int8", status="wrong output on this preset")
    md = report.markdown([row, broken], command="squeezeedge bench --presets tiny", machine=bench.machine(),
                         versions=bench.versions(), runs=20, rounds=2)
    for text in ("| tiny |", "| base |", "cannot run: wrong output on this preset", "x·sigmoid(1.702x)",
                 "C = reference", "identical", "MAC-bound", "command: `squeezeedge bench --presets tiny`"):
        assert text in md, text


def test_plots_are_written(row, tmp_path):
    pytest.importorskip("matplotlib")
    small = compare.PresetResult(**{**row.__dict__, "preset": "small"})
    written = report.plot_all([row, small], tmp_path)
    assert set(written) == {"latency", "ram", "accuracy", "confusion"}
    for path in written.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_preset_is_found_shipped_or_cached_and_not_trained_when_told(monkeypatch, tmp_path):
    from squeezeedge import emulator

    monkeypatch.setattr(compare, "PRETRAINED_DIR", tmp_path / "pretrained")
    monkeypatch.setattr(emulator, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="squeezeedge train --preset tiny"):
        compare.find_model("tiny", train=False)
    (tmp_path / "cache").mkdir()
    compare.cached_model_path("tiny").write_bytes(b"")
    assert compare.find_model("tiny", train=False) == (tmp_path / "cache" / "trained-tiny-seed0.semodel", "cached")
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "tiny.semodel").write_bytes(b"")
    assert compare.find_model("tiny", train=False)[1] == "shipped"
    with pytest.raises(ValueError, match="unknown preset"):
        compare.find_model("huge")


def test_bench_cli_rejects_unknown_presets_and_peers(capsys):
    p = argparse.ArgumentParser()
    bench_cli.add_bench_parser(p.add_subparsers())
    for argv, word in ((["bench", "--presets", "huge"], "unknown preset"), (["bench", "--peers", "tvm"], "unknown peer")):
        a = p.parse_args(argv + ["--quick", "-o", "-"])
        assert a.func(a) == 2
        assert word in capsys.readouterr().err
