# SqueezeEdge — `make demo` and `make test` work on a fresh machine; both run `setup` first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# System packages the toolchain needs (later issues add cross compilers, QEMU, mosquitto).
APT_PACKAGES ?= build-essential gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm qemu-system-misc gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf gcc-xtensa-lx106 libffi-dev pkg-config libmosquitto-dev mosquitto stm32flash dfu-util

.PHONY: setup system-packages bench-deps demo test bench clean

setup: system-packages $(VENV)/.installed

# Installs what is missing when run as root; otherwise prints the apt command to run.
system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "Missing system packages. Run: sudo apt-get install -y $$missing"; exit 1; fi; \
	fi

$(VENV)/.installed: pyproject.toml | system-packages
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: setup
	$(VENV)/bin/squeezeedge demo

# The peers of `squeezeedge bench` (ONNX Runtime, LiteRT, TFLite Micro) and matplotlib: tests
# run their adapters too, so `make test` installs them (about a minute on a fresh machine).
# litert-torch cannot be in the `bench` extra (pyproject.toml says why): it is installed on its
# own, then typing-extensions is set back to what apache-tvm-ffi needs.
$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) -m pip install -q 'litert-torch==0.10.0' 'torch==2.13.0'
	$(PY) -m pip install -q 'typing-extensions==4.16.0'
	touch $@

bench-deps: setup $(VENV)/.bench-installed

test: bench-deps
	$(PY) -m pytest

# SqueezeEdge against its peers: benchmarks/RESULTS.md and its plots. Options: BENCH_ARGS=...
bench: bench-deps
	$(VENV)/bin/squeezeedge bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
