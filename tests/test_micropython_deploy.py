"""deploy (and `squeezeedge flash --micropython`) onto a MicroPython board that has a filesystem:
the qemu port's MPS2_AN500 built with a LittleFS at /flash on RAM (ports.qemu(..., filesystem=True)),
run under QEMU and driven by the real mpremote. The module folder is the real
`squeezeedge build --micropython --arch armv7emsp` output; after the deploy, `import squeezeedge`
on the board finds /flash/squeezeedge.bin (the board's ROMFS is read-only and empty, so the blob is
on the filesystem) and answers like the integer reference.

The same board built with a writable ROMFS as well (ports.qemu(..., writable_romfs=True): the
port's vfs.rom_ioctl with WRITE_PREPARE/WRITE/WRITE_COMPLETE on the RAM behind ROMFS partition 0)
runs the other path: deploy writes the blob into ROMFS with mpremote's own `romfs deploy` code,
and the module reads it in place from /rom.

No mocks and no skips (a missing cross compiler or QEMU fails with the package to install). The
copies take about 20 s each (base64 over QEMU's emulated UART).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from fw_support import held_out_test_sentences, shipped_reference
from squeezeedge import cli
from squeezeedge.micropython import natmod, ports
from squeezeedge.micropython.deploy import BLOB, MODULE, DeployError, deploy, verify
from squeezeedge.micropython.engine import answer_from_dict

BOARD = "MPS2_AN500"


def mpremote(url: str, *args: str, timeout: float = 120) -> str:
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", url, *args], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"mpremote {' '.join(args)} failed: {r.stdout}{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def fs_elf():
    return ports.qemu(BOARD, filesystem=True, progress=print)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return natmod.build_native_module(None, "armv7emsp", out_dir=tmp_path_factory.mktemp("mod") / "dist").directory


@pytest.fixture(scope="module")
def board(fs_elf):
    with ports.MicroPythonQemu(BOARD, fs_elf) as q:
        yield q


_ANSWER = """
import json, squeezeedge
print(json.dumps({{"weights_path": squeezeedge.weights_path, "cwd": __import__('os').getcwd()}}))
for _t in {texts!r}:
    print(json.dumps(squeezeedge.classify(_t)))
