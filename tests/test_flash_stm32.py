"""``squeezeedge flash``: the UART path end to end through the real stm32flash into an emulated
STM32 ROM bootloader (tests/an3155_bootloader.py, AN3155 on a pty); the image read back from
its flash boots under QEMU and answers like the reference. Failures are one sentence each:
wrong chip, missing port, busy port, no DFU device, no ST-Link probe."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from squeezeedge import boards
from squeezeedge.flash import FlashError, check_serial_port, flash_stm32

sys.path.insert(0, str(Path(__file__).parent))
from an3155_bootloader import An3155Bootloader  # noqa: E402

needs_stm32flash = pytest.mark.skipif(shutil.which("stm32flash") is None, reason="apt-get install stm32flash")
needs_board = pytest.mark.skipif(not boards.toolchain_available() or not boards.qemu_available(),
                                 reason="needs arm-none-eabi-gcc and qemu-system-arm")
N_SENTENCES = 12


def _one_sentence(msg: str) -> None:
    assert "\n" not in msg and msg.count(". ") == 0 and 20 < len(msg) < 300, msg


@pytest.fixture(scope="module")
def firmware():
    return boards.build_board("stm32f405")


@needs_stm32flash
@needs_board
def test_uart_flash_writes_verifies_and_the_readback_boots(firmware, tmp_path):
    from squeezeedge.classify import classify_line
    from squeezeedge.models.dataset import build_dataset
    from squeezeedge.models.engine import DEFAULT_MODEL, ReferenceEngine
    from squeezeedge.models.model_file import IntModel
    from squeezeedge.engines import open_device_engine

    image = firmware.bin.read_bytes()
    stages, percents = [], []

    def progress(stage, percent):
        (stages if percent is None else percents).append(percent if percent is not None else stage)

    with An3155Bootloader() as bl:
        flashed = flash_stm32(firmware.bin, "uart", port=bl.port, progress=progress, timeout=40)
        assert flashed == firmware.bin
        assert bytes(bl.flash[:len(image)]) == image
        assert bl.flash[len(image):] == b"\xff" * (len(bl.flash) - len(image))  # nothing else touched
        assert bl.go_address == 0x08000000
        assert "get_id" in bl.log and "extended_erase" in bl.log and "read_memory" in bl.log  # -v read back
        readback = tmp_path / "readback.bin"
        readback.write_bytes(bytes(bl.flash[:len(image)]))
    assert any("chip id 0x413" in s for s in stages) and percents and percents[-1] == 100.0

    # boot the bytes read back from the emulated flash (QEMU loads a raw .bin at 0x08000000)
    reference = ReferenceEngine(IntModel.load(DEFAULT_MODEL))
    test = build_dataset(seed=0).test
    texts = [ex.text for ex in test[::max(1, len(test) // N_SENTENCES)]][:N_SENTENCES]
    q = boards.start_qemu_board(readback)
    try:
        dev = open_device_engine("device", port=q.url, timeout=10.0)
        try:
            assert dev.info()["device"] == "stm32f405"
            for text in texts:
                data = text.encode("utf-8")
                assert classify_line(dev, data) == classify_line(reference, data), text
        finally:
            dev.close()
    finally:
        q.stop()


@needs_stm32flash
def test_uart_wrong_chip_is_one_sentence(tmp_path):
    image = tmp_path / "fw.bin"
    image.write_bytes(b"\x00" * 1024)
    for pid in (0x0410, 0x0999):  # a known other chip (STM32F1) and an unknown one
        with An3155Bootloader(pid=pid) as bl:
            with pytest.raises(FlashError) as e:
                flash_stm32(image, "uart", port=bl.port, timeout=20)
            assert bl.flash[:1024] == b"\xff" * 1024  # stopped before erasing or writing
            assert "extended_erase" not in bl.log and "write_memory" not in bl.log
        msg = str(e.value)
        _one_sentence(msg)
        assert msg.startswith("wrong chip") and f"0x{pid:03x}" in msg and "0x413" in msg


@needs_stm32flash
def test_uart_missing_port_is_one_sentence(tmp_path):
    image = tmp_path / "fw.bin"
    image.write_bytes(b"\x00" * 16)
    with pytest.raises(FlashError) as e:
        flash_stm32(image, "uart", port="/dev/ttyUSB_nothing_here")
    _one_sentence(str(e.value))
    assert "/dev/ttyUSB_nothing_here does not exist" in str(e.value)


@needs_stm32flash
def test_uart_busy_port_is_one_sentence(tmp_path):
    import serial

    image = tmp_path / "fw.bin"
    image.write_bytes(b"\x00" * 16)
    with An3155Bootloader() as bl:
        holder = serial.Serial(bl.port, exclusive=True)  # e.g. a serial monitor left open
        try:
            with pytest.raises(FlashError) as e:
                flash_stm32(image, "uart", port=bl.port)
        finally:
            holder.close()
        assert bl.log == []  # nothing was sent
        check_serial_port(bl.port)  # free again
    _one_sentence(str(e.value))
    assert "is busy" in str(e.value)


@needs_stm32flash
def test_uart_no_bootloader_answering_is_one_sentence(tmp_path):
    import os
    import pty

    image = tmp_path / "fw.bin"
    image.write_bytes(b"\x00" * 16)
    master, slave = pty.openpty()
    try:
        with pytest.raises(FlashError) as e:
            flash_stm32(image, "uart", port=os.ttyname(slave), timeout=20)
    finally:
        os.close(master)
        os.close(slave)
    _one_sentence(str(e.value))
    assert "no STM32 bootloader answered" in str(e.value)


@pytest.mark.skipif(shutil.which("dfu-util") is None, reason="apt-get install dfu-util")
def test_dfu_without_a_device_is_one_sentence(tmp_path):
    image = tmp_path / "fw.bin"
    image.write_bytes(b"\x00" * 1024)
    with pytest.raises(FlashError) as e:
        flash_stm32(image, "dfu", timeout=20)
    _one_sentence(str(e.value))
    assert str(e.value).startswith("no USB DFU device found")


def test_stlink_without_a_probe_is_one_sentence(tmp_path):
    image = tmp_path / "fw.bin"
    image.write_bytes(b"\x00" * 1024)
    with pytest.raises(FlashError) as e:
        flash_stm32(image, "stlink", timeout=30)
    _one_sentence(str(e.value))
    assert str(e.value).startswith("no ST-Link or CMSIS-DAP probe found") or \
        str(e.value) == "pyocd not installed: pip install pyocd"


def test_missing_tool_names_the_package(tmp_path, monkeypatch):
    image = tmp_path / "fw.bin"
    image.write_bytes(b"\x00" * 16)
    monkeypatch.setenv("PATH", str(tmp_path))
    import squeezeedge.flash as flash

    monkeypatch.setattr(flash.sys, "executable", str(tmp_path / "python"))
    for method, want in (("uart", "stm32flash not installed: apt-get install stm32flash"),
                         ("dfu", "dfu-util not installed: apt-get install dfu-util"),
                         ("stlink", "pyocd not installed: pip install pyocd")):
        with pytest.raises(FlashError, match=want):
            flash_stm32(image, method, port="/dev/null")


def test_cli_parser_and_build_dir(tmp_path, capsys):
    import argparse

    from squeezeedge.cli.flash import add_parser as add_flash_parser
    from squeezeedge.flash import resolve_image

    p = argparse.ArgumentParser()
    add_flash_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(["flash", "--method", "uart", "--port", "/dev/ttyUSB_nothing_here", str(tmp_path)])
    (tmp_path / "firmware.bin").write_bytes(b"\x00" * 16)
    assert resolve_image(tmp_path, "uart") == tmp_path / "firmware.bin"
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("flash: serial port /dev/ttyUSB_nothing_here does not exist")
    with pytest.raises(FlashError, match="holds no firmware.bin"):
        empty = tmp_path / "empty"
        empty.mkdir()
        resolve_image(empty, "uart")


def test_emulated_bootloader_speaks_an3155():
    """The emulation itself: autobaud, Get ID, Write/Read Memory with XOR checksums, NACK on a bad one."""
    import os
    import select

    def xfer(bl, data, n):
        os.write(bl.slave, bytes(data))
        out = b""
        while len(out) < n:
            r, _, _ = select.select([bl.slave], [], [], 2.0)
            assert r, f"no answer to {bytes(data).hex()} (got {out.hex()})"
            out += os.read(bl.slave, n - len(out))
        return out

    with An3155Bootloader(pid=0x0413) as bl:
        assert xfer(bl, [0x7F], 1) == b"\x79"
        assert xfer(bl, [0x02, 0xFD], 5) == bytes([0x79, 1, 0x04, 0x13, 0x79])
        assert xfer(bl, [0x31, 0xCE], 1) == b"\x79"
        addr = [0x08, 0x00, 0x00, 0x10]
        assert xfer(bl, addr + [0x08 ^ 0x10], 1) == b"\x79"
        data = [1, 2, 3, 4]
        assert xfer(bl, [3] + data + [3 ^ 1 ^ 2 ^ 3 ^ 4], 1) == b"\x79"
        assert bl.flash[0x10:0x14] == bytes(data)
        assert xfer(bl, [0x31, 0xCE], 1) == b"\x79"
        assert xfer(bl, addr + [0x00], 1) == b"\x1f"          # bad address checksum
        assert xfer(bl, [0x11, 0xEE], 1) == b"\x79"
        assert xfer(bl, addr + [0x08 ^ 0x10], 1) == b"\x79"
        assert xfer(bl, [3, 0xFC], 5) == b"\x79" + bytes(data)
        assert xfer(bl, [0x11, 0x00], 1) == b"\x1f"           # bad complement
        assert xfer(bl, [0x44, 0xBB], 1) == b"\x79"
        assert xfer(bl, [0x00, 0x00, 0x00, 0x00, 0x00], 1) == b"\x79"  # erase sector 0
        assert bl.flash[0x10:0x14] == b"\xff" * 4


@needs_stm32flash
@needs_board
def test_cli_flash_over_uart_prints_progress(firmware, capsys):
    import argparse

    from squeezeedge.cli.flash import add_parser as add_flash_parser

    p = argparse.ArgumentParser()
    add_flash_parser(p.add_subparsers(dest="command"))
    with An3155Bootloader() as bl:
        args = p.parse_args(["flash", "--board", "stm32f405", "--method", "uart", "--port", bl.port,
                             str(firmware.bin.parent)])
        assert args.func(args) == 0
        assert bytes(bl.flash[:firmware.bin.stat().st_size]) == firmware.bin.read_bytes()
    out, err = capsys.readouterr()
    assert "flashed" in out and "(verified)" in out
    assert "flash: chip id 0x413" in err and "100%" in err
