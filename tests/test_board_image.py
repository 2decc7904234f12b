"""`squeezeedge emulate --board B --image PATH` runs the image `squeezeedge build` wrote, as it is
(issue 18: it used to rebuild the firmware), and says that QEMU's time_us is not the chip's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from squeezeedge import boards
from squeezeedge.cli import build_parser
from squeezeedge.transport import open_transport



@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fw")
    boards.build_board("stm32f405", out_dir=out)  # as `squeezeedge build --board stm32f405 -o out` does
    return out


@pytest.mark.parametrize("form", ["dir", "elf"])
def test_emulate_runs_the_built_image_without_building(image_dir, tmp_path, form):
    image = image_dir if form == "dir" else image_dir / "firmware.elf"
    # An empty build cache: building anything would compile for a minute and say so.
    env = {**os.environ, "SQUEEZEEDGE_CACHE": str(tmp_path / "empty-cache")}
    proc = subprocess.Popen([sys.executable, "-m", "squeezeedge", "emulate", "--board", "stm32f405",
                             "--image", str(image), "--serial", "tcp:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        banner = proc.stdout.readline()
        assert "netduinoplus2" in banner, (banner, proc.stderr.read() if proc.poll() is not None else "")
        url = banner.split(" on ")[1].split()[0]
        with open_transport(url) as t:
            t.resync(timeout=10.0)
            reply = t.classify_json(b"turn off the kitchen lights", timeout=30.0)
        assert reply["text"] == "turn off the kitchen lights" and "time_us" in reply
    finally:
        proc.terminate()
        proc.wait(30)
    err = proc.stderr.read()
    assert "building" not in err and not (tmp_path / "empty-cache").exists()
    caveat = [line for line in err.splitlines() if "time_us" in line]
    assert len(caveat) == 1 and "not cycle-accurate" in caveat[0] and "--icount" in caveat[0]


def run(argv, capsys) -> tuple[int, str]:
    args = build_parser().parse_args(argv)  # not cli.main: it installs signal handlers
    rc = args.func(args)
    return rc, capsys.readouterr().err.strip()


def test_images_that_cannot_run_are_one_sentence(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(boards, "build_board", lambda *a, **k: pytest.fail("--image must not build"))
    emulate = ["emulate", "--board", "stm32f405", "--serial", "tcp:0", "--image"]
    rc, err = run(emulate + [str(tmp_path)], capsys)
    assert rc == 2 and "no such firmware image" in err and "squeezeedge build" in err
    (tmp_path / "firmware.bin").write_bytes(b"\x00\x10\x02\x20" * 64)
    rc, err = run(emulate + [str(tmp_path / "firmware.bin")], capsys)
    assert rc == 2 and "is not an ELF file" in err
    rv32 = tmp_path / "rv32.elf"  # an ELF header for RISC-V (e_machine 243), 32-bit little-endian
    rv32.write_bytes(b"\x7fELF\x01\x01\x01" + bytes(11) + (243).to_bytes(2, "little") + bytes(32))
    rc, err = run(emulate + [str(rv32)], capsys)
    assert rc == 2 and "firmware for the rv32-virt, not for the stm32f405" in err
    rc, err = run(emulate + [str(rv32), "--model", "x.semodel"], capsys)
    assert rc == 2 and "drop --model" in err
    rc, err = run(["emulate", "--image", str(rv32)], capsys)
    assert rc == 2 and "--board stm32f405 or rv32-virt" in err and "\n" not in err
