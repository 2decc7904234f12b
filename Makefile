# SqueezeEdge — `make demo` and `make test` work on a fresh machine; both run `setup` first.
#   setup       system packages (apt) and .venv with the project installed (editable), `[test]` extra
#   demo        setup, then `squeezeedge demo`
#   bench-deps  setup, then the `[bench]` extra and litert-torch (the peers of `squeezeedge bench`)
#   test        bench-deps, then pytest (what CI runs: .ci/run)
#   bench       bench-deps, then `squeezeedge bench` (benchmarks/RESULTS.md)
#   fuzz        setup, then the libFuzzer harnesses of firmware/fuzz for FUZZ_SECONDS each (default 600)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# System packages: the compiler and cross compilers (Arm, RISC-V, Xtensa LX106), QEMU, the
# MQTT broker and libmosquitto for the emulator, openssl (test certificates), the STM32
# flashing tools, clang (libFuzzer harnesses).
APT_PACKAGES ?= build-essential clang openssl gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm qemu-system-misc gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf gcc-xtensa-lx106 libffi-dev pkg-config libmosquitto-dev mosquitto stm32flash dfu-util

# Every pip call: quiet, pinned by constraints.txt (typing-extensions), its whole output
# in $(SETUP_LOG) (the last step's); only when pip fails is the log's tail printed, with the log's path.
# (Without this, setup prints ~90 lines of setuptools warnings and pip's "dependency
# conflicts" notes, all harmless, before anything useful.)
SETUP_LOG := $(VENV)/setup.log
PIP = @pip_q() { echo "pip install $$*  (log: $(SETUP_LOG))"; \
	$(PY) -m pip install -q -c constraints.txt "$$@" >>$(SETUP_LOG) 2>&1 || { tail -n 40 $(SETUP_LOG); \
	echo "pip install $$* failed; its full output: $(SETUP_LOG)"; exit 1; }; }; pip_q
# A venv is usable when the command starts. A stamp is written only after its step succeeded,
# and a venv whose `squeezeedge --help` fails (an interrupted or broken install) loses its
# stamps, so setup installs again (make reads a stamp's time once, hence the sub-make).
VENV_WORKS = $(VENV)/bin/squeezeedge --help >/dev/null 2>&1

.PHONY: setup system-packages bench-deps demo test bench fuzz clean

setup: system-packages
	@$(VENV_WORKS) || rm -f $(VENV)/.installed $(VENV)/.bench-installed
	@$(MAKE) -s --no-print-directory $(VENV)/.installed

# Installs what is missing when run as root; otherwise prints the apt command to run.
system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "Missing system packages. Run: sudo apt-get install -y $$missing"; exit 1; fi; \
	fi

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@: >$(SETUP_LOG)
	$(PIP) --upgrade pip
	$(PIP) -e '.[test]'
	@$(VENV_WORKS) || { echo "squeezeedge --help fails after setup; log: $(SETUP_LOG)"; exit 1; }
	@touch $@

demo: setup
	$(VENV)/bin/squeezeedge demo

# The peers of `squeezeedge bench` (ONNX Runtime, LiteRT, TFLite Micro) and matplotlib: tests
# run their adapters too, so `make test` installs them (about a minute on a fresh machine).
# litert-torch, litert-converter and xdsl go in with --no-deps (pyproject.toml's `bench` extra
# says why, and already holds their other dependencies): neither call changes
# typing-extensions, so `squeezeedge` works at every point of this step.
$(VENV)/.bench-installed: $(VENV)/.installed
	@: >$(SETUP_LOG)
	$(PIP) -e '.[test,bench]'
	$(PIP) --no-deps litert-torch==0.10.0 litert-converter==0.5.0 xdsl==0.28.0
	@$(VENV_WORKS) || { echo "squeezeedge --help fails after bench-deps; log: $(SETUP_LOG)"; exit 1; }
	@touch $@

bench-deps: setup
	@$(MAKE) -s --no-print-directory $(VENV)/.bench-installed

test: bench-deps
	SQUEEZEEDGE_NO_SKIPS=1 $(PY) -m pytest

# SqueezeEdge against its peers: benchmarks/RESULTS.md and its plots. Options: BENCH_ARGS=...
bench: bench-deps
	$(VENV)/bin/squeezeedge bench $(BENCH_ARGS)

# The firmware core's libFuzzer harnesses (firmware/fuzz), longer than the 20 s each of `make test`.
FUZZ_SECONDS ?= 600
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) -m pytest -q -s tests/test_fuzz.py

clean:
	rm -rf $(VENV) build *.egg-info
