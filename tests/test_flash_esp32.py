"""``squeezeedge flash --board esp32|esp32s3|esp32c3``: esptool's Python API end to end into an
emulated ESP ROM serial bootloader (tests/esp_rom_loader.py, on a pty or a TCP socket), with real
images made here by esptool from the rv32imc firmware (the ESP32-C3's ISA): ``elf2image`` of the
app and of a small bootloader, an ESP-IDF partition table, a build directory with
flasher_args.json, and ``merge-bin`` of the three, all accepted by ``image-info``. The bytes in
the emulated flash must equal the images. Failures are one sentence each: wrong chip, missing
port, busy port, nothing answering, image for another chip, broken build directory."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pty
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from squeezeedge import boards
from squeezeedge.esp_flash import APP_OFFSET, FlashError, flash_esp32, resolve_esp_image
from squeezeedge.cli.flash import add_parser as add_flash_parser

sys.path.insert(0, str(Path(__file__).parent))
from esp_rom_loader import EspRomLoader  # noqa: E402

RV32_GCC = "riscv64-unknown-elf-gcc"
needs_rv32 = pytest.mark.skipif("rv32-virt" not in boards.BOARDS and shutil.which(RV32_GCC) is None,
                                reason="apt-get install gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf")
BOOTLOADER, PARTITIONS = 0x0, 0x8000


def _one_sentence(msg: str) -> None:
    assert "\n" not in msg and msg.count(". ") == 0 and 20 < len(msg) < 300, msg


# ---- images, made with esptool's API ----

def _rv32_elf(tmp: Path, name: str, body: str) -> Path:
    """A bare-metal rv32imc ELF (picolibc, linked at 0x80000000 as on qemu -M virt)."""
    src, elf = tmp / f"{name}.c", tmp / f"{name}.elf"
    src.write_text(body)
    subprocess.run([RV32_GCC, "-march=rv32imc", "-mabi=ilp32", "--specs=picolibc.specs", "-nostartfiles", "-O2",
                    "-Wl,--defsym=__flash=0x80000000", "-Wl,--defsym=__flash_size=0x100000",
                    "-Wl,--defsym=__ram=0x80100000", "-Wl,--defsym=__ram_size=0x10000",
                    "-o", str(elf), str(src)], check=True)
    return elf


def _app_elf(tmp: Path) -> Path:
    if "rv32-virt" in boards.BOARDS:
        return boards.build_board("rv32-virt").elf  # the whole firmware for rv32imc
    # Until that board exists: a program with 40 KB of incompressible data, so that the app
    # takes several 16 KiB stub blocks and many 1 KiB ROM blocks.
    import random

    rnd = random.Random(6)
    table = ",".join(str(rnd.randrange(256)) for _ in range(40000))
    return _rv32_elf(tmp, "app", f"const unsigned char table[40000] = {{{table}}};\nvolatile unsigned sum;\n"
                                 "void _start(void) { for (unsigned i = 0;; i++) sum += table[i % sizeof table]; }\n")


def partition_table(entries) -> bytes:
    """ESP-IDF's binary partition table (what gen_esp32part.py writes): 32-byte entries
    <2sBBII16sI (magic 0xAA 0x50, type, subtype, offset, size, label, flags), then an MD5 entry
    (0xEB 0xEB, 14 x 0xFF, MD5 of the entries before it), 0xFF up to 0xC00 bytes."""
    table = b"".join(struct.pack("<2sBBII16sI", b"\xaa\x50", ptype, subtype, offset, size, label.encode(), 0)
                     for label, ptype, subtype, offset, size in entries)
    table += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(table).digest()
    return table + b"\xff" * (0xC00 - len(table))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A fake-but-well-formed ESP-IDF build directory for the ESP32-C3 and its merged image."""
    if "rv32-virt" not in boards.BOARDS and shutil.which(RV32_GCC) is None:
        pytest.skip("no rv32imc toolchain")
    from esptool.cmds import elf2image, image_info, merge_bin

    tmp = tmp_path_factory.mktemp("esp")
    build = tmp / "build"
    (build / "bootloader").mkdir(parents=True)
    (build / "partition_table").mkdir()
    flash = {"flash_mode": "dio", "flash_freq": "80m", "flash_size": "4MB"}
    boot_elf = _rv32_elf(tmp, "bootloader", "volatile int booted;\nvoid _start(void) { booted = 1; for (;;); }\n")
    app_elf = _app_elf(tmp)
    files = {
        "bootloader": (BOOTLOADER, build / "bootloader" / "bootloader.bin"),
        "partition-table": (PARTITIONS, build / "partition_table" / "partition-table.bin"),
        "app": (APP_OFFSET, build / "squeezeedge.bin"),
    }
    elf2image(str(boot_elf), "esp32c3", output=str(files["bootloader"][1]), **flash)
    elf2image(str(app_elf), "esp32c3", output=str(files["app"][1]), **flash)
    files["partition-table"][1].write_bytes(partition_table([
        ("nvs", 1, 2, 0x9000, 0x6000), ("phy_init", 1, 1, 0xF000, 0x1000), ("factory", 0, 0, APP_OFFSET, 0x100000)]))
    (build / "flasher_args.json").write_text(json.dumps({
        "write_flash_args": ["--flash_mode", "dio", "--flash_size", "4MB", "--flash_freq", "80m"],
        "flash_settings": flash,
        "flash_files": {f"0x{off:x}": str(p.relative_to(build)) for off, p in files.values()},
        **{k: {"offset": f"0x{off:x}", "file": str(p.relative_to(build)), "encrypted": "false"}
           for k, (off, p) in files.items()},
        "extra_esptool_args": {"after": "hard_reset", "before": "default_reset", "stub": True, "chip": "esp32c3"},
    }, indent=4))
    merged = tmp / "merged.bin"
    merge_bin([(off, str(p)) for off, p in files.values()], "esp32c3", output=str(merged))
    for path in (files["bootloader"][1], files["app"][1], merged):
        image_info(str(path), "esp32c3")  # raises FatalError on a malformed image
    return {"build": build, "merged": merged, "files": files, "app_elf": app_elf}


