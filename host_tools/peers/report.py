"""``benchmarks/RESULTS.md`` and its plots from a list of ``compare.PresetResult``."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from . import LABELS, PEERS
from .compare import MIN_AGREEMENT, TIMING_SENTENCES

PLOTS = {"latency": "latency_ratio.png", "ram": "ram.png", "accuracy": "accuracy_vs_flash.png",
         "confusion": "confusion_default.png"}


def _pct(m: dict | None, key: str, digits: int = 2) -> str:
    return "–" if not m else f"{100 * m[key]:.{digits}f}"


def _acc(m: dict | None) -> str:
    """intent accuracy · slot F1 · out-of-scope rejected, in percent."""
    if not m:
        return "–"
    oos = f" · {100 * m['oos_rejection']:.1f}" if m.get("n_out_of_scope") else ""
    return f"{100 * m['intent_accuracy']:.2f} · {100 * m['slot_f1']:.1f}{oos}"


def _b(v) -> str:
    return "–" if v is None else f"{v:,}"


def _kb(v) -> str:
    return "–" if v is None else f"{v / 1024:.1f} KB"


def _peer(r, name, cell, short: bool = False) -> str:
    e = r.engines.get(name)
    if e is None:
        return "not run"
    if e.status == "ok":
        return cell(e)
    if e.metrics is not None:  # it ran, but computes something else
        return f"{cell(e)} (**wrong output**)" if short else f"{cell(e)} (**{e.status}**)"
    return f"cannot run: {e.status}"


def table(head, body) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] +
                     ["| " + " | ".join(str(x) for x in row) + " |" for row in body])


def accuracy_table(results) -> str:
    head = ["preset", "n", "float (at training, full test split)", "int8 reference", "generated C",
            "C = reference"] + [LABELS[p] for p in PEERS]
    body = []
    for r in results:
        same = "identical" if r.c_mismatches == 0 else f"**{r.c_mismatches} differ**"
        body.append([r.preset, f"{r.n_sentences:,}", _acc(r.float_metrics), _acc(r.engines["reference"].metrics),
                     _acc(r.engines["c"].metrics), same] +
                    [_peer(r, p, lambda e: _acc(e.metrics)) for p in PEERS])
    return table(head, body)


def memory_table(results) -> str:
    head = ["preset", "ours RAM (arena + stack)", "TFLite Micro arena (smallest that runs)", "RAM TFLM / ours",
            "ours flash (model.o, M4)", "ONNX int8 file", ".tflite int8 file (LiteRT = TFLM)"]
    body = []
    for r in results:
        ours = r.ram["arena"] + r.ram["stack"]
        tflm = r.engines.get("tflm")
        ta = tflm.arena_bytes if tflm and tflm.arena_bytes else None
        body.append([r.preset, f"{_b(ours)} B ({_b(r.ram['arena'])} + {_b(r.ram['stack'])})",
                     _peer(r, "tflm", lambda e: f"{_b(e.arena_bytes)} B", short=True),
                     f"{ta / ours:.1f}×" if ta else "–", f"{_b(r.ram['flash'])} B",
                     _peer(r, "onnxrt", lambda e: f"{_b(e.size_bytes)} B"),
                     _peer(r, "litert", lambda e: f"{_b(e.size_bytes)} B")])
    return table(head, body)


def latency_table(results) -> str:
    head = ["preset", "ours (generated C) µs median / p90"] + [f"{LABELS[p]} µs median / p90" for p in PEERS] + \
           [f"{LABELS[p]} / ours (rounds min–max)" for p in PEERS]
    body = []
    for r in results:
        lat = r.latency

        def mp(k):
            return f"{lat[k]['median_us']:.1f} / {lat[k]['p90_us']:.1f}" if k in lat else "–"

        def ratio(p):
            x = r.ratio(p)
            return f"**{x[0]:.2f}×** ({x[1]:.2f}–{x[2]:.2f})" if x else "–"

        body.append([r.preset, mp("c")] + [_peer(r, p, lambda e, p=p: mp(p), short=True) for p in PEERS] +
                    [_peer(r, p, lambda e, p=p: ratio(p), short=True) for p in PEERS])
    return table(head, body)


def m4_table(results) -> str:
    head = ["preset", "tokens (median held-out)", "MACs", "M4 instructions / inference", "instructions / MAC",
            "MAC-bound cycles (MACs / 2, SMLAD)", "instructions / MAC-bound cycles"]
    body = []
    for r in results:
        m = r.m4
        if not m or "instructions" not in m:
            body.append([r.preset] + [m.get("status", "not measured") if m else "not measured"] + ["–"] * 5)
            continue
        body.append([r.preset, m["length"], f"{m['macs']:,}", f"{m['instructions']:,}", f"{m['instr_per_mac']:.2f}",
                     f"{m['mac_bound_cycles']:,.0f}", f"{m['instructions'] / m['mac_bound_cycles']:.1f}"])
    return table(head, body)


def headline_table(results) -> str:
    """The README's table: one row per preset, the numbers a user chooses by."""
    head = ["preset", "intent acc · slot F1 (ours, int8)", "best peer intent acc", "RAM ours / TFLM",
            "flash ours / .tflite", "host latency ours", "ORT / LiteRT / TFLM ÷ ours", "M4 instr/MAC"]
    body = []
    for r in results:
        m = r.engines["c"].metrics
        peers = [(r.engines[p].metrics["intent_accuracy"], LABELS[p].replace(" int8", ""))
                 for p in PEERS if p in r.engines and r.engines[p].status == "ok"]
        best = max(peers) if peers else None
        tflm, lit = r.engines.get("tflm"), r.engines.get("litert")
        ram = f"{_kb(r.ram['arena'] + r.ram['stack'])} / " + (
            _kb(tflm.arena_bytes) if tflm and tflm.status == "ok" else
            f"{_kb(tflm.arena_bytes)} (wrong output)" if tflm and tflm.arena_bytes else "cannot run")
        flash = f"{_kb(r.ram['flash'])} / " + (_kb(lit.size_bytes) if lit and lit.status == "ok" else "–")
        ratios = " / ".join((f"{x[0]:.1f}×" + ("" if r.engines[p].status == "ok" else " (wrong output)"))
                            if (x := r.ratio(p)) else "–" for p in PEERS)
        lat = r.latency.get("c")
        body.append([r.preset, f"{100 * m['intent_accuracy']:.2f}% · {100 * m['slot_f1']:.1f}%",
                     f"{100 * best[0]:.2f}% ({best[1]})" if best else "–", ram, flash,
                     f"{lat['median_us']:.0f} µs" if lat else "–", ratios,
                     f"{r.m4['instr_per_mac']:.2f}" if r.m4.get("instr_per_mac") else "–"])
    return table(head, body)