"""


@pytest.mark.parametrize("fs_board", ["MPS2_AN500", "VIRT_RV32"])
def test_filesystem_board_mounts_flash_and_keeps_files_across_soft_resets(fs_board):
    elf = ports.qemu(fs_board, filesystem=True, progress=print)
    ports._check_fs_region(elf, fs_board)  # raises when .text/.data/.bss (heap) or the stack reach it
    with ports.MicroPythonQemu(fs_board, elf) as q:
        first = json.loads(mpremote(q.url, "exec", "import os, sys, json, vfs\n"
                                    "print(json.dumps([os.getcwd(), sys.path, [m for _, m in vfs.mount()], "
                                    "os.listdir('/flash'), os.statvfs('/flash')[0]]))"))
        cwd, path, mounts, files, bsize = first
        assert cwd == "/flash" and "/flash" in path and "/flash/lib" in path and "/flash" in mounts
        assert files == [] and bsize == ports.FS_BLOCK_SIZE  # formatted on the first boot
        mpremote(q.url, "exec", "with open('kept.txt', 'w') as f:\n f.write('still here')")
        # every mpremote exec soft-resets the board: the filesystem is mounted again, not made again
        assert mpremote(q.url, "exec", "print(open('/flash/kept.txt').read())").strip() == "still here"
        free = int(mpremote(q.url, "exec", "import gc; gc.collect(); print(gc.mem_free())"))
        assert free > 900_000  # the 1 MB heap


def test_fs_region_check_catches_an_overlap(fs_elf):
    with pytest.raises(ports.MicroPythonError, match=r"overlaps \.text"):
        ports._check_fs_region(fs_elf, BOARD, (0x00010000, 0x1000))
    with pytest.raises(ports.MicroPythonError, match=r"overlaps the stack"):
        ports._check_fs_region(fs_elf, BOARD, (0x003F0000, 0x1000))
    with pytest.raises(ports.MicroPythonError, match=r"no filesystem variant of the qemu board MPS2_AN385"):
        ports.qemu("MPS2_AN385", filesystem=True)


def test_deploy_copies_verifies_and_the_module_answers_like_the_reference(board, folder):
    messages = []
    report = deploy(folder, board.url, progress=messages.append)
    assert report.placed == {MODULE: f"/flash/{MODULE}", BLOB: f"/flash/{BLOB}"}
    assert not report.blob_in_romfs  # the qemu port's ROMFS is read-only: the blob went to the filesystem
    manifest = json.loads((folder / "manifest.json").read_text())
    assert report.sha256 == manifest["files"]  # verified on the board, equal to the build's own sums
    assert (report.board_format.arch, report.module_format.arch) == ("armv7emdp", "armv7emsp")
    assert any(m.startswith(f"copying {MODULE}") for m in messages)
    assert any(m.startswith(f"copying {BLOB}") for m in messages)
    assert "verifying by SHA-256 on the board" in messages
    assert "verified by SHA-256" in report.summary() and "/flash/squeezeedge.bin" in report.summary()
    listing = {tuple(line.split()) for line in mpremote(board.url, "ls", ":/flash").splitlines()[1:]}
    assert {(str(manifest["mpy_bytes"]), MODULE), (str(manifest["weights_bytes"]), BLOB)} <= listing

    texts = held_out_test_sentences(30)
    lines = mpremote(board.url, "exec", _ANSWER.format(texts=["turn off the kitchen lights", *texts])).splitlines()
    head = json.loads(lines[0])
    assert head == {"weights_path": BLOB, "cwd": "/flash"}  # found next to the module, in /flash
    answers = [json.loads(x) for x in lines[1:]]
    assert answers[0]["intent"] == "HassTurnOff"
    ref = shipped_reference()
    bad = [(t, ref.classify(t.encode()), d) for t, d in zip(texts, answers[1:])
           if answer_from_dict(d) != ref.classify(t.encode())]
    assert len(answers) == 31 and not bad, bad[:3]


def test_verify_finds_a_changed_file_and_a_second_deploy_replaces_it(board, folder):
    # whatever an earlier test left, the .mpy on the board is now something else
    mpremote(board.url, "exec", f"with open('/flash/{MODULE}', 'wb') as f:\n f.write(b'M not the module')")
    with pytest.raises(DeployError) as e:
        verify(folder, board.url)
    msg = str(e.value)
    assert msg.startswith(f"/flash/{MODULE} on the board does not match {folder / MODULE} (SHA-256 ")
    assert msg.endswith("the copy is corrupted or was changed; deploy again") and "\n" not in msg

    report = deploy(folder, board.url)  # replaces both files, content changed, verified
    assert report.sha256 == json.loads((folder / "manifest.json").read_text())["files"]
    assert verify(folder, board.url) == report.sha256
    mpremote(board.url, "rm", f":/flash/{BLOB}")
    with pytest.raises(DeployError, match=rf"^/flash/{BLOB} is not on the board: deploy {folder} again$"):
        verify(folder, board.url)


def test_cli_flash_micropython_probes_builds_and_deploys(board, folder, capsys):
    """Without DIR: the board is asked for its arch (armv7emdp), the shipped model is built for
    armv7emsp (cached) and deployed: the same bytes as the folder's."""
    assert cli.main(["flash", "--micropython", "--port", board.url]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"deployed to mps2-an500 with Cortex-M7 at {board.url} (.mpy 6.3, armv7emdp): ")
    assert f"{BLOB} -> /flash/{BLOB}" in out and "verified by SHA-256" in out
    assert "flash: no DIR given: building the shipped model for the board's arch (armv7emsp)" in err
    assert f"flash: copying {BLOB}" in err and re.search(r"squeezeedge\.bin: +\d+%\|", err)  # tqdm, on stderr
    verify(folder, board.url)
    answer = mpremote(board.url, "exec", "import squeezeedge; print(squeezeedge.classify('turn off the kitchen "
                                         "lights')['intent'])")
    assert answer.strip() == "HassTurnOff"

    assert cli.main(["flash", "--micropython", "--port", board.url, "--no-romfs", str(folder)]) == 0
    assert capsys.readouterr().out.startswith("deployed to mps2-an500")


