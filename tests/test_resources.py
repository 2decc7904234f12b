"""squeezeedge.resources in the checkout (the editable install) and its ../shared rule; the
installed wheel's side is tests/test_wheel.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from squeezeedge import resources

ROOT = Path(__file__).resolve().parent.parent


def test_in_the_checkout_the_files_are_the_repositorys():
    assert resources.CHECKOUT == ROOT
    assert resources.FIRMWARE_DIR == ROOT / "firmware" and (resources.CORE_DIR / "se_protocol.c").is_file()
    assert (resources.PORTS_DIR / "stm32f4" / "Makefile").is_file()
    assert resources.DEFAULT_MODEL == ROOT / "models" / "pretrained" / "default.semodel"
    assert resources.BENCH_DIR == ROOT / "benchmarks"


def _tree(path: Path) -> Path:
    (path / "py").mkdir(parents=True)
    (path / "py" / "dynruntime.mk").write_text("")
    return path


def test_shared_sources_next_to_the_checkout_or_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("MICROPY_DIR", raising=False)
    assert resources.shared_candidates("micropython") == [ROOT.parent / "shared" / "micropython"]
    monkeypatch.setattr(resources, "CHECKOUT", None)  # as installed from a wheel
    work = tmp_path / "project" / "sub"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert resources.shared_candidates("micropython") == [work / "shared" / "micropython",
                                                          work.parent / "shared" / "micropython"]
    find = lambda: resources.shared_dir("micropython", "MICROPY_DIR", "py/dynruntime.mk", "MicroPython",  # noqa: E731
                                        "git clone ...")
    with pytest.raises(resources.ResourceError) as e:
        find()
    assert "MICROPY_DIR is not set" in str(e.value) and str(work / "shared" / "micropython") in str(e.value)
    assert "git clone ..." in str(e.value)
    parent = _tree(work.parent / "shared" / "micropython")
    assert find() == parent
    here = _tree(work / "shared" / "micropython")
    assert find() == here                                   # ./shared before ../shared
    monkeypatch.setenv("MICROPY_DIR", str(parent))
    assert find() == parent                                 # the variable first