def _cli(argv):
    p = argparse.ArgumentParser()
    add_flash_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(["flash"] + argv)
    return args.func(args)


# ---- the flash path writes the exact images ----

@needs_rv32
def test_build_dir_flash_writes_each_file_at_its_offset(images):
    stages, percents = [], {}

    def progress(stage, percent):
        if percent is None:
            stages.append(stage)
        else:
            percents[stage] = percent

    with EspRomLoader("esp32c3") as bl:
        written = flash_esp32(images["build"], "esp32c3", bl.port, progress=progress)
        for offset, path in images["files"].values():
            data = path.read_bytes()
            assert bl.written(offset, len(data)) == data, path.name
        boot = images["files"]["bootloader"][1].stat().st_size
        assert bl.flash[boot:PARTITIONS].count(0xFF) == PARTITIONS - boot   # nothing between the files
        assert "stub started" in bl.log and "FLASH_DEFL_DATA" in bl.log and "SPI_FLASH_MD5" in bl.log
        assert bl.baud_changes == [460800]
    assert written.kind == "build directory" and [off for off, _ in written.files] == [0x0, 0x8000, 0x10000]
    assert "found an ESP32-C3 on " + bl.port in stages and "verifying every region (MD5)" in stages
    assert stages[-1] == f"{bl.port} has no reset line: press RESET (EN) to start the new firmware"
    assert sorted(percents) == ["writing bootloader.bin at 0x0", "writing partition-table.bin at 0x8000",
                                "writing squeezeedge.bin at 0x10000"]
    assert set(percents.values()) == {100.0}


@needs_rv32
def test_merged_image_over_a_socket_through_the_rom_loader_alone(images):
    merged = images["merged"].read_bytes()
    assert resolve_esp_image(images["merged"], "esp32c3").files == [(0, images["merged"])]
    with EspRomLoader("esp32c3", transport="tcp") as bl:
        assert bl.port.startswith("socket://")
        flash_esp32(images["merged"], "esp32c3", bl.port, stub=False)
        assert bl.written(0, len(merged)) == merged
        assert "stub started" not in bl.log and "MEM_BEGIN" not in bl.log
        assert "SPI_ATTACH" in bl.log and "FLASH_DATA" in bl.log and "SPI_FLASH_MD5" in bl.log


@needs_rv32
@pytest.mark.parametrize("chip", ["esp32", "esp32s3", "esp32c3"])
@pytest.mark.parametrize("stub", [True, False], ids=["stub", "rom"])
def test_each_chip_is_detected_and_gets_its_app_image(images, chip, stub, tmp_path):
    """The ESP32 is found by its ROM magic word, the S3 and C3 by GET_SECURITY_INFO's chip id."""
    from esptool.cmds import elf2image

    app = tmp_path / f"app-{chip}.bin"
    elf2image(str(images["app_elf"]), chip, output=str(app))
    with EspRomLoader(chip) as bl:
        flash_esp32(app, chip, bl.port, stub=stub)
        assert bl.written(APP_OFFSET, app.stat().st_size) == app.read_bytes()
        assert bl.flash[:APP_OFFSET] == b"\xff" * APP_OFFSET
        assert (0x40001000 in bl.reads) == (chip == "esp32")  # the magic word only where the chip id is missing
        assert ("stub started" in bl.log) == stub


# ---- failures are one sentence, and nothing is written ----