def markdown(results, *, command: str, machine: dict, versions: dict, runs: int, rounds: int,
             when: str | None = None, plots: dict | None = None) -> str:
    when = when or _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    notes = sorted({f"- {LABELS[n]}: {x}" for r in results for n, e in r.engines.items() if n in LABELS
                    for x in e.notes})
    parts = [
        "# SqueezeEdge against its peers",
        "",
        f"- date: {when}",
        f"- machine: `{machine['arch']}`, {machine['cpu']}, {machine['cores']} cores (python {machine['python']}); "
        "the cores were shared with other jobs",
        f"- command: `{command}`",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        "",
        "Every number below comes from this one run. Each peer is built from the same trained weights as our "
        "int8 model (its integers dequantized back into the float SqueezeBERT) and quantized by its own tool, "
        "calibrated on the same 200 training sentences. Peer outputs are decoded exactly like ours: their int8 "
        "logits are dequantized with the peer's output scale and zero point, requantized to our heads' scales "
        "(round, clip to int8) and passed to `models/decode.py` (intent, out-of-scope threshold, BIO Viterbi), "
        "so only the network differs. Every engine reads the same token ids: WordPiece, then the example home's "
        "names (`squeezeedge names example`, the home of the held-out sentences) as placeholder tokens, as a "
        "device told them does.",
        "",
        "## Summary",
        "",
        headline_table(results),
        "",
        "## Accuracy on the held-out test split",
        "",
        "Cells: intent accuracy · slot F1 · out-of-scope rejected, in percent.",
        "",
        accuracy_table(results),
        "",
        "- *float*: the float model's accuracy measured at training time (`info[\"metrics\"]` of the model file), "
        "with the decoder of that time; the other columns are measured now.",
        "- *generated C*: the TVM-generated C compiled for this host; *C = reference* compares every answer "
        "(intent, confidence, slots) with the integer reference interpreter.",
        "- *LiteRT* and *TFLite Micro* run the same `.tflite` file: a static 32-token graph (padded, padded "
        "keys masked) with **GELU exported as x·sigmoid(1.702x)** because TFLite Micro has no GELU kernel. "
        "ONNX Runtime keeps the exact GELU and runs each sentence at its true length.",
        f"- *wrong output*: a peer whose intents agree with our int8 reference on fewer than "
        f"{100 * MIN_AGREEMENT:.0f}% of the sentences computes a different function, not a slightly different "
        "quantization; its numbers are shown (and timed) but marked.",
        "",
        "## Memory",
        "",
        memory_table(results),
        "",
        "- *ours*: the Cortex-M4 build: the statically planned arena (`SE_MODEL_ARENA_BYTES`) plus the stack "
        "(`-fstack-usage`); flash is text + rodata of `model.o` (kernels and const weights) from "
        "`arm-none-eabi-size`.",
        "- *TFLite Micro arena*: the smallest `arena_size` with which its Python interpreter allocates and runs "
        "the model (bisection to 256 B). TFLite Micro also needs the interpreter and kernels in flash on top "
        "of the `.tflite` file (not measured here).",
        "",
        "## Host latency",
        "",
        latency_table(results),
        "",
        f"- One inference = one call with inputs already prepared, {runs} calls per engine cycling through "
        f"the same {TIMING_SENTENCES} held-out sentences (fewer in a quick run), in {rounds} rounds in which the engines take turns, all in one process, one thread "
        "each. Ours is the generated C through ctypes; ONNX Runtime and LiteRT are their Python APIs; TFLite "
        "Micro is its Python interpreter (reference kernels, as on a microcontroller).",
        "- Ratios: in each round, the peer's median divided by ours; the table gives the median over the rounds "
        "and, in parentheses, the lowest and highest round: the spread to expect from a rerun on a machine "
        "this busy.",
        "- Our kernels compute only the sentence's real tokens; ONNX Runtime does the same (dynamic length); "
        "the `.tflite` graph is static and always computes 32 tokens.",
        "",
        "## Cortex-M4",
        "",
        m4_table(results),
        "",
        "- Instructions executed by one `se_model_run` of the `--target cortex-m4` build (SMLAD intrinsic), "
        "counted with unicorn at the median held-out sentence length. The MAC-bound limit assumes the ideal "
        "of two int8 MACs per cycle (one SMLAD) and nothing else; instructions divided by it show how far "
        "the whole network (requantization, attention, LayerNorm, loads) is from that bound.",
        "",
    ]
    if plots:
        parts += ["## Plots", ""] + [f"![{k}]({Path(v).name})" for k, v in plots.items()] + [""]
    if notes:
        parts += ["## Peer notes", ""] + notes + [""]
    other = [f"- {r.preset}: {n}" for r in results for n in r.notes]
    other += [f"- {r.preset}: model {r.model_source}" for r in results]
    parts += ["## Notes", ""] + other + [""]
    return "\n".join(parts)


