"""One preset against the peers: accuracy, memory, host latency, Cortex-M4 instructions.

``bench_preset`` produces every number of one row of ``benchmarks/RESULTS.md``; ``report.py``
turns the results into the table and the plots. Accuracy is exact and repeatable (fixed
sentences, deterministic builds); latencies are measured in the same process run, the
engines interleaved in rounds so that a busy machine slows them alike, and reported as ratios.
"""

from __future__ import annotations

import ctypes
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..models.config import PRESETS
from ..models.decode import Answer, decode
from ..models.engine import DEFAULT_MODEL, PRETRAINED_DIR, Encoder
from ..models.entities import home_names
from ..models.gazetteer import supports_names
from ..models.evaluate import score
from ..models.model_file import IntModel
from . import LABELS, PEERS, PeerUnavailable, build, missing, to_our_logits

# A peer whose intents agree with our int8 reference on fewer sentences than this computes a
# different function, not a slightly different quantization: its row says "wrong output".
MIN_AGREEMENT = 0.8
CALIBRATION_SENTENCES = 200  # training sentences the peers' quantizers calibrate on
TIMING_SENTENCES = 100  # held-out sentences the latency loop cycles through
SEED = 0


# ------------------------------------------------------------------ which model file


def cached_model_path(preset: str) -> Path:
    from ..emulator import CACHE_DIR

    return CACHE_DIR / f"trained-{preset}-seed{SEED}.semodel"


def find_model(preset: str, train: bool = True, progress=None) -> tuple[Path, str]:
    """The trained model of ``preset``: shipped (models/pretrained/), cached, or trained now."""
    say = progress or (lambda s: None)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    shipped = DEFAULT_MODEL if preset == "small" else PRETRAINED_DIR / f"{preset}.semodel"
    if shipped.is_file():
        return shipped, "shipped"
    cached = cached_model_path(preset)
    if cached.is_file():
        return cached, "cached"
    if not train:
        raise FileNotFoundError(f"no trained {preset} model at {shipped} or {cached}; run without --no-train "
                                f"or `squeezeedge train --preset {preset} -o {cached}`")
    say(f"{preset}: no trained model shipped or cached; training it now (seed {SEED}, deterministic; "
        f"takes 6-17 min on 2 cores; cached at {cached})")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".part")
    r = subprocess.run([sys.executable, "-m", "squeezeedge", "train", "--preset", preset, "--seed", str(SEED),
                        "-o", str(tmp)])
    if r.returncode != 0 or not tmp.is_file():
        raise RuntimeError(f"training the {preset} preset failed (exit {r.returncode}); see the output above")
    tmp.replace(cached)
    return cached, "trained"


# ------------------------------------------------------------------ results


@dataclass
class Engine:
    """One column group: an engine's accuracy (or why it has none) and size."""

    name: str
    label: str
    metrics: dict | None = None  # evaluate.Metrics.as_dict() on the held-out sentences
    status: str = "ok"  # "ok" or the reason it could not run
    size_bytes: int | None = None
    arena_bytes: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class PresetResult:
    preset: str
    model_source: str  # shipped / cached / trained
    parameters: int
    n_sentences: int
    float_metrics: dict | None  # measured at training time (info["metrics"]["test"]["float"])
    engines: dict  # name -> Engine: "reference", "c", and the peers
    c_mismatches: int  # sentences where the generated C answered differently from the reference
    ram: dict  # arena, stack (Cortex-M4 build), flash (text+rodata of model.o), weights
    latency: dict = field(default_factory=dict)  # engine -> {"median_us", "p90_us", "round_medians"}
    m4: dict = field(default_factory=dict)  # length, instructions, macs, instr_per_mac, mac_bound_cycles
    confusion: dict | None = None  # {"labels": [...], "matrix": [[...]]} of the generated C's intents
    notes: list[str] = field(default_factory=list)

    def ratio(self, peer: str) -> tuple[float, float, float] | None:
        """(median, lowest, highest) over the rounds of peer median / our median in that round:
        engines take turns within a round, so each round's ratio saw the same machine load."""
        ours, theirs = self.latency.get("c"), self.latency.get(peer)
        if not ours or not theirs:
            return None
        per_round = [t / o for t, o in zip(theirs["round_medians"], ours["round_medians"])]
        return float(np.median(per_round)), min(per_round), max(per_round)


