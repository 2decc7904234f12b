"""``squeezeedge bench`` (against the peers; ``--compiler``: the compiler report; ``--micropython``:
the MicroPython report) and ``squeezeedge bench-e2e`` (latency and throughput over serial and MQTT)."""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path

from .. import startup_bench
from ..bench import (BENCH_DIR, DEFAULT_OUT, RESULTS_OUT, text_table, machine, markdown, rows, run as compiler_report,
                     run_peers as bench_peers, write_results)
from ..e2e_bench import DEFAULT_OUT as E2E_OUT, format_table, run as run_e2e_bench
from ..micropython.bench import DEFAULT_OUT as MPY_OUT, run as run_micropython
from ..micropython.source import MicroPythonError
from ..resources import BENCH_DIR_RULE
from ..peers import report


def add_parser(subparsers) -> None:
    add_bench_parser(subparsers)
    add_e2e_parser(subparsers)


def add_bench_parser(subparsers) -> None:
    b = subparsers.add_parser(
        "bench", help="benchmark against ONNX Runtime, LiteRT and TFLite Micro: accuracy, memory, latency, M4",
        description="Per preset, build the peers' int8 models from the same trained weights and measure accuracy "
                    "on the held-out test split (float, int8 reference, generated C, each peer), RAM and flash "
                    "(ours vs TFLite Micro's smallest arena), host latency (median/p90, ratios) and Cortex-M4 "
                    "instructions; writes benchmarks/RESULTS.md and PNG plots. Needs pip install '.[bench]' for "
                    "the peers. With --compiler: the compiler report (random weights) in benchmarks/COMPILER.md.")
    b.add_argument("--presets", default="tiny,small,base",
                   help="comma-separated presets (default: tiny,small,base); --compiler also takes 'shipped'")
    b.add_argument("--peers", default="onnxrt,litert,tflm",
                   help="comma-separated peers: onnxrt, litert, tflm, or 'none' (default: all)")
    b.add_argument("--sentences", type=int, default=None, metavar="N",
                   help="score N held-out sentences spread over the test split (default: all; --quick: 40)")
    b.add_argument("--quick", action="store_true",
                   help="few sentences and runs, no Cortex-M4 count (a smoke run, not a measurement)")
    b.add_argument("--runs", type=int, default=None,
                   help="timed calls per engine (default 2000, --quick 50; --compiler: per length, 2000/200)")
    b.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default 5)")
    b.add_argument("--no-train", action="store_true",
                   help="fail instead of training a preset that is neither shipped nor cached")
    b.add_argument("--no-m4", action="store_true", help="skip the Cortex-M4 instruction count")
    b.add_argument("--compiler", action="store_true",
                   help="the compiler report instead (random weights, all targets): benchmarks/COMPILER.md")
    b.add_argument("--micropython", action="store_true",
                   help="the MicroPython report instead: per arch the native module's sizes, the heap `import "
                        "squeezeedge` takes and instructions per command on QEMU boards, beside the C firmware: "
                        "benchmarks/MICROPYTHON.md")
    b.add_argument("--startup", action="store_true",
                   help="how long `squeezeedge` takes to start (--help, send, mqtt send, classify): median of --runs "
                        "new processes each (default 7), beside the bare interpreter: benchmarks/STARTUP.md")
    b.add_argument("--no-shipped", action="store_true", help="--compiler: skip the shipped model")
    b.add_argument("--no-ort", action="store_true", help="--compiler: skip ONNX Runtime")
    b.add_argument("-o", "--output", default=None, metavar="PATH",
                   help=f"markdown report (default: {RESULTS_OUT}, plots beside it; --compiler: {DEFAULT_OUT}; "
                        f"--micropython: MICROPYTHON.md; --startup: STARTUP.md; all in {BENCH_DIR_RULE}); '-' for none")
    b.set_defaults(func=run)