# ------------------------------------------------------------------ plots


def plot_all(results, out_dir: Path, default_preset: str = "small") -> dict:
    """Write the PNGs; returns {kind: path} of those written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.ticker
    import matplotlib.pyplot as plt
    import numpy as np

    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    names = [r.preset for r in results]
    x = np.arange(len(results))

    # latency ratio per preset
    fig, ax = plt.subplots(figsize=(7, 4))
    w = 0.8 / len(PEERS)
    for i, p in enumerate(PEERS):
        vals = [r.ratio(p) for r in results]
        wrong = [p in r.engines and r.engines[p].status != "ok" for r in results]
        h = [v[0] if v else 0 for v in vals]
        err = np.array([[max(v[0] - v[1], 0), max(v[2] - v[0], 0)] if v else [0, 0] for v in vals]).T
        bars = ax.bar(x + (i - (len(PEERS) - 1) / 2) * w, h, w, yerr=err, capsize=3, label=LABELS[p])
        for b, v, w_ in zip(bars, vals, wrong):
            text = "n/a" if not v else f"{v[0]:.1f}×" + ("*" if w_ else "")
            ax.annotate(text, (b.get_x() + b.get_width() / 2, max(b.get_height(), 1)),
                        ha="center", va="bottom", fontsize=8)
    if any(p in r.engines and r.engines[p].status not in ("ok",) and r.engines[p].metrics is not None
           for r in results for p in PEERS):
        ax.text(0.01, 0.01, "* wrong output (timed anyway)", transform=ax.transAxes, fontsize=7)
    ax.axhline(1, color="k", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(x, names)
    ax.set_ylabel("peer latency / ours (median, host)")
    ax.set_title("Host latency per inference relative to SqueezeEdge's C (>1: we are faster)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    written["latency"] = out_dir / PLOTS["latency"]
    fig.savefig(written["latency"], dpi=110)
    plt.close(fig)

    # RAM per preset
    fig, ax = plt.subplots(figsize=(6, 4))
    ours = [(r.ram["arena"] + r.ram["stack"]) / 1024 for r in results]
    tf = [(r.engines["tflm"].arena_bytes or 0) / 1024 if "tflm" in r.engines else 0 for r in results]
    tf_wrong = [r.engines["tflm"].status != "ok" and bool(r.engines["tflm"].arena_bytes) if "tflm" in r.engines
                else False for r in results]
    b1 = ax.bar(x - 0.2, ours, 0.4, label="SqueezeEdge (arena + stack)")
    b2 = ax.bar(x + 0.2, tf, 0.4, label="TFLite Micro arena")
    for bars, vals, wrong in ((b1, ours, [False] * len(ours)), (b2, tf, tf_wrong)):
        for b, v, w_ in zip(bars, vals, wrong):
            text = f"{v:.1f}" + ("\n(wrong output)" if w_ else "") if v else "cannot run"
            ax.annotate(text, (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylabel("RAM (KB)")
    ax.set_title("RAM for inference, int8")
    ax.legend(fontsize=8)
    fig.tight_layout()
    written["ram"] = out_dir / PLOTS["ram"]
    fig.savefig(written["ram"], dpi=110)
    plt.close(fig)

    # accuracy vs flash
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    series = [("c", "SqueezeEdge C (model.o, M4)", "o", lambda r: r.ram["flash"])]
    series += [(p, f"{LABELS[p]} (model file)", m, lambda r, p=p: r.engines[p].size_bytes)
               for p, m in zip(("onnxrt", "litert"), ("s", "^"))]
    for key, label, marker, size in series:
        pts = [(size(r) / 1024, 100 * r.engines[key].metrics["intent_accuracy"], r.preset) for r in results
               if key in r.engines and r.engines[key].status == "ok" and size(r)]
        if not pts:
            continue
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, ls="-" if key == "c" else ":", label=label)
        if key == "c":
            for px, py, name in pts:
                ax.annotate(name, (px, py), textcoords="offset points", xytext=(5, -12), fontsize=9)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("flash (KB, log scale)")
    ax.set_ylabel("intent accuracy on held-out test (%)")
    ax.set_title("Size / accuracy trade-off per preset")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    written["accuracy"] = out_dir / PLOTS["accuracy"]
    fig.savefig(written["accuracy"], dpi=110)
    plt.close(fig)

    # confusion matrix of the default model
    r = next((r for r in results if r.preset == default_preset and r.confusion), None)
    if r is not None:
        labels, m = r.confusion["labels"], np.array(r.confusion["matrix"], dtype=float)
        norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        fig, ax = plt.subplots(figsize=(11, 10))
        im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        ax.set_xlabel("answered")
        ax.set_ylabel("expected")
        ax.set_title(f"Intent confusion, {default_preset} (default) model, generated C, "
                     f"{r.n_sentences:,} held-out sentences (row-normalized)")
        fig.colorbar(im, ax=ax, fraction=0.03)
        fig.tight_layout()
        written["confusion"] = out_dir / PLOTS["confusion"]
        fig.savefig(written["confusion"], dpi=110)
        plt.close(fig)
    return written
