"""The wheel works anywhere (issue 16): built from the checkout, installed with pip into a fresh
venv outside it, the `squeezeedge` command classifies with the emulator, builds a board's firmware
and runs the demo and bench-e2e from a directory that is not the checkout. The firmware sources and the shipped
models travel as package data (squeezeedge.resources finds them); no build writes into the package.

The steps and their times are printed (CI's log shows them): run with -s or see the lines marked
[wheel]. About 2 minutes, most of it pip installing torch and TVM from its cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SENTENCE = "turn off the kitchen lights"
# What a build in the checkout can leave in firmware/ (a port's default BUILD_DIR, idf.py's
# outputs and sdkconfig, which may hold Wi-Fi credentials, bytecode): planted in the copy the
# wheel is built from, none may reach the wheel.
BUILD_PRODUCTS = ("firmware/ports/stm32f4/build/main.o", "firmware/fuzz/build/fuzz_json", "firmware/ports/esp32/sdkconfig",
                  "firmware/ports/esp32/build/squeezeedge.bin", "firmware/ports/esp32/model/model.c",
                  "firmware/__pycache__/__init__.cpython-311.pyc")


def run(cmd, log: list[str], timeout: float = 900, **kw) -> subprocess.CompletedProcess:
    """Run ``cmd``; record it and its wall time in ``log``; fail with its output's tail on error."""
    started = time.monotonic()
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    where = f" (cwd {kw['cwd']})" if "cwd" in kw else ""
    log.append(f"$ {' '.join(map(str, cmd))}{where}: exit {r.returncode}, {time.monotonic() - started:.1f} s")
    assert r.returncode == 0, f"{cmd} failed:\n{(r.stdout + r.stderr)[-4000:]}"
    return r


def show(capsys, log: list[str]) -> None:
    """Print the steps logged so far past pytest's capture (CI's log shows them), once."""
    with capsys.disabled():
        print("".join(f"\n[wheel] {line}" for line in log), flush=True)
    log.clear()


