"""MicroPython's ports built from the pinned tree, run for real (unix binary, QEMU boards, mpremote).

No mocks and no skips: a missing compiler, QEMU or mpremote is a failure with the apt/pip
package to install (CI installs everything). Builds are cached (ports.py), so after the first run
the file takes about a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from squeezeedge.micropython import mpyfile, ports
from squeezeedge.micropython.deploy import DeployError, deploy
from squeezeedge.micropython.source import COMMIT, MPY_VERSION, MicroPythonError, micropython_dir

MPREMOTE = [sys.executable, "-m", "mpremote"]


def mpremote(url: str, *args: str, timeout: float = 60) -> str:
    r = subprocess.run([*MPREMOTE, "connect", url, *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"mpremote {' '.join(args)} failed: {r.stdout}{r.stderr}"
    return r.stdout


# ---- builds, once per session ----

@pytest.fixture(scope="session")
def unix_micropython() -> Path:
    return ports.unix(progress=print)


@pytest.fixture(scope="session")
def an500_elf() -> Path:
    return ports.qemu("MPS2_AN500", progress=print)


@pytest.fixture(scope="session")
def rv32_elf() -> Path:
    return ports.qemu("VIRT_RV32", progress=print)


def build_natmod(arch: str, out_dir: Path) -> Path:
    """examples/natmod/features0 built for ``arch`` (a real native .mpy), copied out of the
    read-only tree and built with the venv's Python (mpy_ld needs pyelftools)."""
    src = micropython_dir() / "examples/natmod/features0"
    work = out_dir / f"features0-{arch}"
    shutil.copytree(src, work)
    r = subprocess.run(["make", "-C", str(work), f"ARCH={arch}", f"MPY_DIR={micropython_dir()}",
                        f"PYTHON={sys.executable}", f"MPY_CROSS={ports.mpy_cross()}"],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"building features0 for {arch} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
    return work / "features0.mpy"


def deploy_folder(mpy: Path, out: Path, arch: str) -> Path:
    """A folder shaped like `squeezeedge build --micropython` output (for the deploy mechanics)."""
    out.mkdir()
    shutil.copyfile(mpy, out / "squeezeedge.mpy")
    (out / "squeezeedge.bin").write_bytes(os.urandom(4096))
    fmt = mpyfile.MpyFormat.from_file(mpy)
    (out / "manifest.json").write_text(json.dumps({
        "arch": arch, "mpy_version": list(fmt.version_pair), "mpy_sub_version": fmt.sub_version,
        "files": {"squeezeedge.mpy": "module", "squeezeedge.bin": "weights"}}))
    return out


# ---- source ----

def test_micropython_dir_error_says_how_to_fetch(monkeypatch, tmp_path):
    monkeypatch.setenv("MICROPY_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(MicroPythonError) as e:
        micropython_dir()
    msg = str(e.value)
    assert "nowhere" in msg and "not a MicroPython source tree" in msg
    assert f"git -C micropython checkout {COMMIT}" in msg
    assert "git clone https://github.com/micropython/micropython" in msg
    assert "submodule update --init lib/micropython-lib" in msg and "export MICROPY_DIR=" in msg


# ---- unix port ----

def test_mpy_cross_and_unix_port(unix_micropython, tmp_path):
    out = subprocess.run([unix_micropython, "-c", "print(1+1)"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "2", out.stderr
    (tmp_path / "m.py").write_text("X = 40 + 2\n")
    subprocess.run([ports.mpy_cross(), str(tmp_path / "m.py")], check=True)
    assert (tmp_path / "m.mpy").read_bytes()[:2] == b"M" + bytes([MPY_VERSION[0]])
    out = subprocess.run([unix_micropython, "-c", "import sys; sys.path.insert(0, '.'); import m; print(m.X, sys.implementation._mpy)"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=30)
    x, mpy = out.stdout.split()
    board = mpyfile.MpyFormat.from_sys_mpy(int(mpy))
    assert x == "42" and board.version_pair == MPY_VERSION and board.arch == "x64"


def test_second_build_is_cached(unix_micropython):
    import time

    t = time.monotonic()
    assert ports.unix() == unix_micropython
    assert time.monotonic() - t < 2


def test_unix_imports_umqtt(unix_micropython):
    out = subprocess.run([unix_micropython, "-c", "from umqtt.simple import MQTTClient; print(MQTTClient.__name__)"],
                         capture_output=True, text=True, env=ports.unix_env(), timeout=30)
    assert out.stdout.strip() == "MQTTClient", out.stderr


def test_x64_natmod_runs_on_unix(unix_micropython, tmp_path):
    mpy = build_natmod("x64", tmp_path)
    fmt = mpyfile.MpyFormat.from_file(mpy)
    assert (fmt.version_pair, fmt.arch) == (MPY_VERSION, "x64")
    out = subprocess.run([unix_micropython, "-c", "import features0; print(features0.factorial(10))"],
                         capture_output=True, text=True, cwd=mpy.parent, env=ports.unix_env(), timeout=30)
    assert out.stdout.strip() == "3628800", out.stderr


# ---- qemu boards ----

@pytest.mark.parametrize("board", ["MPS2_AN500", "VIRT_RV32"])
def test_qemu_board_answers_mpremote(board, an500_elf, rv32_elf):
    elf = {"MPS2_AN500": an500_elf, "VIRT_RV32": rv32_elf}[board]
    with ports.MicroPythonQemu(board, elf) as q:
        assert mpremote(q.url, "exec", "print(1+1)").strip() == "2"
        # QEMU takes the next client after mpremote hangs up
        mpy = int(mpremote(q.url, "exec", "import sys; print(sys.implementation._mpy)"))
    fmt = mpyfile.MpyFormat.from_sys_mpy(mpy)
    assert fmt.version_pair == MPY_VERSION
    assert fmt.arch == {"MPS2_AN500": "armv7emdp", "VIRT_RV32": "rv32imc"}[board]


def test_romfs_image_is_aligned_and_mounted_at_rom(an500_elf, tmp_path):
    files = {}
    for name, size in [("a.txt", 3), ("weights.bin", 1000), ("sub/x.bin", 17), ("odd-name-1.bin", 5)]:
        p = tmp_path / "in" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
        files[name] = p
    img = ports.romfs_image(files, tmp_path / "t.romfs")
    offsets = ports.romfs_file_offsets(img.read_bytes())
    assert set(offsets) == set(files) and all(o % 4 == 0 for o in offsets.values()), offsets
    start, _ = ports.romfs_partition("MPS2_AN500")
    check = ("import os, hashlib, uctypes, binascii\n"
             "print(sorted(os.listdir('/rom')))\n"
             "for n in ('a.txt', 'weights.bin', 'sub/x.bin', 'odd-name-1.bin'):\n"
             "    m = memoryview(open('/rom/' + n, 'rb'))\n"
             "    print(n, uctypes.addressof(m), binascii.hexlify(hashlib.sha256(m).digest()).decode())\n")
    with ports.MicroPythonQemu("MPS2_AN500", an500_elf, img) as q:
        lines = mpremote(q.url, "exec", check).splitlines()
    assert lines[0] == str(sorted(["a.txt", "weights.bin", "sub", "odd-name-1.bin"]))
    import hashlib

    for line in lines[1:]:
        name, addr, digest = line.split()
        assert int(addr) == start + offsets[name], (name, hex(int(addr)))  # zero-copy: in ROM, in place
        assert int(addr) % 4 == 0
        assert digest == hashlib.sha256(files[name].read_bytes()).hexdigest()


def test_mpremote_romfs_builder_does_not_align(tmp_path):
    """The fact the aligned writer exists for: mpremote's plain builder leaves data unaligned."""
    from mpremote.romfs import make_romfs

    d = tmp_path / "d"
    d.mkdir()
    (d / "ab.bin").write_bytes(bytes(10))
    (d / "weights.bin").write_bytes(bytes(100))
    offsets = ports.romfs_file_offsets(make_romfs(str(d), mpy_cross=False))
    assert any(o % 4 for o in offsets.values()), offsets


# ---- deploy ----

def test_deploy_refuses_wrong_arch_and_says_qemu_has_no_filesystem(an500_elf, tmp_path):
    x64 = deploy_folder(build_natmod("x64", tmp_path), tmp_path / "x64", "x64")
    arm = deploy_folder(build_natmod("armv7emsp", tmp_path), tmp_path / "arm", "armv7emsp")
    with ports.MicroPythonQemu("MPS2_AN500", an500_elf) as q:
        with pytest.raises(DeployError) as e:
            deploy(x64, q.url)
        assert str(e.value) == ("The board's MicroPython runs armv7emdp native code, but squeezeedge.mpy is built "
                                "for x64: rebuild it with --arch armv7emdp")
        with pytest.raises(DeployError) as e:
            deploy(arm, q.url)
        assert "has no writable filesystem" in str(e.value) and "ROMFS is read-only" in str(e.value)
        assert "mpremote mount" in str(e.value)


def test_deploy_refuses_other_mpy_version(an500_elf, tmp_path):
    arm = deploy_folder(build_natmod("armv7emsp", tmp_path), tmp_path / "arm", "armv7emsp")
    data = bytearray((arm / "squeezeedge.mpy").read_bytes())
    data[2] = (data[2] & ~3) | 2  # sub-version 2: an .mpy from an older MicroPython
    (arm / "squeezeedge.mpy").write_bytes(bytes(data))
    manifest = json.loads((arm / "manifest.json").read_text())
    manifest["mpy_version"] = [6, 2]
    (arm / "manifest.json").write_text(json.dumps(manifest))
    with ports.MicroPythonQemu("MPS2_AN500", an500_elf) as q:
        with pytest.raises(DeployError, match=r"runs a MicroPython with \.mpy 6\.3, but squeezeedge\.mpy is \.mpy 6\.2"):
            deploy(arm, q.url)


def test_deploy_no_board_and_busy_port(tmp_path):
    import serial

    from squeezeedge.net import free_port

    folder = deploy_folder(build_natmod("armv7emsp", tmp_path), tmp_path / "arm", "armv7emsp")
    with pytest.raises(DeployError, match=r"^no board at socket://127\.0\.0\.1:\d+: nothing answers there"):
        deploy(folder, f"socket://127.0.0.1:{free_port()}")
    with pytest.raises(DeployError, match=r"^no board at /dev/ttyNOSUCH"):
        deploy(folder, "/dev/ttyNOSUCH")
    master, slave = os.openpty()  # a real tty held open, exclusively, by another "program"
    try:
        path = os.ttyname(slave)
        holder = serial.Serial(path, exclusive=True)
        try:
            with pytest.raises(DeployError, match=r"is busy: another program has it open"):
                deploy(folder, path)
        finally:
            holder.close()
    finally:
        os.close(master)
        os.close(slave)
