# The native MicroPython module squeezeedge.mpy (MicroPython's py/dynruntime.mk). `squeezeedge
# build --micropython` copies this file as Makefile into a folder with every source below (the
# firmware core, this directory's glue, a model package compiled with weights="blob") and runs
#   make MPY_DIR=<MicroPython source> ARCH=x64|armv6m|armv7m|armv7emsp|rv32imc [MPY_CROSS=<mpy-cross>]
MOD = squeezeedge
SRC = modsqueezeedge.c se_blob.c se_case.c se_classify.c se_decode.c se_json.c se_names.c se_protocol.c se_tokenizer.c \
      se_utf8.c \
      model.c model_meta.c squeezeedge_natmod.py
ARCH ?= x64
# memcmp, strlen, strcmp: RISC-V builds link picolibc's (dynruntime.mk), the others link no libc
ifeq ($(filter rv32imc rv64imc,$(ARCH)),)
SRC += string_cmp.c
endif
# libgcc for the integer division helpers of the Cortex-M0 and RV32 (no divide instruction on M0).
LINK_RUNTIME = 1
# keep string_cmp.c's loops from being turned back into calls to memcmp/strlen
CFLAGS_EXTRA += -fno-tree-loop-distribute-patterns -Wno-unused-function
# -O2 after dynruntime.mk's -Os: the kernels want their loops unrolled (as in the C firmware)
CFLAGS_EXTRA += -O2
# The home's names table is se_engine.h's (600 names, 2,048 tokens, 7.7 KB); a smaller one:
# make ... SE_CFLAGS="-DSE_NAMES_MAX=200 -DSE_NAMES_IDS_MAX=700"
CFLAGS_EXTRA += $(SE_CFLAGS)
include $(MPY_DIR)/py/dynruntime.mk
