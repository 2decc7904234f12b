"""Targets the package is built for: the same C, different compilers and flags."""

from __future__ import annotations

TARGETS = {
    "host": {"cc": "gcc", "cflags": ["-O2", "-std=c99"]},
    "cortex-m4": {"cc": "arm-none-eabi-gcc",
                  "cflags": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-O2", "-std=c99"]},
    "rv32imc": {"cc": "riscv64-unknown-elf-gcc", "cflags": ["-march=rv32imc", "-mabi=ilp32", "-O2", "-std=c99"]},
    "xtensa": {"cc": "xtensa-lx106-elf-gcc", "cflags": ["-mlongcalls", "-O2", "-std=c99"]},
}


def target_cflags(target: str) -> list[str]:
    """Flags to compile model.c for ``target`` (freestanding: only stdint.h is needed)."""
    t = TARGETS[target]
    extra = ["--specs=picolibc.specs"] if target == "rv32imc" else []
    return [*t["cflags"], *extra, "-ffreestanding" if target == "xtensa" else "-fno-common"]


def measure_stack(model_c: str, model_h: str, target: str) -> int | None:
    """Stack of one se_model_run call, from ``-fstack-usage`` of the target compiler: the entry's
    frame plus the largest kernel frame (kernels call nothing). None if the compiler is absent."""
    import re
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    cc = TARGETS[target]["cc"]
    if shutil.which(cc) is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        p = Path(d)
        (p / "model.c").write_text(model_c)
        (p / "model.h").write_text(model_h)
        r = subprocess.run([cc, *target_cflags(target), "-fstack-usage", "-c", "model.c", "-o", "model.o"],
                           cwd=d, capture_output=True, text=True)
        if r.returncode != 0 or not (p / "model.su").exists():
            return None
        frames = {}
        for line in (p / "model.su").read_text().splitlines():
            m = re.match(r"^.*:\d+:\d+:([\w.]+)\t(\d+)\t", line)
            if m:
                frames[m.group(1)] = int(m.group(2))
    entry = frames.pop("se_model_run", 0)
    return entry + max(frames.values(), default=0)