def test_cli_flash_micropython_errors_are_one_line(folder, capsys):
    from squeezeedge.net import free_port

    url = f"socket://127.0.0.1:{free_port()}"
    assert cli.main(["flash", "--micropython", "--port", url, str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"flash: no board at {url}: nothing answers there (check the cable and the port name; "
                   "`mpremote devs` lists serial ports)"]
    assert cli.main(["flash", "--micropython", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("flash: --micropython needs --port")
    assert cli.main(["flash", "--micropython", "--port", url, str(folder.parent)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a `squeezeedge build --micropython` folder" in err[0]


# ---- a board with a writable ROMFS: the blob goes into ROMFS partition 0 ----

@pytest.fixture(scope="module")
def romfs_board():
    elf = ports.qemu(BOARD, filesystem=True, writable_romfs=True, progress=print)
    with ports.MicroPythonQemu(BOARD, elf) as q:
        yield q


_ROMFS_ANSWER = """
import gc, json, os, squeezeedge
gc.collect()
print(json.dumps({{"weights_path": squeezeedge.weights_path, "weights_address": squeezeedge.info()["weights_address"],
                  "rom": os.listdir("/rom"), "flash": os.listdir("/flash")}}))
for _t in {texts!r}:
    print(json.dumps(squeezeedge.classify(_t)))
"""


def test_deploy_writes_the_blob_into_a_writable_romfs_and_the_module_reads_it_in_place(romfs_board, folder, tmp_path,
                                                                                       capsys):
    messages = []
    report = deploy(folder, romfs_board.url, progress=messages.append)
    assert report.blob_in_romfs
    assert report.placed == {BLOB: f"/rom/{BLOB}", MODULE: f"/flash/{MODULE}"}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert report.sha256 == manifest["files"]  # both verified on the board (the blob read from /rom)
    assert f"{BLOB} -> /rom/{BLOB}" in report.summary() and "verified by SHA-256" in report.summary()
    assert messages[0] == f"writing {BLOB} ({manifest['weights_bytes']:,} bytes) into the board's ROMFS (partition 0)"
    assert not any(m.startswith(f"copying {BLOB}") for m in messages)
    assert any(m.startswith(f"copying {MODULE}") for m in messages)
    assert messages[-1] == "verifying by SHA-256 on the board"
    # the progress bar of the ROMFS write (tqdm, stderr) went up chunk by chunk, to its end
    percents = [int(p) for p in re.findall(r"ROMFS: +(\d+)%", capsys.readouterr().err)]
    steps = [b for a, b in zip(percents, percents[1:]) if b != a]
    assert len(steps) >= 10 and all(b > a for a, b in zip(percents, percents[1:]) if b != a), percents
    assert percents[-1] == 100, percents
    assert verify(folder, romfs_board.url) == report.sha256  # verify alone finds the blob in /rom too

    # after mpremote's soft reset /rom is mounted from the written partition; the module binds the
    # blob there, in place: its weights' address lies inside the blob's bytes in ROMFS partition 0
    texts = held_out_test_sentences(20)
    lines = mpremote(romfs_board.url, "exec", _ROMFS_ANSWER.format(texts=texts)).splitlines()
    head = json.loads(lines[0])
    assert head["weights_path"] == f"/rom/{BLOB}"
    assert head["rom"] == [BLOB] and head["flash"] == [MODULE]  # no copy of the blob on the filesystem
    start, size = ports.romfs_partition(BOARD)
    image = ports.romfs_image({BLOB: folder / BLOB}, tmp_path / "expected.romfs").read_bytes()
    data = ports.romfs_file_offsets(image)[BLOB]
    assert start <= start + data <= head["weights_address"] < start + data + manifest["weights_bytes"] <= start + size
    answers = [json.loads(x) for x in lines[1:]]
    ref = shipped_reference()
    bad = [(t, ref.classify(t.encode()), d) for t, d in zip(texts, answers)
           if answer_from_dict(d) != ref.classify(t.encode())]
    assert len(answers) == 20 and not bad, bad[:3]


def _other_blob_folder(folder, tmp_path):
    """A copy of ``folder`` with another, short blob (its first KB, last byte changed: a short ROMFS
    write), the .mpy and manifest unchanged."""
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    blob = bytearray((other / BLOB).read_bytes()[:1024])
    blob[-1] ^= 0xFF
    (other / BLOB).write_bytes(bytes(blob))
    return other


def test_deploy_without_replacing_romfs_refuses_when_rom_holds_another_blob(romfs_board, folder, tmp_path):
    if not _holds_romfs_deploy(romfs_board, folder):  # this test run alone: deploy the folder first
        deploy(folder, romfs_board.url)
    other = _other_blob_folder(folder, tmp_path)
    with pytest.raises(DeployError) as e:
        deploy(other, romfs_board.url, replace_romfs=False)
    msg = str(e.value)
    assert msg == (f"the board's ROMFS holds another /rom/{BLOB}, which the module loads before /flash/{BLOB}: "
                   "deploy without --no-romfs so that it is replaced")
    assert verify(folder, romfs_board.url)  # nothing was copied: the board still holds the first deploy
    assert BLOB not in mpremote(romfs_board.url, "ls", ":/flash")

    # the default (replace_romfs=True) does replace it: a second write session on the partition
    report = deploy(other, romfs_board.url)
    assert report.blob_in_romfs and report.placed[BLOB] == f"/rom/{BLOB}"
    assert verify(other, romfs_board.url) == report.sha256
    with pytest.raises(DeployError, match=rf"^/rom/{BLOB} on the board does not match "):
        verify(folder, romfs_board.url)


def _holds_romfs_deploy(board, folder) -> bool:
    """Whether the board holds ``folder`` as a ROMFS deploy leaves it (the blob in /rom, verified)."""
    try:
        verify(folder, board.url)
    except DeployError:
        return False
    return mpremote(board.url, "exec", "import os; print(os.listdir('/rom'))").strip() == f"['{BLOB}']"


def test_writable_romfs_ioctls_behave_like_flash(romfs_board):
    """The replacement vfs_rom_ioctl.c on the partition's last 4 KB block (outside any image):
    erase size, minimum write, write only after an erase, bounds and alignment."""
    _, size = ports.romfs_partition(BOARD)
    last = size - ports.ROMFS_ERASE_SIZE
    out = mpremote(romfs_board.url, "exec", f"""
import vfs
r = vfs.rom_ioctl
m = r(2, 0)
print(r(1), r(6, 0), len(m))
print(r(5, 0), r(4, 0, {last}, b'abcd'))           # no erase in this session: refused
print(r(3, 0, {last}, 8), bytes(m[{last}:{last} + 4]).hex(), bytes(m[{size - 4}:]).hex())
print(r(4, 0, {last}, b'abcd'), r(4, 0, {last} + 2, b'abcd'), r(4, 0, {last}, b'abc'), r(4, 0, {size - 4}, b'abcdefgh'))
print(bytes(m[{last}:{last} + 8]).hex())
print(r(3, 0, {size - 4}, 8), r(3, 0, -4, 4), r(3, 0, {size + 1}), r(3, 1, 4), r(7, 0), r(5, 0),
      r(4, 0, {last}, b'efgh'))
""").splitlines()
    assert out[0].split() == ["1", str(ports.ROMFS_ERASE_SIZE), str(size)]
    assert out[1].split() == ["0", "-5"]                      # WRITE_COMPLETE ok; WRITE unerased: -EIO
    assert out[2].split() == [str(ports.ROMFS_MIN_WRITE), "ffffffff", "ffffffff"]  # the whole block erased
    assert out[3].split() == ["0", "-22", "-22", "-22"]       # misaligned offset or length, past the end
    assert out[4] == "61626364ffffffff"
    assert out[5].split() == ["-22", "-22", "-22", "-22", "-22", "0", "-5"]
