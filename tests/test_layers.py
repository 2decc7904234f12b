"""The package's layers, read from its source: every ``import`` (also those inside functions,
which run later but bind the modules together all the same) is an edge of one graph.

transports (transport, broker, mqtt) → device protocol client (names, engines) → tools
(emulator, boards, bridge, flash, bench, micropython, ...) → CLI (``squeezeedge.cli``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import squeezeedge
import squeezeedge.compiler
import squeezeedge.models

# In a checkout the package is three folders (pyproject.toml's package-dir); installed, one.
ROOTS = {p.__name__: Path(p.__file__).resolve().parent for p in (squeezeedge, squeezeedge.models, squeezeedge.compiler)}

BASE = {"squeezeedge.resources"}  # imports nothing of the package
TRANSPORTS = {"squeezeedge.transport", "squeezeedge.broker", "squeezeedge.mqtt", "squeezeedge.mqtt_topics"}
TOOLS_AND_UP = ("squeezeedge.emulator", "squeezeedge.boards", "squeezeedge.bridge", "squeezeedge.flash",
                "squeezeedge.esp_flash", "squeezeedge.bench", "squeezeedge.e2e_bench", "squeezeedge.engines",
                "squeezeedge.names", "squeezeedge.micropython", "squeezeedge.peers", "squeezeedge.xtensa_sim",
                "squeezeedge.icount", "squeezeedge.compiler_bench", "squeezeedge.model_selftest", "squeezeedge.targets",
                "squeezeedge.pipeline",
                "squeezeedge.compiler", "squeezeedge.cli")


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in ROOTS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if package == "squeezeedge" and parts and parts[0] in ("models", "compiler"):
                continue  # an installed package holds them: read from their own root
            found[".".join([package, *parts])] = path
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """module → {imported module of the package: line of the first such import}."""
    mods = modules()
    graph: dict[str, dict[str, int]] = defaultdict(dict)
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:  # `from . import x` imports the submodule x, not the package
                    targets.append(f"{source}.{alias.name}" if f"{source}.{alias.name}" in mods else source)
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if target in mods and target != name:
                    graph[name].setdefault(target, node.lineno)
    return graph


def cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def describe(graph, component) -> str:
    return "; ".join(f"{a} imports {b} (line {line})" for a in component for b, line in graph[a].items()
                     if b in component)


def test_the_graph_is_read_from_the_whole_package():
    graph = import_graph()
    assert len(modules()) > 60
    assert "squeezeedge.transport" in graph["squeezeedge.mqtt"]  # a top-level import
    assert "squeezeedge.emulator" in graph["squeezeedge.engines"]  # an import inside a function


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert [describe(graph, c) for c in cycles(graph)] == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}) == [["a", "b", "c"]]


def test_the_library_never_imports_the_cli():
    graph = import_graph()
    users = {m for m, targets in graph.items() for t in targets
             if t.startswith("squeezeedge.cli") and not m.startswith("squeezeedge.cli")}
    assert users <= {"squeezeedge.__main__"}


def test_the_base_imports_nothing_of_the_package():
    graph = import_graph()
    assert {m: sorted(graph.get(m, {})) for m in BASE} == {m: [] for m in BASE}


def test_transports_import_no_tool():
    graph = import_graph()
    upward = {(m, t) for m in TRANSPORTS for t in graph.get(m, {}) if t.startswith(TOOLS_AND_UP)}
    assert upward == set()


def test_the_compiler_imports_only_itself_and_the_models():
    """Benchmarks, QEMU harnesses and instruction counting live in the tools, not in compiler/
    (which may ask the base layer, resources, where the build cache is)."""
    def inside(module, package):  # squeezeedge.compiler_bench is not inside squeezeedge.compiler
        return module == package or module.startswith(package + ".")

    graph = import_graph()
    upward = {(m, t) for m, targets in graph.items() if inside(m, "squeezeedge.compiler")
              for t in targets if not (inside(t, "squeezeedge.compiler") or inside(t, "squeezeedge.models")
                                       or t in BASE)}
    assert upward == set()


def test_models_import_nothing_of_the_tools_or_the_compiler():
    """Only where the package's files are (resources: the shipped models, the data files)."""
    graph = import_graph()
    upward = {(m, t) for m, targets in graph.items() if m.startswith("squeezeedge.models")
              for t in targets if not t.startswith("squeezeedge.models") and t != "squeezeedge.resources"}
    assert upward == set()


def test_the_command_line_loads_without_tvm_or_torch():
    """What makes `squeezeedge send --help` start in a fraction of a second (timed in
    benchmarks/STARTUP.md by `squeezeedge bench --startup`, not here)."""
    code = ("import sys; from squeezeedge.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('tvm', 'torch', 'tvm_ffi', 'onnxruntime', 'hassil') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
