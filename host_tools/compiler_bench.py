"""Measurements behind ``squeezeedge bench``: sizes, MACs, Cortex-M4 executed instructions,
host latency of the generated C and of ONNX Runtime int8 on the same model.

Everything here is a plain function returning numbers; ``host_tools/bench.py`` prints them and
writes ``benchmarks/COMPILER.md``. Nothing here asserts a timing.
"""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .models.model_file import IntModel
from .compiler.package import compile_model, macs
from .compiler.targets import TARGETS, target_cflags

M4_MHZ = 168
# Assumption, not a measurement: Cortex-M4 executes most instructions in one cycle, loads take
# two and flash wait states (5 at 168 MHz on an STM32F4, partly hidden by the ART accelerator)
# add stalls. 1.3 cycles per instruction is a typical figure for this kind of integer code.
M4_CPI = 1.3
SIZE_TOOL = {"cortex-m4": "arm-none-eabi-size", "rv32imc": "riscv64-unknown-elf-size",
             "xtensa": "xtensa-lx106-elf-size"}


@dataclass
class TargetSizes:
    target: str
    arena_bytes: int
    stack_bytes: int
    stack_method: str
    flash_bytes: int | None  # text + rodata of the compiled model object (None: no cross tools)
    compile_seconds: float


@dataclass
class Result:
    name: str
    config: dict
    n_intents: int
    n_tags: int
    weight_bytes: int
    macs: dict[int, int]
    targets: list[TargetSizes] = field(default_factory=list)
    instr: dict[str, dict[int, int]] = field(default_factory=dict)  # "portable"/"smlad" -> length -> count
    kernel_instr: dict[str, dict[str, int]] = field(default_factory=dict)  # variant -> kernel -> count @max
    kernel_macs: dict[str, int] = field(default_factory=dict)  # kernel -> MACs @max
    host: dict[int, tuple[float, float]] = field(default_factory=dict)  # length -> (median us, p90 us)
    ort: dict[int, tuple[float, float]] | str = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def instr_per_mac(self, variant: str, length: int) -> float | None:
        n = self.instr.get(variant, {}).get(length)
        return n / self.macs[length] if n else None

    def est_ms(self, variant: str, length: int) -> float | None:
        n = self.instr.get(variant, {}).get(length)
        return n * M4_CPI / (M4_MHZ * 1e3) if n else None


