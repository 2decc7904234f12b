"""The Makefile's setup: every pip call pinned by constraints.txt, litert-torch's conflict
handled without ever changing typing-extensions, stamps only after success, a broken venv
repaired by `make setup`, pip's output kept in a log unless it fails.

What this proves and what it does not: the recipes run for real (GNU make, the shell code),
but against a stand-in `.venv` whose `python` records its arguments instead of running pip,
so that the test takes a second. That real pip accepts these calls and never leaves
`squeezeedge --help` failing in between was measured by hand (a fresh venv, `--help` polled
every second through `make bench-deps`: no failure); the metadata test below checks, on this
venv, the fact it rests on (the `bench` extra holds all that the --no-deps packages need).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NO_DEPS = ("litert-torch", "litert-converter", "xdsl")



def fake_project(tmp_path: Path, *, pip_fails: bool = False, venv_works: bool = True) -> Path:
    """The Makefile and its inputs in tmp_path, and a stand-in .venv: `python` logs its argv
    (and prints pip-like noise); `squeezeedge --help` works once a pip install has 'run'."""
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    bin_ = tmp_path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    venv = bin_.parent
    (bin_ / "python").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {venv}/calls\n'
        "for i in $(seq 90); do echo \"  setuptools warning line $i\"; done\n"
        "echo 'ERROR: pip dependency conflicts block'\n"
        + ("exit 1\n" if pip_fails else f"touch {venv}/installed-something\n")
    )
    works = "exit 0" if venv_works else f"test -e {venv}/installed-something"
    (bin_ / "squeezeedge").write_text(f"#!/bin/sh\n{works}\n")
    for f in ("python", "squeezeedge"):
        (bin_ / f).chmod(0o755)
    return tmp_path


def make(project: Path, *targets: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MAKEFLAGS": ""}
    return subprocess.run(["make", "--no-print-directory", "APT_PACKAGES=", *targets], cwd=project,
                          capture_output=True, text=True, timeout=60, env=env)


def calls(project: Path) -> list[str]:
    path = project / ".venv" / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_constraints_pin_typing_extensions():
    pins = [line.split("#")[0].strip() for line in (ROOT / "constraints.txt").read_text().splitlines()]
    assert "typing-extensions==4.16.0" in pins


def test_every_pip_call_is_constrained_and_litert_torch_goes_in_without_deps(tmp_path):
    project = fake_project(tmp_path)
    run = make(project, "bench-deps")
    assert run.returncode == 0, run.stdout + run.stderr
    pip_calls = [c for c in calls(project) if c.startswith("-m pip install")]
    assert pip_calls == [
        "-m pip install -q -c constraints.txt --upgrade pip",
        "-m pip install -q -c constraints.txt -e .[test]",
        "-m pip install -q -c constraints.txt -e .[test,bench]",
        "-m pip install -q -c constraints.txt --no-deps litert-torch==0.10.0 litert-converter==0.5.0 xdsl==0.28.0",
    ]
    # Nothing ever installs typing-extensions by itself (the old recipe's repair step), and
    # the packages that cap it never go through pip's resolver.
    assert not any("typing" in c for c in pip_calls)
    for c in pip_calls:
        if any(p in c for p in NO_DEPS):
            assert "--no-deps" in c
    assert (project / ".venv" / ".installed").exists() and (project / ".venv" / ".bench-installed").exists()


def test_setup_output_is_quiet_and_the_log_keeps_pips_output(tmp_path):
    project = fake_project(tmp_path)
    run = make(project, "setup")
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout + run.stderr
    assert "setuptools warning" not in out and "dependency conflicts" not in out
    assert len(out.splitlines()) <= 3, out
    assert "setuptools warning line 90" in (project / ".venv" / "setup.log").read_text()


def test_a_failing_pip_shows_its_log_and_leaves_no_stamp(tmp_path):
    project = fake_project(tmp_path, pip_fails=True)
    run = make(project, "setup")
    assert run.returncode != 0
    assert "dependency conflicts" in run.stdout  # the log's tail, only now
    assert "full output: .venv/setup.log" in run.stdout
    assert not (project / ".venv" / ".installed").exists()


def test_setup_repairs_a_venv_whose_command_fails_even_with_its_stamps(tmp_path):
    """An interrupted install: stamps present (and newer than pyproject.toml), but
    `squeezeedge --help` fails. `make setup` (and so `make demo`) installs again."""
    project = fake_project(tmp_path, venv_works=False)
    for stamp in (".installed", ".bench-installed"):
        (project / ".venv" / stamp).touch()
    run = make(project, "setup")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "-m pip install -q -c constraints.txt -e .[test]" in calls(project)
    assert (project / ".venv" / ".installed").exists()
    assert not (project / ".venv" / ".bench-installed").exists()  # bench-deps reinstalls it next
    # and a working venv with its stamps is left alone
    (project / ".venv" / "calls").unlink()
    assert make(project, "setup").returncode == 0 and calls(project) == []


def test_demo_depends_on_setup():
    text = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: setup$", text, re.M)
    assert re.search(r"^bench-deps: setup$", text, re.M) and re.search(r"^test: bench-deps$", text, re.M)


def _name(req: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


def test_the_bench_extra_holds_every_dependency_of_the_no_deps_packages():
    """--no-deps is safe only if the `bench` extra (resolved by pip) already brings what
    litert-torch, litert-converter and xdsl need, less typing-extensions' cap; and the extra must
    not name them (or ai-edge-litert's model-utils extra, which pulls xdsl) itself."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["bench"]}
    assert not listed & set(NO_DEPS)
    assert not any("model-utils" in r for r in project["optional-dependencies"]["bench"])
    try:
        requires = [r for p in NO_DEPS for r in (metadata.requires(p) or [])]
    except metadata.PackageNotFoundError as e:
        pytest.fail(f"{e} is not installed: `make bench-deps` installs the benchmark peers", pytrace=False)
    needed = {_name(r) for r in requires if "extra ==" not in r} - {"typing-extensions"} - {_name(p) for p in NO_DEPS}
    assert needed <= listed, sorted(needed - listed)