def run(args) -> int:
    if args.startup:
        return run_startup(args)
    if args.micropython:
        out = None if args.output == "-" else Path(args.output or MPY_OUT)
        try:
            print(run_micropython(out, progress=lambda s: print(f"[bench] {s} ...", file=sys.stderr, flush=True)))
        except MicroPythonError as e:
            print(f"squeezeedge: error: {e}", file=sys.stderr)
            return 2
        return 0
    if not args.compiler:
        return run_peers(args)
    args.output = args.output or str(DEFAULT_OUT)
    presets = [p.strip() for p in args.presets.split(",") if p.strip() and p.strip() not in ("none", "shipped")]
    say = lambda s: print(f"[bench] {s} ...", file=sys.stderr, flush=True)  # noqa: E731
    try:
        results, runs = compiler_report(presets, shipped=not args.no_shipped, quick=args.quick, runs=args.runs,
                            with_ort=not args.no_ort, progress=say)
    except ValueError as e:
        print(f"squeezeedge: error: {e}", file=sys.stderr)
        return 2
    head, body, thead, tbody = rows(results)
    print(text_table(head, body))
    print()
    print(text_table(thead, tbody))
    if args.output != "-":
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        command = "squeezeedge bench " + " ".join(sys.argv[2:]) if len(sys.argv) > 1 else "squeezeedge bench"
        out.write_text(markdown(results, command.strip(), runs))
        print(f"\nwrote {out}")
    return 0


def run_peers(args) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import torch

    torch.set_num_threads(1)
    presets = [p.strip() for p in args.presets.split(",") if p.strip() and p.strip() != "none"]
    peers = [p.strip() for p in args.peers.split(",") if p.strip() and p.strip() != "none"]
    runs = args.runs or (50 if args.quick else 2000)
    sentences = args.sentences or (40 if args.quick else None)
    say = lambda s: print(f"[bench] {s} ...", file=sys.stderr, flush=True)  # noqa: E731
    try:
        results = bench_peers(presets, peers, sentences=sentences, runs=runs, rounds=args.rounds,
                            train=not args.no_train, with_m4=not (args.no_m4 or args.quick), progress=say)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"squeezeedge: error: {e}", file=sys.stderr)
        return 2
    print(report.headline_table(results))
    if args.output != "-":
        out = Path(args.output or RESULTS_OUT)
        command = ("squeezeedge bench " + " ".join(sys.argv[2:])).strip() if len(sys.argv) > 1 else "squeezeedge bench"
        plots = write_results(results, out, command, runs, args.rounds)
        print(f"\nwrote {out}" + "".join(f", {p}" for p in plots.values()))
    return 0


def add_e2e_parser(subparsers) -> None:
    b = subparsers.add_parser(
        "bench-e2e", help="end-to-end latency and throughput over serial and MQTT (host emulator)",
        description="Start the host emulator of the shipped model, send held-out test sentences over a serial "
                    "line (TCP socket) and over MQTT (in-process amqtt broker): latency p50/p99 one request at a "
                    "time, then commands per second with N requests in flight, counting lost and duplicated "
                    "answers. Prints a table and writes benchmarks/E2E.md.")
    b.add_argument("-n", "--requests", type=int, default=1000, help="sentences per path (default: 1000)")
    b.add_argument("--in-flight", type=int, default=100, help="requests outstanding at once (default: 100)")
    b.add_argument("--model", metavar="PATH", help="int8 model file (default: the shipped model)")
    b.add_argument("-o", "--output", default=str(E2E_OUT), metavar="PATH",
                   help=f"markdown report (default: %(default)s, in {BENCH_DIR_RULE}); '-' for none")
    b.set_defaults(func=run_e2e)


def run_e2e(args) -> int:
    from ..models.dataset import build_dataset

    texts = [ex.text for ex in build_dataset(seed=0).test][: args.requests]
    table = format_table(run_e2e_bench(texts, args.in_flight, model=args.model))
    print(table)
    if args.output != "-":
        m = machine()
        report = (f"# End-to-end benchmark\n\n{datetime.date.today()}, {m['arch']} {m['cpu']}, {m['cores']} cores, "
                  f"command `squeezeedge bench-e2e -n {args.requests} --in-flight {args.in_flight}`. The host "
                  "emulator runs the same C as the boards; latency is one request at a time, round trip through "
                  "the transport; throughput keeps N requests outstanding.\n\n" + table + "\n")
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(report)
    return 0


def run_startup(args) -> int:
    runs = args.runs or 7
    results = startup_bench.measure(runs, progress=lambda s: print(f"[bench] {s}", file=sys.stderr, flush=True))
    print(startup_bench.table(results))
    if args.output != "-":
        out = Path(args.output or BENCH_DIR / "STARTUP.md")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(startup_bench.report(results, machine(), runs))
        print(f"\nwrote {out}")
    return 1 if any(r.median >= startup_bench.BUDGET_SECONDS for r in results[1:]) else 0