def object_flash_bytes(package_dir: Path, target: str) -> int | None:
    """text + rodata of model.o compiled for ``target`` (data is empty: all weights are const)."""
    cc, size = TARGETS[target]["cc"], SIZE_TOOL.get(target)
    if shutil.which(cc) is None or size is None or shutil.which(size) is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        obj = Path(d) / "model.o"
        r = subprocess.run([cc, *target_cflags(target), "-ffunction-sections", "-fdata-sections", "-I",
                            str(package_dir), "-c", str(package_dir / "model.c"), "-o", str(obj)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{cc} failed on {package_dir}/model.c:\n{r.stderr[-2000:]}")
        out = subprocess.run([size, "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    total = 0
    for line in out.splitlines():
        m = re.match(r"^(\.\S+)\s+(\d+)\s+\d+", line)
        if m and (m.group(1).startswith(".text") or m.group(1).startswith(".rodata")
                  or m.group(1).startswith(".srodata") or m.group(1).startswith(".literal")):
            total += int(m.group(2))
    return total


def kernel_macs(info: dict, length: int) -> dict[str, int]:
    """MACs of one inference per C kernel symbol (summed over its calls)."""
    c = info["config"]
    H, F, G, L = c["hidden"], c["ffn"], c["groups"], length
    per_call = {"qkv": L * 3 * H * (H // G), "attention": 2 * L * L * H, "proj_ln": L * H * H,
                "ffn_ln": L * F * (H // G) + L * H * (F // G), "head_intent": H * info["n_intents"],
                "head_slot": L * H * info["n_tags"], "embed_ln": 0}
    out = {}
    for k in info["kernels"]:
        base = re.sub(r"\d+$", "", k["prim_func"])
        out[k["name"]] = per_call.get(base, 0) * k["calls"]
    return out


def count_m4(package_dir: Path, lengths, vocab: int, seed: int = 0, per_kernel: bool = False):
    """Executed Cortex-M4 instructions of one inference per length (unicorn); optionally the
    per-kernel split at the longest length (kernels compiled noinline for attribution)."""
    from . import icount

    rng = np.random.default_rng(seed)
    ids = {n: rng.integers(4, vocab, n).tolist() for n in lengths}
    with tempfile.TemporaryDirectory() as d:
        elf = icount.build_image(package_dir, Path(d))
        counts = {n: icount.count_instructions(elf, ids[n])[0] for n in lengths}
        split = {}
        if per_kernel:
            elf2 = icount.build_image(package_dir, Path(d) / "noinline", ["-fno-inline-functions-called-once",
                                                                         "-fno-inline-small-functions"])
            split = icount.count_per_function(elf2, ids[max(lengths)])
    return counts, split


def time_c(package_dir: Path, lengths, vocab: int, runs: int, seed: int = 0) -> dict[int, tuple[float, float]]:
    """Median and p90 microseconds of one se_model_run call on the host (ctypes, gcc -O2)."""
    from .compiler.host_engine import CEngine

    eng = CEngine(package_dir)
    fn = eng._fn
    rng = np.random.default_rng(seed)
    out = {}
    for n in lengths:
        ids = (ctypes.c_int32 * n)(*rng.integers(4, vocab, n).tolist())
        for _ in range(min(50, runs)):
            fn(ids, n, eng._intent, eng._slots, eng._arena)
        t = np.empty(runs)
        for i in range(runs):
            t0 = time.perf_counter_ns()
            fn(ids, n, eng._intent, eng._slots, eng._arena)
            t[i] = time.perf_counter_ns() - t0
        out[n] = (float(np.median(t)) / 1e3, float(np.percentile(t, 90)) / 1e3)
    return out


# ------------------------------------------------------------------ ONNX Runtime comparison

def float_model_from_int(model: IntModel):
    """The int8 model dequantized into the float ``SqueezeBert``: w = w_q * s_w with
    s_w = m / 2**n * s_out / s_in (scales from ``model.info['scales']``), biases
    (b_q + z_in * sum(w_q)) * s_in * s_w (the GELU output's zero point, folded into the next
    bias by ``quantize_linear``, is unfolded again), LayerNorm gamma/beta from their
    fixed-point forms. The peers of ``squeezeedge bench`` start from this network, so it
    carries the same trained weights as the int8 model (up to int8 rounding)."""
    import torch

    from .models import intmath as im
    from .models.architecture import SqueezeBert

    cfg, a = model.config, model.arrays
    sc = model.info.get("scales")
    if not sc:
        raise ValueError("model has no quantization scales (info['scales'])")
    net = SqueezeBert(cfg, len(model.intents), len(model.tags), dropout=0.0).eval()

    def lin(dst, name, s_in, s_out, z_in=0):
        wq = a[f"{name}.w"].astype(np.float64)
        s_w = a[f"{name}.m"].astype(np.float64) / np.exp2(a[f"{name}.n"].astype(np.float64)) * s_out / s_in
        w = wq * s_w[:, None]
        b = (a[f"{name}.b"].astype(np.float64) + z_in * wq.sum(axis=1)) * s_in * s_w
        with torch.no_grad():
            dst.weight.copy_(torch.tensor(w, dtype=torch.float32).reshape(dst.weight.shape))
            dst.bias.copy_(torch.tensor(b, dtype=torch.float32))

    def ln(dst, name, s_out):
        g = a[f"{name}.g"].astype(np.float64) * s_out / 2 ** (im.LN_OUT_BITS - im.LN_Y_BITS)
        b = a[f"{name}.b"].astype(np.float64) * s_out / 2 ** im.LN_OUT_BITS
        with torch.no_grad():
            dst.weight.copy_(torch.tensor(g, dtype=torch.float32))
            dst.bias.copy_(torch.tensor(b, dtype=torch.float32))

    with torch.no_grad():
        net.token.weight.copy_(torch.tensor(a["embed.token"] * sc["embed.token"], dtype=torch.float32))
        net.position.weight.copy_(torch.tensor(a["embed.position"] * sc["embed.position"], dtype=torch.float32))
    s_x = sc["embed.ln"]
    ln(net.ln, "embed.ln", s_x)
    for i, layer in enumerate(net.layers):
        p = f"layer{i}"
        for part in "qkv":
            lin(getattr(layer, part), f"{p}.{part}", s_x, sc[f"{p}.{part}"])
        lin(layer.o, f"{p}.o", sc[f"{p}.ctx"], sc[f"{p}.o"])
        ln(layer.ln1, f"{p}.ln1", sc[f"{p}.ln1"])
        lin(layer.ffn1, f"{p}.ffn1", sc[f"{p}.ln1"], sc[f"{p}.ffn1"])
        lin(layer.ffn2, f"{p}.ffn2", sc[f"{p}.gelu"], sc[f"{p}.ffn2"], sc.get(f"{p}.gelu.zero_point", 0))
        ln(layer.ln2, f"{p}.ln2", sc[f"{p}.ln2"])
        s_x = sc[f"{p}.ln2"]
    lin(net.intent, "head.intent", s_x, sc["head.intent"])
    lin(net.slot, "head.slot", s_x, sc["head.slot"])
    return net


def ort_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def build_ort_int8(model: IntModel, work: Path, seed: int = 0, calibration: list[list[int]] | None = None) -> Path:
    """float SqueezeBert → ONNX (torch.onnx.export, dynamic length) → static int8 QDQ with
    per-channel weights (onnxruntime.quantization.quantize_static), calibrated on
    ``calibration`` (token id lists of real sentences) or, without it, 16 random id strings
    (enough for timing, not for accuracy)."""
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    net = float_model_from_int(model)
    cfg = model.config
    f32 = work / "model_f32.onnx"
    ids = torch.randint(4, cfg.vocab_size, (1, cfg.max_len))
    lengths = torch.tensor([cfg.max_len])
    torch.onnx.export(net, (ids, lengths), str(f32), input_names=["ids", "lengths"],
                      output_names=["intent", "slots"], dynamic_axes={"ids": {1: "t"}, "slots": {1: "t"}},
                      opset_version=17, dynamo=False)
    rng = np.random.default_rng(seed)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = []
            for ids in calibration or []:
                self.items.append({"ids": np.asarray([ids], dtype=np.int64),
                                   "lengths": np.array([len(ids)], dtype=np.int64)})
            for _ in range(0 if calibration else 16):
                n = int(rng.integers(2, cfg.max_len + 1))
                self.items.append({"ids": rng.integers(4, cfg.vocab_size, (1, n)).astype(np.int64),
                                   "lengths": np.array([n], dtype=np.int64)})
            self.it = iter(self.items)

        def get_next(self):
            return next(self.it, None)

    q8 = work / "model_int8.onnx"
    quantize_static(str(f32), str(q8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return q8


def time_ort(onnx_path: Path, lengths, vocab: int, runs: int, seed: int = 0) -> dict[int, tuple[float, float]]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    out = {}
    for n in lengths:
        feed = {"ids": rng.integers(4, vocab, (1, n)).astype(np.int64), "lengths": np.array([n], dtype=np.int64)}
        for _ in range(min(50, runs)):
            sess.run(None, feed)
        t = np.empty(runs)
        for i in range(runs):
            t0 = time.perf_counter_ns()
            sess.run(None, feed)
            t[i] = time.perf_counter_ns() - t0
        out[n] = (float(np.median(t)) / 1e3, float(np.percentile(t, 90)) / 1e3)
    return out


# ------------------------------------------------------------------ one model, all numbers

def bench_model(name: str, model: IntModel, *, targets=("cortex-m4", "rv32imc"), lengths=(8, 32),
                runs: int = 2000, with_ort: bool = True, icount: bool = True, per_kernel: bool = False,
                progress=None) -> Result:
    say = progress or (lambda s: None)
    cfg = model.config
    lengths = tuple(n for n in lengths if n <= cfg.max_len)
    n_int, n_tags = len(model.intents), len(model.tags)
    res = Result(name=name, config=cfg.to_dict(), n_intents=n_int, n_tags=n_tags,
                 weight_bytes=int(model.weight_bytes()), macs={n: macs(cfg, n_int, n_tags, n) for n in lengths})
    with tempfile.TemporaryDirectory(prefix="se-bench-") as d:
        root = Path(d)
        for target in targets:
            say(f"{name}: compiling for {target}")
            pkg = compile_model(model, target)
            pdir = pkg.write(root / target)
            i = pkg.info
            # What `squeezeedge compile` prints: the const arrays of model.c (the same for every
            # target). The model file's arrays are a few bytes more: its scalars (requantization
            # multiplier/shift pairs, residual multipliers) become immediates in the kernels' code.
            res.weight_bytes = int(i["weight_bytes"])
            res.targets.append(TargetSizes(target, i["arena_bytes"], i["stack_bytes"], i["stack_bytes_method"],
                                           object_flash_bytes(pdir, target), pkg.timings["total"]))
        have_arm = shutil.which("arm-none-eabi-gcc") is not None
        if icount and have_arm:
            try:
                import unicorn  # noqa: F401
            except ImportError:
                have_arm = False
                res.notes.append("unicorn not installed: no instruction counts")
        if icount and have_arm:
            for variant, intr in (("portable", False), ("smlad", True)):
                say(f"{name}: counting Cortex-M4 instructions ({variant})")
                pdir = compile_model(model, "cortex-m4", intrinsics=intr, measure=False).write(root / f"m4-{variant}")
                res.instr[variant], split = count_m4(pdir, lengths, cfg.vocab_size, per_kernel=per_kernel)
                if split:
                    res.kernel_instr[variant] = split
                    res.kernel_macs = kernel_macs(json.loads((pdir / "model.json").read_text()), max(lengths))
        say(f"{name}: host latency of the generated C ({runs} runs per length)")
        hdir = compile_model(model, "host", measure=False).write(root / "host")
        res.host = time_c(hdir, lengths, cfg.vocab_size, runs)
        if with_ort and ort_available():
            if not model.info.get("scales"):
                res.ort = "no scales in the model file"
            else:
                say(f"{name}: ONNX Runtime int8 (export, quantize_static, {runs} runs per length)")
                try:
                    q8 = build_ort_int8(model, root)
                    res.ort = time_ort(q8, lengths, cfg.vocab_size, runs)
                except Exception as e:  # noqa: BLE001 - report, don't die: the rest is still useful
                    res.ort = f"failed: {type(e).__name__}: {str(e).strip().splitlines()[-1][:120]}"
        elif with_ort:
            res.ort = "not installed (pip install .[bench])"
        else:
            res.ort = "skipped"
    return res
