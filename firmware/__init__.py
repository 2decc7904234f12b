"""The firmware sources (C core, ports, Makefiles, linker scripts, the ESP-IDF project), shipped in
the wheel as package data of ``squeezeedge.firmware``; no Python code. This file makes the folder
a regular package, so ``importlib.resources.files("squeezeedge.firmware")`` is one real directory
both in a wheel and in an editable checkout (setuptools' editable finder does not resolve a
namespace package mapped under ``squeezeedge``). Use ``squeezeedge.resources``, not this package."""
