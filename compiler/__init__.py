"""Apache TVM 0.27 → plain, dependency-free C for the int8 SqueezeBERT (bit-exact with
``models/reference.py``).

Public API: ``compile_model(model, target) -> Package`` (``.write(dir)``), ``CEngine``
(host ctypes engine), ``add_compile_parser`` (the ``squeezeedge compile`` sub-command).
"""

from .package import Package, compile_model  # noqa: F401
from .relax_graph import CompileError  # noqa: F401
from .targets import TARGETS  # noqa: F401


def __getattr__(name):  # heavy / optional pieces load on demand
    if name == "CEngine":
        from .host_engine import CEngine

        return CEngine
    if name == "add_compile_parser":
        from .cli import add_compile_parser

        return add_compile_parser
    raise AttributeError(name)
