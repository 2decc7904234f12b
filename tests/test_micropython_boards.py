"""squeezeedge on MicroPython boards in QEMU, driven by mpremote: the native module (Cortex-M3,
Cortex-M7 running armv7emsp code, RV32IMC) loaded from a preloaded ROMFS image, and a Cortex-M7
firmware built with the user C module. Each answers held-out sentences exactly like the integer
reference, told the home's names or not, and the weights never enter the heap."""

from __future__ import annotations

import json

import pytest

from fw_support import held_out_test_sentences, shipped_reference
from squeezeedge.micropython.board import BOARD_ARCH, QemuModuleBoard
from squeezeedge.micropython.engine import answer_from_dict
from squeezeedge.micropython.ports import romfs_partition
from squeezeedge.models.engine import DEFAULT_MODEL, ReferenceEngine
from squeezeedge.models.entities import home_names
from squeezeedge.models.model_file import IntModel


@pytest.fixture(scope="module", params=[*((b, "native") for b in BOARD_ARCH), ("MPS2_AN500", "usermod")],
                ids=lambda p: "-".join(p))
def board(request):
    name, kind = request.param
    with QemuModuleBoard(name, usermod=kind == "usermod") as b:
        yield b


def _differences(reference, texts, got):
    out = []
    for text, d in zip(texts, got):
        want = reference.classify(text.encode())
        if "error" in d or answer_from_dict(d) != want:
            out.append((text, want, d))
    return out


def test_weights_stay_out_of_the_heap(board):
    r = board.import_report
    if board.usermod:  # compiled into the firmware: code, weights and tables in flash, RAM static
        assert r.info["weights"] == "const" and r.heap_used < 256
        return
    # the native module: the weights are read in place from the ROMFS file
    start, size = romfs_partition(board.board)
    assert r.weights_path == "/rom/squeezeedge.bin"
    assert start <= r.info["weights_address"] < start + size  # the payload's address is in ROMFS
    assert r.info["weights_address"] % 4 == 0
    # the heap holds the module's code, tables and RAM, never the 119 KB of weights
    assert r.heap_used < board.module.manifest["mpy_bytes"] + board.module.manifest["bss_bytes"] + 8192
    assert r.heap_used < board.module.manifest["weights_bytes"]


def test_answers_held_out_sentences_like_the_reference(board):
    texts = held_out_test_sentences(100)
    bad = _differences(shipped_reference(), texts, board.classify(texts))
    assert not bad, bad[:3]


def test_answers_like_the_reference_told_the_homes_names(board):
    names = home_names("all")
    reference = ReferenceEngine(IntModel.load(DEFAULT_MODEL), names)
    try:
        assert board.names_add(names.entries) == len(reference.encoder.gazetteer)
        texts = held_out_test_sentences(60)
        bad = _differences(reference, texts, board.classify(texts))
        assert not bad, bad[:3]
    finally:
        board.names_clear()


def test_bad_input_raises_value_error_and_the_board_goes_on(board):
    got = board.classify([b"", b"x" * 600, b"\xff\xfe", b"turn on\x00 the light", "turn off the kitchen lights"])
    assert [g.get("type") for g in got[:4]] == ["ValueError"] * 4
    assert got[1]["error"] == "command too long: 600 bytes, the limit is 512"
    assert got[3]["error"] == "command contains a control byte (0x00 at offset 7)"
    assert got[4]["intent"] == "HassTurnOff"


def test_classify_engine_micropython_on_a_qemu_board(capsys, tmp_path):
    """`squeezeedge classify --engine micropython --arch armv7emsp --names FILE`: the module on the
    Cortex-M7 board in QEMU answers like the reference told the same names."""
    from squeezeedge.cli import main
    from squeezeedge.classify import classify_line
    from squeezeedge.models.gazetteer import HomeNames

    names = HomeNames.from_lists(areas=["sunroom"], names={"light": ["reading lamp"]})
    (tmp_path / "home.json").write_text(json.dumps(names.to_json()))
    texts = ["turn on the reading lamp in the sunroom", "", held_out_test_sentences(1)[0]]
    assert main(["classify", "--engine", "micropython", "--arch", "armv7emsp", "--names", str(tmp_path / "home.json"),
                 *texts]) == 0
    got = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    reference = ReferenceEngine(IntModel.load(DEFAULT_MODEL), names)
    assert got == [classify_line(reference, t.encode()) for t in texts]
