"""``squeezeedge bench``: SqueezeEdge against its peers, and what the compiled model costs.

``squeezeedge bench`` (``make bench``) takes each preset's trained model (shipped, cached, or trained once
and cached: ``peers.compare.find_model``), builds ONNX
Runtime, LiteRT and TFLite Micro int8 models from each preset's trained weights
(``host_tools/peers``), and writes ``benchmarks/RESULTS.md`` with its plots: accuracy on the
held-out test split, RAM/flash, host latency ratios and Cortex-M4 instructions.

``squeezeedge bench --compiler`` prints a table and writes ``benchmarks/COMPILER.md``: arena/stack/flash bytes, MACs, Cortex-M4
executed instructions (unicorn; portable C and with the SMLAD tensor intrinsic), instructions
per MAC, an estimated time at 168 MHz (an assumed CPI, stated in the report), host latency of
the generated C next to ONNX Runtime int8 on the same model, and compile time. The numbers come
from ``squeezeedge.compiler_bench``. Wire-up: ``add_bench_parser(subparsers)``.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from pathlib import Path

from .resources import BENCH_DIR

DEFAULT_OUT = BENCH_DIR / "COMPILER.md"
RESULTS_OUT = BENCH_DIR / "RESULTS.md"
LENGTHS = (8, 32)


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"arch": platform.machine(), "cpu": cpu or platform.processor() or "unknown",
            "cores": os.cpu_count(), "python": platform.python_version()}


def versions() -> dict:
    """Installed versions of what the numbers depend on (distribution metadata: not every
    package has a __version__)."""
    from importlib import metadata

    out = {}
    for dist in ("apache-tvm", "onnxruntime", "onnx", "torch", "unicorn", "litert-torch", "ai-edge-quantizer",
                 "ai-edge-litert", "tflite-micro"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _f(v, fmt="{:,.0f}", none="–"):
    return none if v is None else fmt.format(v)


def rows(results) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    """(header, rows) of the main table and of the per-target size table."""
    head = ["model", "MACs @8", "MACs @32", "M4 instr @8 (C)", "M4 instr @32 (C)", "instr/MAC (C)",
            "M4 instr @8 (SMLAD)", "M4 instr @32 (SMLAD)", "instr/MAC (SMLAD)", "est. ms @32, 168 MHz (C / SMLAD)",
            "host C µs @8 med/p90", "host C µs @32 med/p90", "ORT int8 µs @8 med/p90", "ORT int8 µs @32 med/p90",
            "ours/ORT @32"]
    body = []
    for r in results:
        L = max(r.macs)
        ort = r.ort
        if isinstance(ort, dict) and ort:
            o8 = f"{ort[min(ort)][0]:.1f} / {ort[min(ort)][1]:.1f}"
            o32 = f"{ort[L][0]:.1f} / {ort[L][1]:.1f}"
            ratio = f"{r.host[L][0] / ort[L][0]:.2f}"
        else:
            o8 = o32 = str(ort) if ort else "–"
            ratio = "–"
        c, s = r.instr.get("portable", {}), r.instr.get("smlad", {})
        body.append([
            r.name, _f(r.macs.get(8)), _f(r.macs[L]) + ("" if L == 32 else f" (@{L})"),
            _f(c.get(8)), _f(c.get(L)), _f(r.instr_per_mac("portable", L), "{:.2f}"),
            _f(s.get(8)), _f(s.get(L)), _f(r.instr_per_mac("smlad", L), "{:.2f}"),
            f"{_f(r.est_ms('portable', L), '{:.2f}')} / {_f(r.est_ms('smlad', L), '{:.2f}')}",
            f"{r.host[min(r.host)][0]:.1f} / {r.host[min(r.host)][1]:.1f}",
            f"{r.host[L][0]:.1f} / {r.host[L][1]:.1f}", o8, o32, ratio])
    thead = ["model", "target", "arena B", "stack B", "flash B (text+rodata)", "weights B", "compile s"]
    tbody = []
    for r in results:
        for t in r.targets:
            tbody.append([r.name, t.target, _f(t.arena_bytes), _f(t.stack_bytes), _f(t.flash_bytes),
                          _f(r.weight_bytes), f"{t.compile_seconds:.1f}"])
    return head, body, thead, tbody


def text_table(head, body) -> str:
    w = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda r: "  ".join(str(x).rjust(n) for x, n in zip(r, w))  # noqa: E731
    return "\n".join([line(head), line(["-" * n for n in w])] + [line(r) for r in body])


def _md_table(head, body) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] +
                     ["| " + " | ".join(str(x) for x in r) + " |" for r in body])


def markdown(results, command: str, runs: int, when: str | None = None) -> str:
    from squeezeedge.compiler_bench import M4_CPI, M4_MHZ

    m, v = machine(), versions()
    head, body, thead, tbody = rows(results)
    parts = [
        "# Compiler benchmark",
        "",
        f"- date: {when or _dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: `{m['arch']}`, {m['cpu']}, {m['cores']} cores (python {m['python']})",
        f"- command: `{command}`",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "Presets use random int8 weights (`random_int_model(cfg, n_intents=43, n_slots=30)`): sizes, MACs and "
        "instruction counts do not depend on trained values. `shipped` is `models/pretrained/default.semodel`.",
        "",
        "## Cost per inference",
        "",
        _md_table(head, body),
        "",
        "- *M4 instr*: Cortex-M4 instructions executed by one `se_model_run` call, counted with unicorn "
        "(deterministic; `arm-none-eabi-gcc -mcpu=cortex-m4 -O2`). *(C)*: portable C; *(SMLAD)*: the "
        "`se.cortex_m.dot4_s8` tensor intrinsic (SXTB16 + SMLAD) used by `--target cortex-m4`.",
        f"- *est. ms*: instructions × CPI {M4_CPI} / {M4_MHZ} MHz. The CPI is an **assumption** (single-cycle "
        "ALU/MAC, 2-cycle loads, flash wait states partly hidden by the STM32F4 ART cache), not a measurement.",
        f"- *host*: median / p90 of {runs} calls of the generated C (gcc -O2, ctypes, one thread) and of "
        "ONNX Runtime int8 (QDQ, per-channel, `quantize_static` with random calibration ids, one thread) on the "
        "same dequantized model, measured in the same process run. Both include a little Python call overhead. "
        "The machine is not isolated (other jobs may share its cores): treat host latencies as indicative; "
        "instruction counts, sizes and MACs are exact.",
        "",
        "## Memory per target",
        "",
        _md_table(thead, tbody),
        "",
        "- *arena*: caller-owned scratch (activations, int8 only); *stack*: `-fstack-usage` of the target "
        "compiler (entry frame + largest kernel frame); *flash*: text + rodata of `model.o` for that target "
        "(size tool of the target toolchain), i.e. kernels and const weights; *weights*: the const arrays of "
        "`model.c`, as `squeezeedge compile` prints them (the model file's integer arrays are a few bytes more: "
        "its scalars, requantization multiplier/shift pairs and residual multipliers, are immediates in the kernels' code).",
        "",
    ]
    splits = [(r, var) for r in results for var in ("portable", "smlad") if r.kernel_instr.get(var)]
    if splits:
        parts += ["## Where the Cortex-M4 instructions go (longest input, kernels not inlined)", ""]
        for r, var in splits:
            tot = sum(r.kernel_instr[var].values())
            items = sorted(r.kernel_instr[var].items(), key=lambda kv: -kv[1])
            cells = []
            for k, n in items:
                if n / tot < 0.01:
                    continue
                mac = r.kernel_macs.get(k, 0)
                cells.append(f"{k} {n / tot:.0%}" + (f" ({n / mac:.2f}/MAC)" if mac else ""))
            parts.append(f"- {r.name} ({var}): " + ", ".join(cells))
        parts.append("")
    notes = [f"- {r.name}: {n}" for r in results for n in r.notes]
    if notes:
        parts += ["## Notes", ""] + notes + [""]
    return "\n".join(parts)


def run(presets: list[str], shipped: bool = True, quick: bool = False, runs: int | None = None,
        with_ort: bool = True, progress=None):
    from squeezeedge.compiler_bench import bench_model
    from squeezeedge.models.config import PRESETS
    from squeezeedge.models.engine import DEFAULT_MODEL
    from squeezeedge.models.model_file import IntModel
    from squeezeedge.models.synthetic import random_int_model

    runs = runs or (200 if quick else 2000)
    results = []
    for name in presets:
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        model = random_int_model(PRESETS[name].config, n_intents=43, n_slots=30, seed=0)
        results.append(bench_model(name, model, lengths=LENGTHS, runs=runs, with_ort=with_ort,
                                   per_kernel=not quick, progress=progress))
    if shipped and DEFAULT_MODEL.is_file():
        model = IntModel.load(DEFAULT_MODEL)
        results.append(bench_model("shipped", model, lengths=LENGTHS, runs=runs, with_ort=with_ort,
                                   per_kernel=not quick, progress=progress))
    return results, runs


# ------------------------------------------------------------------ against the peers


def run_peers(presets: list[str], peers: list[str], *, sentences: int | None = None, runs: int = 2000,
              rounds: int = 5, train: bool = True, with_m4: bool = True, progress=None):
    """Every preset's ``PresetResult`` (one process run: all numbers of RESULTS.md)."""
    from .peers import PEERS
    from .peers.compare import bench_preset
    from .models.config import PRESETS

    for p in presets:
        if p not in PRESETS:
            raise ValueError(f"unknown preset {p!r}; choose from {', '.join(PRESETS)}")
    for p in peers:
        if p not in PEERS:
            raise ValueError(f"unknown peer {p!r}; choose from {', '.join(PEERS)}")
    return [bench_preset(p, peers=peers, limit=sentences, runs=runs, rounds=rounds, train=train, with_m4=with_m4,
                         progress=progress) for p in presets]


def write_results(results, output: Path, command: str, runs: int, rounds: int) -> dict:
    """RESULTS.md at ``output`` and the plots beside it; returns the plots written."""
    from .peers import report

    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        plots = report.plot_all(results, output.parent)
    except ImportError:
        plots = {}
    output.write_text(report.markdown(results, command=command, machine=machine(), versions=versions(), runs=runs,
                                      rounds=rounds, plots=plots))
    return plots
