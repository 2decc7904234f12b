"""`squeezeedge make` (issue 13): sentence YAML → trained model → firmware, in one command, each
step skipped while its inputs are unchanged. The rv32 firmware it builds answers in QEMU like
the integer reference of the model it trained."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import TINY
from squeezeedge import boards
from squeezeedge.models.engine import ReferenceEngine
from squeezeedge.models.model_file import IntModel
from squeezeedge.pipeline import MODEL_FILE, STATE_FILE, PipelineError, TrainSettings, flash, make

import fw_support as fw
from test_sentences_spec import GOOD

OVEN = GOOD.replace("lists:", """\
  OvenOff:
    data:
      - sentences:
          - "turn [the] oven off"
          - "switch off the oven"
          - "(stop|end) (baking|cooking)"
          - "the oven can go off now"
lists:""")
SMALL = TrainSettings(config=TINY, epochs=3, samples_per_template=8)


def _steps(progress: list[str]) -> list[str]:
    return [line for line in progress if line.startswith("[")]


@pytest.mark.skipif(not boards.toolchain_available("rv32-virt") or not boards.qemu_available("rv32-virt"),
                    reason="needs riscv64-unknown-elf-gcc (+ picolibc) and qemu-system-riscv32")
def test_make_trains_builds_and_skips_what_did_not_change(tmp_path):
    spec = tmp_path / "oven.yaml"
    spec.write_text(OVEN)
    out = tmp_path / "oven"

    first = make([spec], "rv32-virt", out, SMALL, train_progress=False)
    assert first.ran == ["train", "build"] and first.model == out / MODEL_FILE
    elf = out / "rv32-virt" / "firmware.elf"
    assert elf in first.outputs and "ESP32-C3" in first.report
    model = IntModel.load(first.model)
    assert sorted(i for i in model.intents if i) == ["OvenOff", "OvenPreheat"]
    for device in fw.qemu_board_device(elf, "rv32-virt"):
        texts = ["preheat the oven to 180 degrees", "turn the oven off", "what is the weather", "ÖFEN?"]
        assert fw.mismatches(device, ReferenceEngine(model), texts) == []

    stamps = {p: p.stat().st_mtime_ns for p in (first.model, elf)}
    said: list[str] = []
    again = make([spec], "rv32-virt", out, SMALL, progress=said.append, train_progress=False)
    assert again.ran == [] and again.skipped == ["train", "build"]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again.report == first.report and again.outputs == first.outputs
    assert all("up to date" in line for line in _steps(said))

    other_target = make([spec], "host", out, SMALL, train_progress=False)
    assert other_target.ran == ["build"] and other_target.skipped == ["train"]
    emulator = other_target.outputs[0]
    r = subprocess.run([str(emulator), "--stdio"], input=b"switch off the oven\n", capture_output=True, timeout=60)
    reply = json.loads(r.stdout)
    want = ReferenceEngine(model).classify(b"switch off the oven")
    assert (reply["intent"], reply["slots"]) == (want.intent, want.slots)

    spec.write_text(OVEN.replace('"switch off the oven"', '"switch off the oven"\n          - "oven off"'))
    edited = make([spec], "host", out, SMALL, train_progress=False)
    assert edited.ran == ["train", "build"]
    assert json.loads((out / STATE_FILE).read_text())["build"]["outputs"] == ["host/squeezeedge-emulator"]


def test_make_refuses_a_bad_spec_before_it_writes_anything(tmp_path):
    from squeezeedge.models.sentence_spec import SpecError

    spec = tmp_path / "oven.yaml"
    spec.write_text(OVEN.replace("{temperature} [degrees]\"\n", "{heat} [degrees]\"\n", 1))
    with pytest.raises(SpecError, match=r"oven.yaml:6: unknown list \{heat\}"):
        make([spec], "host", tmp_path / "out", SMALL)
    assert not (tmp_path / "out").exists()
    with pytest.raises(PipelineError, match="unknown target 'esp8266'"):
        make([spec], "esp8266", tmp_path / "out", SMALL)


def test_the_command_line_says_what_it_did_and_what_cannot_be_flashed(tmp_path):
    spec = tmp_path / "oven.yaml"
    spec.write_text(OVEN)
    cmd = [sys.executable, "-m", "squeezeedge", "make", "--sentences", str(spec), "--board", "host", "--preset", "tiny",
           "--epochs", "1", "--samples-per-template", "4", "--quiet", "-o", str(tmp_path / "oven")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert "make: [1/2] train: saved" in r.stderr and "held-out test: intent acc" in r.stderr
    assert "squeezeedge emulate --model" in r.stdout
    r = subprocess.run(cmd + ["--flash"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "up to date" in r.stderr
    assert "host is not a board to flash: run it on this machine with squeezeedge emulate --model" in r.stderr


def test_flashing_an_emulator_target_is_refused(tmp_path):
    from squeezeedge.pipeline import MakeResult

    result = MakeResult(tmp_path / MODEL_FILE, [])
    with pytest.raises(PipelineError, match="rv32-virt is not a board to flash: .*emulate --board rv32-virt"):
        flash(result, "rv32-virt", None)