@needs_rv32
def test_wrong_chip_is_one_sentence_and_nothing_is_written(images):
    with EspRomLoader("esp32s3") as bl:
        with pytest.raises(FlashError) as e:
            flash_esp32(images["build"], "esp32c3", bl.port)
        assert bl.flash == b"\xff" * len(bl.flash)
        assert not [c for c in bl.log if c.startswith(("FLASH", "MEM", "SPI_ATTACH"))]
    _one_sentence(str(e.value))
    assert str(e.value) == f"the device on {bl.port} is an ESP32-S3, not an ESP32-C3: pass --board esp32s3"


@needs_rv32
def test_missing_port_is_one_sentence(images):
    with pytest.raises(FlashError) as e:
        flash_esp32(images["build"], "esp32c3", "/dev/ttyUSB_nothing_here")
    _one_sentence(str(e.value))
    assert str(e.value).startswith("serial port /dev/ttyUSB_nothing_here does not exist")


@needs_rv32
def test_busy_port_is_one_sentence(images):
    import serial

    with EspRomLoader("esp32c3") as bl:
        holder = serial.Serial(bl.port, exclusive=True)  # e.g. a serial monitor left open
        try:
            with pytest.raises(FlashError) as e:
                flash_esp32(images["build"], "esp32c3", bl.port)
        finally:
            holder.close()
        assert bl.log == []
    _one_sentence(str(e.value))
    assert "is busy" in str(e.value)


@needs_rv32
def test_nothing_answering_is_one_sentence(images):
    master, slave = pty.openpty()  # a port with no ROM loader behind it
    port = os.ttyname(slave)
    try:
        with pytest.raises(FlashError) as e:
            flash_esp32(images["build"], "esp32c3", port)
    finally:
        os.close(master)
        os.close(slave)
    _one_sentence(str(e.value))
    assert str(e.value).startswith(f"no ESP bootloader answered on {port}: hold BOOT (GPIO9) low")


def test_nothing_listening_on_a_socket_is_one_sentence(tmp_path):
    import socket

    app = tmp_path / "app.bin"
    app.write_bytes(b"\xe9\x01\x02\x20" + bytes(8) + struct.pack("<H", 5) + bytes(18))  # an ESP32-C3 header
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = f"socket://127.0.0.1:{s.getsockname()[1]}"  # bound, never listening
        with pytest.raises(FlashError) as e:
            flash_esp32(app, "esp32c3", port)
    _one_sentence(str(e.value))
    assert str(e.value).startswith(f"nothing accepts connections at {port}")


@needs_rv32
def test_images_for_another_chip_stop_before_the_port_is_opened(images, tmp_path):
    from esptool.cmds import elf2image

    s3 = tmp_path / "app-s3.bin"
    elf2image(str(images["app_elf"]), "esp32s3", output=str(s3))
    cases = [
        (s3, "esp32c3", "app-s3.bin is an ESP32-S3 image, not an ESP32-C3 one"),
        (images["build"], "esp32s3", f"{images['build']} was built for esp32c3, not esp32s3: pass --board esp32c3"),
        (images["merged"], "esp32", "merged.bin (its bootloader) is an ESP32-C3 image, not an ESP32 one"),
        (images["app_elf"], "esp32c3", "is an ELF file: pass the build directory"),
        (tmp_path, "esp32c3", "has no flasher_args.json: pass an ESP-IDF build directory"),
    ]
    for source, board, want in cases:
        with pytest.raises(FlashError) as e:
            flash_esp32(source, board, "/dev/ttyUSB_nothing_here")  # the image is checked first
        _one_sentence(str(e.value))
        assert want in str(e.value)


@needs_rv32
def test_a_build_dir_missing_a_listed_file_is_one_sentence(images, tmp_path):
    broken = tmp_path / "build"
    shutil.copytree(images["build"], broken)
    (broken / "partition_table" / "partition-table.bin").unlink()
    with pytest.raises(FlashError) as e:
        resolve_esp_image(broken, "esp32c3")
    _one_sentence(str(e.value))
    assert str(e.value).endswith("lists partition_table/partition-table.bin, which is missing: run idf.py build again")


# ---- the CLI ----

@needs_rv32
def test_cli_flashes_a_build_dir_with_a_progress_bar(images, capsys):
    with EspRomLoader("esp32c3") as bl:
        assert _cli(["--board", "esp32c3", "--port", bl.port, str(images["build"])]) == 0
        app = images["files"]["app"][1].read_bytes()
        assert bl.written(APP_OFFSET, len(app)) == app
    out, err = capsys.readouterr()
    assert out.strip() == ("flashed bootloader.bin at 0x0, partition-table.bin at 0x8000, squeezeedge.bin at "
                           "0x10000 to the esp32c3 (verified)")
    assert "flash: found an ESP32-C3" in err and "writing squeezeedge.bin at 0x10000: 100%" in err


