"""The documents say what the repository has and what its tools print (issue 18)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tracked(pattern: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", pattern], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, f"git ls-files failed (the docs are checked in a git checkout): {out.stderr}"
    return out.stdout.split()


def test_every_markdown_file_a_document_names_is_in_the_repository():
    """README cited DESIGN.md (and THIRD_PARTY.md), which are not in the repository."""
    docs = tracked("*.md")
    missing = []
    for doc in docs:
        text = re.sub(r"https?://\S+", "", (ROOT / doc).read_text())
        for ref in set(re.findall(r"[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b", text)):
            here = (ROOT / doc).parent / ref
            named = any(p == ref or p.endswith("/" + ref) for p in docs)  # e.g. "data/README.md"
            if not (here.exists() or (ROOT / ref).exists() or named):
                missing.append(f"{doc}: {ref}")
    assert not missing, missing


def test_the_makefile_header_describes_its_targets():
    text = (ROOT / "Makefile").read_text()
    header = text.split("\nPYTHON")[0]
    assert "later issues" not in text
    phony = re.search(r"^\.PHONY:(.*)$", text, re.M).group(1).split()
    for target in set(phony) - {"system-packages", "clean"}:
        assert re.search(rf"^#\s+{re.escape(target)}\s", header, re.M), target


def test_readme_weights_are_what_compile_prints():
    """README's "weights B" of the shipped model is `squeezeedge compile`'s "weights (flash)"."""
    from squeezeedge.compiler.package import compile_model
    from squeezeedge.models.engine import DEFAULT_MODEL
    from squeezeedge.models.model_file import IntModel

    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| shipped \| (?:cortex-m4|rv32imc) \| [\d,]+ \| [\d,]+ \| [\d,]+ \| ([\d,]+) \|", readme, re.M)
    assert len(rows) == 2
    model = IntModel.load(DEFAULT_MODEL)
    compiled = compile_model(model, "host", measure=False).info["weight_bytes"]
    assert {int(r.replace(",", "")) for r in rows} == {compiled}
    assert f"({model.weight_bytes():,} B)" in " ".join(readme.split())  # the model file's, explained


def test_readme_says_qemus_time_is_not_the_chips():
    """QEMU's time_us swings with the host's load (17-3,213 µs seen for similar commands)."""
    readme = (ROOT / "README.md").read_text()
    stm32 = " ".join(readme.split("## STM32F4", 1)[1].split("\n## ", 1)[0].split())
    assert "not cycle-accurate" in stm32 and "--icount" in stm32 and "--image" in stm32
