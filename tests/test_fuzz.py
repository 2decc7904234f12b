"""libFuzzer on the firmware core (firmware/fuzz/): the line protocol, the JSON parser and the
names table, built with clang -fsanitize=fuzzer,address,undefined at the STM32 port's buffer
sizes, each run for FUZZ_SECONDS (default 20) from the seed corpus in the repository. Any crash,
sanitizer report or broken invariant (the harness aborts) fails the test with libFuzzer's report.
Longer: `make fuzz FUZZ_SECONDS=600`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

FUZZ_DIR = Path(__file__).resolve().parents[1] / "firmware" / "fuzz"
SECONDS = int(os.environ.get("FUZZ_SECONDS", "20"))
HARNESSES = ["fuzz_protocol", "fuzz_json", "fuzz_names"]


@pytest.fixture(scope="module")
def fuzzers(tmp_path_factory) -> Path:
    assert shutil.which("clang"), "clang is missing (libFuzzer harnesses): apt-get install -y clang"
    from squeezeedge.emulator import default_model_path, prepare_package

    build = tmp_path_factory.mktemp("fuzz-build")
    r = subprocess.run(["make", "-s", "-C", str(FUZZ_DIR), f"MODEL_DIR={prepare_package(default_model_path())}",
                        f"BUILD_DIR={build}"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"building the fuzzers failed:\n{r.stdout}{r.stderr}"
    return build


@pytest.mark.parametrize("harness", HARNESSES)
def test_fuzzer_finds_nothing(fuzzers, harness, tmp_path, capsys):
    seeds = FUZZ_DIR / "corpus" / harness
    assert len(list(seeds.iterdir())) >= 10, f"{seeds}: the seed corpus is missing"
    work = tmp_path / "corpus"  # new inputs go here, the repository's seeds stay as they are
    work.mkdir()
    r = subprocess.run([str(fuzzers / harness), f"-max_total_time={SECONDS}", "-max_len=2048", "-timeout=10",
                        "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/", str(work), str(seeds)],
                       capture_output=True, text=True, timeout=SECONDS * 3 + 300)
    done = re.search(r"Done (\d+) runs in (\d+) second", r.stderr)
    with capsys.disabled():
        print(f"\n{harness}: {done.group(1) if done else '?'} executions in {done.group(2) if done else '?'} s "
              f"(max_total_time {SECONDS} s), corpus {len(list(work.iterdir()))} new inputs")
    artifacts = [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "leak-", "timeout-", "oom-"))]
    assert r.returncode == 0 and done and not artifacts, \
        f"{harness} found a problem (reproduce: {fuzzers / harness} {' '.join(str(tmp_path / a) for a in artifacts)}" \
        f"; fix the core, then add the input to {seeds}):\n{r.stderr[-6000:]}"