@needs_rv32
def test_cli_errors_exit_2_with_one_sentence(images, capsys):
    with EspRomLoader("esp32s3") as bl:
        assert _cli(["--board", "esp32c3", "--port", bl.port, str(images["build"])]) == 2
        assert bl.flash == b"\xff" * len(bl.flash)
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"flash: the device on {bl.port} is an ESP32-S3, not an ESP32-C3: pass --board esp32s3"

    master, slave = pty.openpty()
    port = os.ttyname(slave)
    try:
        assert _cli(["--board", "esp32c3", "--port", port, str(images["build"])]) == 2
    finally:
        os.close(master)
        os.close(slave)
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"flash: no ESP bootloader answered on {port}")
    _one_sentence(err[-1])

    assert _cli(["--board", "esp32c3", "--method", "uart", "--port", "/dev/null", str(images["build"])]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("flash: --method is for the STM32 board only")
    assert _cli(["--board", "esp32c3", "--port", "/dev/ttyUSB_nothing_here"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("flash: pass the ESP-IDF build directory")


def test_cli_stm32_still_needs_a_method(capsys):
    assert _cli(["--board", "stm32f405", "--port", "/dev/null"]) == 2
    assert capsys.readouterr().err.strip() == "flash: --method is required for the stm32f405: uart, stlink or dfu"


# ---- the emulation itself ----

def test_emulated_rom_speaks_the_published_protocol():
    """SLIP escapes, 4 ROM status bytes, checksum errors (0x07) write nothing, the ESP32 ROM
    rejects GET_SECURITY_INFO (0x05), and a compressed ROM download lands where it should, driven
    by esptool's own ROM loader class."""
    import zlib

    from esptool.targets import CHIP_DEFS

    data = bytes(range(256)) * 8 + b"\xc0\xdb" * 512  # bytes that need SLIP escapes
    with EspRomLoader("esp32c3") as bl:
        esp = CHIP_DEFS["esp32c3"](bl.port)
        try:
            esp.connect("no-reset", attempts=1)
            assert not esp.sync_stub_detected  # the ROM's SYNC value is non-zero
            esp.flash_spi_attach(0)
            val, body = esp.command(0x03, struct.pack("<IIII", 4, 0, 0, 0) + b"\x00" * 4, chk=0)  # no FLASH_BEGIN
            assert body == b"\x01\x05\x00\x00"
            esp.flash_begin(0x1000, 0x2000)
            val, body = esp.command(0x03, struct.pack("<IIII", 0x400, 0, 0, 0) + data[:0x400], chk=0x12)
            assert body == b"\x01\x07\x00\x00" and bl.flash[0x2000:0x2400] == b"\xff" * 0x400  # bad checksum
            z = zlib.compress(data, 9)
            blocks = esp.flash_defl_begin(len(data), len(z), 0x3000)
            for seq in range(blocks):
                esp.flash_defl_block(z[seq * esp.FLASH_WRITE_SIZE:(seq + 1) * esp.FLASH_WRITE_SIZE], seq)
            assert bl.written(0x3000, len(data)) == data
            assert esp.flash_md5sum(0x3000, len(data)) == hashlib.md5(data).hexdigest()
        finally:
            esp._port.close()
    with EspRomLoader("esp32") as bl:
        esp = CHIP_DEFS["esp32"](bl.port)
        try:
            esp.connect("no-reset", attempts=1)
            val, body = esp.command(0x14, b"")
            assert body == b"\x01\x05\x00\x00"
            assert esp.read_reg(0x40001000) == 0x00F01D83
        finally:
            esp._port.close()


@needs_rv32
@pytest.mark.parametrize("stub", [True, False], ids=["stub", "rom"])
def test_a_byte_that_will_not_program_is_one_sentence(images, stub):
    """A worn-out flash cell: the stub path is caught by esptool's MD5, the ROM path by the ROM's
    own read-back (error 0x08); either way the user gets one sentence, not a traceback."""
    app = images["files"]["app"][1]
    data = app.read_bytes()
    bad = APP_OFFSET + next(i for i in range(0x20, len(data)) if data[i] != 0xFF)  # a byte that must change
    with EspRomLoader("esp32c3", stuck_erased=bad) as bl:
        with pytest.raises(FlashError) as e:
            flash_esp32(app, "esp32c3", bl.port, stub=stub)
    _one_sentence(str(e.value))
    if stub:
        assert str(e.value).startswith(f"verification failed on {bl.port}: the flash does not hold what was written")
    else:
        seq = (bad - APP_OFFSET) // 0x400  # the ROM's 1 KiB block holding the bad byte, tried 3 times
        assert str(e.value) == (f"writing squeezeedge.bin at 0x10000 failed on {bl.port}: Failed to write to target "
                                f"flash after seq {seq} (result was 0108: Flash write error)")
        assert bl.log.count("FLASH_DATA") == seq + 3
