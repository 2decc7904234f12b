"""Shared fixtures: models small enough to build in seconds, real enough to mean something."""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from squeezeedge.models.config import ModelConfig

# `make test` (what CI runs) sets this, and CI=true means it too: there, a test that skips is a
# test that did not run, and the suite must not pass without it. Its reason (a missing tool)
# becomes the failure's message.
NO_SKIPS = os.environ.get("SQUEEZEEDGE_NO_SKIPS") == "1" or os.environ.get("CI") == "true"

# The areas the summary counts tests in, by the test file's name (test_<word>...).
AREAS = {
    "model and data": ("dataset", "training", "tokenizer", "decode", "gazetteer", "intmath", "eval", "slot",
                       "sentences", "languages"),
    "compiler": ("compiler",),
    "firmware: host emulator and core": ("emulator", "firmware", "names", "fuzz", "device"),
    "boards in QEMU": ("stm32", "rv32", "xtensa", "systick", "board"),
    "flashing": ("flash",),
    "MQTT and bridge": ("mqtt", "bridge", "timeouts"),
    "MicroPython": ("micropython",),
    "command line, packaging, docs": ("classify", "demo", "docs", "setup", "layers", "wheel", "resources"),
    "benchmarks and peers": ("bench", "peers"),
}


def _fail_skipped(report) -> None:
    if NO_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (f"{reason}\n(skipped, and make test runs every test: install what is missing, "
                           "e.g. with `make setup` as root)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    _fail_skipped((yield).get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):  # a module-level importorskip skips a whole file
    _fail_skipped((yield).get_result())

def area(path: str) -> str:
    word = Path(path).stem.removeprefix("test_").split("_")[0]
    return next((name for name, words in AREAS.items() if word in words), "other")


def pytest_terminal_summary(terminalreporter):
    """Tests per area and outcome, so a CI log shows at a glance that every area ran."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") in ("call", "setup", "collect") and hasattr(report, "nodeid"):
                if outcome == "passed" and report.when != "call":
                    continue
                counts[area(report.nodeid.split("::")[0])][outcome] += 1
    if not counts:
        return
    terminalreporter.write_sep("=", "tests per area")
    for name in [*AREAS, "other"]:
        if counts.get(name):
            c = counts[name]
            terminalreporter.write_line(f"{name:<36} " + ", ".join(f"{c[o]} {o}" for o in
                                                                   ("passed", "failed", "skipped", "error") if c[o]))


TINY = ModelConfig(vocab_size=256, max_len=16, hidden=32, layers=1, heads=2, ffn=64, groups=4)


@pytest.fixture(scope="session")
def tiny_dataset():
    from squeezeedge.models.dataset import build_dataset

    return build_dataset(seed=0, samples_per_template=3)


@pytest.fixture(scope="session")
def tiny_training(tiny_dataset):
    """A real (if short) run of the whole training pipeline on the real data."""
    from squeezeedge.models.train import TrainOptions, run_training

    return run_training(tiny_dataset, TrainOptions(config=TINY, epochs=10, progress=False))


@pytest.fixture(scope="session")
def tiny_model_path(tiny_training, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.semodel"
    tiny_training.model.save(path)
    return path