# ------------------------------------------------------------------ measurements


def held_out(limit: int | None = None):
    """The held-out test split (the one the README reports), or an even subset of it."""
    from ..models.dataset import build_dataset

    ds = build_dataset(SEED)
    test = ds.test
    if limit and limit < len(test):
        step = len(test) / limit
        test = [test[int(i * step)] for i in range(limit)]
    calib = random.Random(SEED).sample(ds.train, min(CALIBRATION_SENTENCES, len(ds.train)))
    return test, calib


def answers_of(model: IntModel, encoded, logits_of, names_told: bool = False) -> list[Answer]:
    return [decode(model, data, enc.ids, enc.offsets, logits_of(enc.ids), names_told) for data, enc in encoded]


def confusion(intents: list[str | None], golds: list[str | None]) -> dict:
    labels = sorted({x for x in intents + golds if x is not None}) + [None]
    index = {x: i for i, x in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(golds, intents):
        m[index[g], index[p]] += 1
    return {"labels": [x or "(out of scope)" for x in labels], "matrix": m.tolist()}


def our_memory(model: IntModel, work: Path) -> tuple[dict, Path | None]:
    """Arena, stack and flash of the Cortex-M4 build (the SMLAD package the board firmware uses)."""
    from ..compiler_bench import object_flash_bytes
    from ..compiler.package import compile_model

    pkg = compile_model(model, "cortex-m4")
    pdir = pkg.write(work / "cortex-m4")
    i = pkg.info
    return {"arena": i["arena_bytes"], "stack": i["stack_bytes"], "flash": object_flash_bytes(pdir, "cortex-m4"),
            "weights": int(model.weight_bytes())}, pdir


def m4_instructions(model: IntModel, pdir: Path, length: int) -> dict:
    from ..compiler_bench import count_m4
    from ..compiler.package import macs

    if shutil.which("arm-none-eabi-gcc") is None:
        return {"status": "arm-none-eabi-gcc not installed"}
    try:
        import unicorn  # noqa: F401
    except ImportError:
        return {"status": "unicorn not installed"}
    counts, _ = count_m4(pdir, [length], model.config.vocab_size)
    n = macs(model.config, len(model.intents), len(model.tags), length)
    return {"length": length, "instructions": counts[length], "macs": n,
            "instr_per_mac": counts[length] / n, "mac_bound_cycles": n / 2}


def time_engines(callers: dict, rounds: int, runs: int) -> dict:
    """``callers``: name -> list of zero-argument calls (one per sentence). Each round times
    every engine on ``runs // rounds`` calls cycling through the sentences, in turn."""
    per = max(1, runs // rounds)
    times = {k: [] for k in callers}
    for calls in callers.values():  # warm up caches and lazy initialization
        for c in calls[: min(20, len(calls))]:
            c()
    for r in range(rounds):
        for name, calls in callers.items():
            t = np.empty(per)
            for i in range(per):
                c = calls[(r * per + i) % len(calls)]
                t0 = time.perf_counter_ns()
                c()
                t[i] = time.perf_counter_ns() - t0
            times[name].append(t / 1e3)
    out = {}
    for name, rs in times.items():
        allt = np.concatenate(rs)
        out[name] = {"median_us": float(np.median(allt)), "p90_us": float(np.percentile(allt, 90)),
                     "round_medians": [float(np.median(x)) for x in rs], "calls": int(allt.size)}
    return out


def bench_preset(preset: str, peers=PEERS, limit: int | None = None, runs: int = 2000, rounds: int = 5,
                 train: bool = True, with_m4: bool = True, model: IntModel | None = None, progress=None) -> PresetResult:
    """Every number of one preset. ``model`` overrides the trained model (tests use a random one)."""
    from ..compiler.host_engine import CEngine
    from ..models import reference

    say = progress or (lambda s: None)
    source = "given"
    if model is None:
        path, source = find_model(preset, train=train, progress=progress)
        model = IntModel.load(path)
    say(f"{preset}: held-out sentences ({'all' if not limit else limit}) and calibration sentences")
    test, calib_ex = held_out(limit)
    # the held-out sentences' home, as `squeezeedge eval` measures
    tok = Encoder(model, home_names("all") if supports_names(model.vocab) else None)
    encoded = [(ex.text.encode("utf-8"), tok.encode(ex.text.encode("utf-8"))) for ex in test]
    calib = [tok.encode(ex.text.encode("utf-8")).ids for ex in calib_ex]
    golds = [(ex.intent, ex.slots) for ex in test]
    engines: dict[str, Engine] = {}

    say(f"{preset}: int8 reference interpreter on {len(test)} sentences")
    ref = answers_of(model, encoded, lambda ids: reference.run(model, ids), tok.names_told)
    engines["reference"] = Engine("reference", "int8 reference", score(golds, ref).as_dict())

    with tempfile.TemporaryDirectory(prefix="se-bench-") as d:
        work = Path(d)
        say(f"{preset}: compiling (host, cortex-m4)")
        ram, m4dir = our_memory(model, work)
        c = CEngine(model)
        ours = answers_of(model, encoded, c.run, tok.names_told)
        mismatches = sum(a != b for a, b in zip(ours, ref))
        engines["c"] = Engine("c", "generated C", score(golds, ours).as_dict(), size_bytes=ram["flash"],
                              arena_bytes=ram["arena"])

        fn, arena_buf, out_i, out_s = c._fn, c._arena, c._intent, c._slots
        n_time = min(TIMING_SENTENCES, len(encoded))
        timing_ids = [enc.ids for _, enc in encoded[:: max(1, len(encoded) // n_time)][:n_time]]

        def c_call(ids):
            buf = (ctypes.c_int32 * len(ids))(*ids)
            return lambda: fn(buf, len(ids), out_i, out_s, arena_buf)

        callers = {"c": [c_call(ids) for ids in timing_ids]}

        tflite = None
        intents = {}
        for name in peers:
            e = Engine(name, LABELS[name])
            engines[name] = e
            reason = missing(name)
            if reason:
                e.status = reason
                continue
            say(f"{preset}: {LABELS[name]}: build, then {len(test)} sentences")
            try:
                if name in ("litert", "tflm") and tflite is None:
                    from .litert import build_tflite

                    tflite = build_tflite(model, calib, work)
                p = build(name, model, calib, work, tflite=tflite)
            except PeerUnavailable as err:
                e.status = str(err)
                continue
            except Exception as err:  # noqa: BLE001 - a peer's failure is a result, not a crash
                e.status = f"build failed: {type(err).__name__}: {str(err).strip().splitlines()[-1][:160]}"
                continue
            e.size_bytes, e.arena_bytes, e.notes = p.size_bytes, p.arena_bytes, p.notes
            try:
                peer_answers = answers_of(model, encoded, lambda ids: to_our_logits(model, *p.run(ids)),
                                          tok.names_told)
            except Exception as err:  # noqa: BLE001 - e.g. TFLite Micro failing inside invoke
                e.status = f"fails at run time: {str(err).strip()[:300]}"
                continue
            e.metrics = score(golds, peer_answers).as_dict()
            intents[name] = [a.intent for a in peer_answers]
            if p.prepare is not None:
                callers[name] = [p.prepare(ids) for ids in timing_ids]

        for name, got in intents.items():
            agree = np.mean([a == b.intent for a, b in zip(got, ref)])
            if agree < MIN_AGREEMENT:
                why = f"wrong output: its intents agree with our int8 reference on {100 * agree:.0f}% of sentences"
                if name == "tflm" and "litert" in intents:
                    same = np.mean([a == b for a, b in zip(got, intents["litert"])])
                    why += (f" and with LiteRT running the same .tflite file on {100 * same:.0f}%, so TFLite "
                            "Micro computes this graph differently")
                engines[name].status = why

        say(f"{preset}: host latency, {len(callers)} engines interleaved, {rounds} rounds, {runs} calls each")
        latency = time_engines(callers, rounds, runs)
        m4 = {}
        if with_m4:
            length = int(np.median([len(enc.ids) for _, enc in encoded]))
            say(f"{preset}: Cortex-M4 instructions at the median held-out length ({length} tokens)")
            m4 = m4_instructions(model, m4dir, length)

    fm = ((model.info.get("metrics") or {}).get("test") or {}).get("float")
    if limit and fm:
        fm = dict(fm, note="full test split")
    return PresetResult(preset, source, int(model.parameter_count()), len(test), fm, engines, mismatches, ram,
                        latency, m4, confusion([a.intent for a in ours], [g for g, _ in golds]))
