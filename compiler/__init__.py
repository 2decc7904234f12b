"""Apache TVM 0.27 → plain, dependency-free C for the int8 SqueezeBERT (bit-exact with
``models/reference.py``).

Public API: ``compile_model(model, target) -> Package`` (``.write(dir)``), ``CompileError``,
``TARGETS``, ``CEngine`` (host ctypes engine). Each loads on first use: importing TVM takes
seconds, and the tools that only need ``TARGETS`` must not pay for it.
"""

_LAZY = {"Package": "package", "compile_model": "package", "CompileError": "relax_graph", "TARGETS": "targets",
         "CEngine": "host_engine"}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