def source_files() -> list[str]:
    """The checkout's files as a fresh clone has them (tracked, plus new files not ignored)."""
    r = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f"git ls-files failed (the wheel is built from the git checkout's files): {r.stderr}"
    return [f for f in r.stdout.splitlines() if (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(wheel path, the source files it was built from, log): `pip wheel .` of a copy of the
    checkout with build products planted in firmware/ (the checkout itself is left untouched:
    setuptools writes build/ and *.egg-info into the tree it builds)."""
    log: list[str] = []
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    files = source_files()
    for f in files:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    for f in BUILD_PRODUCTS:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        (src / f).write_bytes(b"build product")
    log.append(f"copied {len(files)} source files of {ROOT} to {src}, planted {len(BUILD_PRODUCTS)} build products")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", tmp / "dist"], log)
    wheels = list((tmp / "dist").glob("squeezeedge-*.whl"))
    assert len(wheels) == 1, wheels
    log.append(f"built {wheels[0].name} ({wheels[0].stat().st_size:,} bytes)")
    yield wheels[0], files, log
    shutil.rmtree(tmp, ignore_errors=True)


def test_the_wheel_carries_the_firmware_and_models_and_no_build_products(built, capsys):
    wheel, files, log = built
    names = set(zipfile.ZipFile(wheel).namelist())
    firmware = {f for f in files if f.startswith("firmware/") and not Path(f).name.startswith(".")}
    missing = sorted(f for f in firmware if f"squeezeedge/{f}" not in names)
    assert not missing, f"firmware sources missing from the wheel: {missing}"
    for f in ("firmware/core/se_protocol.c", "firmware/ports/host/Makefile", "firmware/ports/stm32f4/stm32f405.ld",
              "firmware/ports/esp32/sdkconfig.defaults", "firmware/ports/esp32/main/Kconfig.projbuild",
              "firmware/micropython/natmod.mk", "firmware/fuzz/Makefile"):
        assert f"squeezeedge/{f}" in names, f
    models = [f for f in files if f.startswith("models/pretrained/") and f.endswith(".semodel")]
    assert models and all(f"squeezeedge/{f}" in names for f in models), models
    assert "squeezeedge/models/data/out_of_scope_train.txt" in names
    language_data = [f for f in files if f.startswith("models/data/languages/") and not f.endswith(".md")]
    assert language_data and all(f"squeezeedge/{f}" in names for f in language_data), language_data
    assert "squeezeedge/micropython/qemu_vfs_rom_ioctl.c" in names
    planted = [f for f in BUILD_PRODUCTS if f"squeezeedge/{f}" in names]
    assert not planted, f"build products in the wheel: {planted}"
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".o"))]
    assert all(n.startswith(("squeezeedge/", "squeezeedge-")) for n in names), sorted(names)[:5]
    log.append(f"the wheel holds {len(firmware)} firmware files, {len(models)} shipped models, no build products")
    show(capsys, log)


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory):
    """(venv, an empty working directory outside the checkout, env, log): the wheel and its
    dependencies pip-installed into a fresh venv (no --system-site-packages, nothing editable)."""
    wheel, _, log = built
    tmp = tmp_path_factory.mktemp("fresh")
    venv = tmp / "venv"
    started = time.monotonic()
    run([sys.executable, "-m", "venv", venv], log)
    run([venv / "bin/python", "-m", "pip", "install", "-q", "-c", ROOT / "constraints.txt", wheel], log)
    log.append(f"wheel installed in a fresh venv outside the repo: {venv} ({time.monotonic() - started:.0f} s "
               "with its dependencies)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "MICROPY_DIR")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               # a fresh cache: every C build below uses the installed sources (the checkout's
               # cached builds have the same keys and would hide a missing file)
               SQUEEZEEDGE_CACHE=str(tmp / "cache"))
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    yield venv, cwd, env, log
    shutil.rmtree(tmp, ignore_errors=True)  # 1.5 GB (torch, TVM); pytest keeps its last three temp dirs


def package_files(venv: Path) -> set[str]:
    pkg = next(venv.glob("lib/python*/site-packages/squeezeedge"))
    return {str(p.relative_to(pkg)) for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_the_installed_wheel_works_from_another_directory(installed, capsys):
    venv, cwd, env, log = installed
    assert ROOT not in cwd.parents and ROOT not in venv.parents
    before = package_files(venv)
    se = venv / "bin" / "squeezeedge"

    where = json.loads(run([venv / "bin/python", "-c", "import json, squeezeedge, squeezeedge.resources as r; "
                            "print(json.dumps([squeezeedge.__file__, str(r.FIRMWARE_DIR), str(r.DEFAULT_MODEL), "
                            "str(r.CHECKOUT)]))"], log, cwd=cwd, env=env).stdout)
    log.append(f"squeezeedge is {where[0]}; firmware {where[1]}")
    for path in where[:3]:
        assert Path(path).is_relative_to(venv) and not Path(path).is_relative_to(ROOT), path
    assert where[3] == "None"

    assert "classify" in run([se, "--help"], log, cwd=cwd, env=env).stdout
    emulator = json.loads(run([se, "classify", "--engine", "emulator", SENTENCE], log, cwd=cwd, env=env).stdout)
    reference = json.loads(run([se, "classify", "--engine", "reference", SENTENCE], log, cwd=cwd, env=env).stdout)
    assert emulator == reference and emulator["intent"] == "HassTurnOff", (emulator, reference)
    log.append(f"emulator == reference: {json.dumps(emulator)}")

    run([se, "build", "--board", "stm32f405", "-o", "fw"], log, cwd=cwd, env=env)
    images = {p.name: p.stat().st_size for p in (cwd / "fw").iterdir()}
    assert images.get("firmware.elf") and images.get("firmware.bin"), images
    log.append(f"stm32f405 image: {images}")

    demo = run([se, "demo"], log, cwd=cwd, env=env).stdout
    answers = demo.count("\n> ")
    assert answers >= 10 and demo.count("equal to the integer reference") == answers, demo[-2000:]
    assert ".venv/bin/activate" not in demo  # the checkout's hint does not apply here
    log.append(f"demo: {answers} answers over serial and MQTT, all equal to the integer reference")

    run([se, "bench-e2e", "-n", "20", "--in-flight", "5"], log, cwd=cwd, env=env)
    assert "serial" in (cwd / "benchmarks" / "E2E.md").read_text()  # installed: benchmarks/ of the cwd
    log.append("bench-e2e wrote benchmarks/E2E.md in the working directory")

    assert package_files(venv) == before, "a command wrote into the installed package"
    assert any((Path(env["SQUEEZEEDGE_CACHE"])).iterdir()), "the builds went to the cache"
    log.append("nothing written into the installed package; builds in $SQUEEZEEDGE_CACHE")
    show(capsys, log)


def test_the_installed_wheel_finds_shared_sources_from_the_working_directory(installed, capsys):
    """Installed, ../shared is looked up from the current directory ($MICROPY_DIR first); without
    one, the message names the places and the pinned clone command."""
    venv, cwd, env, log = installed
    code = "from squeezeedge.micropython.source import micropython_dir; print(micropython_dir())"
    r = subprocess.run([venv / "bin/python", "-c", code], cwd=cwd, env=env, capture_output=True, text=True)
    assert r.returncode != 0
    assert f"{cwd}/shared/micropython" in r.stderr and "git clone https://github.com/micropython/micropython" in r.stderr
    fake = cwd / "shared" / "micropython"
    (fake / "py").mkdir(parents=True)
    (fake / "py" / "dynruntime.mk").write_text("")
    out = run([venv / "bin/python", "-c", code], log, cwd=cwd, env=env).stdout.strip()
    assert out == str(fake)
    log.append(f"./shared/micropython of the working directory found: {out}")
    show(capsys, log)
