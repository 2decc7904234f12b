"""The whole firmware (core + model package + firmware/ports/xtensa_sim) built with
xtensa-lx106-elf-gcc for the ESP8266's LX106 core and run under qemu-system-xtensa -M sim: it
links inside the ESP8266's memory, answers held-out sentences exactly like the integer reference
over QEMU's stdin/stdout (simcall semihosting), survives garbage, and answers a half line left
at end of input before it exits. Needs gcc-xtensa-lx106 and qemu-system-misc; skipped otherwise."""

from __future__ import annotations

import json
import random
import subprocess

import pytest

from squeezeedge import xtensa_sim

import fw_support as fw

pytestmark = pytest.mark.skipif(not xtensa_sim.toolchain_available() or not xtensa_sim.qemu_available(),
                                reason="needs xtensa-lx106-elf-gcc (gcc-xtensa-lx106) and qemu-system-xtensa")

N_SENTENCES = 60


@pytest.fixture(scope="module")
def firmware():
    return xtensa_sim.build_firmware()


@pytest.fixture(scope="module")
def device(firmware):
    with xtensa_sim.start_sim(firmware.elf) as sim:
        yield sim.engine(timeout=15.0)


@pytest.fixture(scope="module")
def reference():
    return fw.shipped_reference()


def test_it_links_for_the_lx106_within_the_esp8266_memory(firmware):
    s = firmware.size
    assert firmware.elf.is_file()
    header = firmware.elf.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 94  # EM_XTENSA
    assert s.text >= s.sections[".text"] + s.sections[".rodata"] > 0
    assert s.sections[".rodata"] > 100_000  # the model's weights are const: in flash, not RAM
    assert s.ram == s.data + s.bss + s.STACK_RESERVE <= s.DRAM_BYTES, s.report()
    assert "flash" in s.report() and "RAM" in s.report()
    # the model package was compiled for the xtensa target, not taken from the host build
    assert json.loads((firmware.package / "model.json").read_text())["target"] == "xtensa"


def test_held_out_sentences_match_the_reference(device, reference):
    texts = fw.held_out_test_sentences(N_SENTENCES)
    assert len(texts) >= 50
    assert device.info()["device"] == "xtensa-lx106-sim"
    bad = fw.mismatches(device, reference, texts)
    assert not bad, bad[:3]


def test_a_garbage_line_gets_an_error_and_the_next_line_is_answered(device):
    t = device.transport
    t.drain()
    t.write_line(b"\xff\xfe\xc3( garbage")
    assert json.loads(t.read_line(10.0))["code"] == "invalid_utf8"
    assert t.request({"text": "turn off the kitchen lights"})["intent"] == "HassTurnOff"
    t.write_line(b"y" * 5000)  # longer than the port's 1024-byte line buffer
    reply = json.loads(t.read_line(10.0))
    assert reply["code"] == "too_long" and "5000 bytes" in reply["error"]
    rng = random.Random(0)
    t._write(bytes(rng.randrange(256) for _ in range(3000)) + b"\n")  # random bytes, newlines too
    assert t.request({"text": "set the thermostat to 21 degrees"})["intent"] == "HassClimateSetTemperature"
    stats = t.command("stats")
    assert stats["errors"] >= 1 and stats["overflows"] >= 1, stats


def test_end_of_input_answers_the_half_line_and_exits_cleanly(firmware):
    r = subprocess.run(xtensa_sim.XtensaSim(firmware.elf).command(), input=b"/ping\nturn off the kitchen lights",
                       capture_output=True, timeout=60)
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 0, r.stderr
    assert lines[0] == {"pong": True} and lines[1]["intent"] == "HassTurnOff" and len(lines) == 2
