"""The whole firmware (core + generated model) on the ESP32-C3's ISA: firmware/ports/rv32_virt
built with riscv64-unknown-elf-gcc for rv32imc and run under qemu-system-riscv32 -M virt. Over
its UART it answers held-out sentences exactly like the integer reference, keeps every line of
a pipelined burst, survives garbage, and fits the ESP32-C3 (4 MB flash, ~320 KiB app DRAM).
Needs riscv64-unknown-elf-gcc (+ picolibc) and qemu-system-riscv32; skipped otherwise."""

from __future__ import annotations

import json
import re

import pytest

from squeezeedge import boards, icount

import fw_support as fw

BOARD = "rv32-virt"
pytestmark = pytest.mark.skipif(not boards.toolchain_available(BOARD) or not boards.qemu_available(BOARD),
                                reason="needs riscv64-unknown-elf-gcc (+ picolibc) and qemu-system-riscv32")

N_SENTENCES = 150
ESP32_C3_FLASH = 4 * 1024 * 1024  # ESP32-C3-MINI-1: 4 MB flash in the chip's package
ESP32_C3_DRAM = 320 * 1024        # of the 400 KB SRAM, what an ESP-IDF app can count on as DRAM


@pytest.fixture(scope="module")
def firmware():
    return boards.build_board(BOARD)


@pytest.fixture(scope="module")
def device(firmware):
    yield from fw.qemu_board_device(firmware.elf, BOARD)


@pytest.fixture(scope="module")
def reference():
    return fw.shipped_reference()


@pytest.fixture(scope="module")
def held_out():
    return fw.held_out_test_sentences(N_SENTENCES)


def _answer(reply: dict) -> dict:
    """The device's answer without the parts only a device has (its inference time)."""
    reply = dict(reply)
    reply.pop("time_us", None)
    return reply


def test_size_report_fits_the_esp32_c3(firmware):
    s = firmware.size
    assert firmware.elf.is_file() and firmware.bin.is_file() and firmware.hex.is_file()
    assert s.board.flash_bytes == ESP32_C3_FLASH and s.board.ram_bytes == ESP32_C3_DRAM
    assert s.flash == s.text + s.data and s.ram == s.data + s.bss + s.board.stack_reserve
    assert s.text > 100_000, s.report()  # the model's weights are in it
    assert s.fits(), s.report()
    assert "ESP32-C3" in s.report() and "flash" in s.report() and "RAM" in s.report()
    # the .bin is the FLASH region's image: what QEMU loads at 0x80000000, where virt starts
    assert len(firmware.bin.read_bytes()) == s.flash
    header = firmware.elf.read_bytes()[:0x40]
    assert header[4] == 1 and int.from_bytes(header[18:20], "little") == 243  # ELFCLASS32, EM_RISCV
    assert int.from_bytes(header[24:28], "little") == s.board.flash_origin == 0x80000000


def test_the_link_enforces_the_limits_the_report_uses(firmware):
    ld = (boards.PORTS_DIR / "rv32_virt" / "rv32_virt.ld").read_text()
    lengths = dict(re.findall(r"(FLASH|RAM)\s*\(\w+\)\s*:\s*ORIGIN = 0x[0-9A-Fa-f]+, LENGTH = (\d+)K", ld))
    assert int(lengths["FLASH"]) * 1024 == firmware.size.board.flash_bytes
    assert int(lengths["RAM"]) * 1024 == firmware.size.board.ram_bytes
    assert f"_stack_reserve = {firmware.size.board.stack_reserve // 1024}K" in ld and "ASSERT(" in ld


def test_held_out_sentences_match_the_reference(device, reference, held_out):
    from squeezeedge.classify import classify_line

    assert len(held_out) >= 120
    assert device.info()["device"] == BOARD
    mismatches = []
    for text in held_out:
        want = classify_line(reference, text.encode("utf-8"))
        got = _answer(device.transport.request({"text": text}))
        if got != want:  # every field: text, intent, confidence, slots
            mismatches.append((text, want, got))
    assert not mismatches, mismatches[:3]


def test_a_pipelined_burst_loses_no_line(device, held_out):
    """Receive is polled; QEMU's back-pressure keeps the bytes that arrive while the model runs.
    Hundreds of lines written at once are all answered, in order, as one at a time."""
    t = device.transport
    t.drain()
    texts = held_out * 2
    burst = b"".join(json.dumps({"id": 10_000 + i, "text": s}).encode() + b"\n" for i, s in enumerate(texts))
    assert len(burst) > 16 * 1024
    t._write(burst)
    replies = [json.loads(t.read_line(30.0)) for _ in texts]
    assert [r["id"] for r in replies] == [10_000 + i for i in range(len(texts))]
    first, second = replies[:len(held_out)], replies[len(held_out):]
    assert all(r["text"] == s and "intent" in r for r, s in zip(replies, texts))
    assert [_answer(r) | {"id": 0} for r in first] == [_answer(r) | {"id": 0} for r in second]


def test_told_the_homes_names_it_answers_like_the_reference(device):
    fw.assert_answers_with_the_homes_names(device, 60)


def test_garbage_never_hangs_it(device):
    fw.assert_survives_garbage(device)


def test_there_is_no_semihosting_build_for_it():
    with pytest.raises(boards.BoardError, match="no semihosting test build"):
        boards.build_board(BOARD, semihosting=True)


def test_instruction_count_of_the_release_image(firmware, device):
    pytest.importorskip("unicorn")
    text = "turn off the kitchen lights"
    (r,) = icount.count_firmware_instructions(firmware.elf, [text], BOARD)
    assert 0 < r["se_model_run"] < r["se_classify"] < r["line"] < 10_000_000
    # the instruction-counted run answers what the board under QEMU answers (time_us aside)
    got = json.loads(r["response"])
    want = device.classify_json(text.encode())
    assert _answer(got) == _answer(want)
