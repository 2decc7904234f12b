"""Bare-metal test firmware for a model package: run compiled-in inputs under QEMU and print
the outputs, to compare bit for bit with the reference interpreter.

* cortex-m4: ``qemu-system-arm -M mps2-an386`` (Cortex-M4), output and exit via semihosting;
* rv32imc: ``qemu-system-riscv32 -M virt -bios none``, output on the 16550 UART, exit via the
  SiFive test device;
* xtensa (lx106): ``qemu-system-xtensa -M sim -cpu lx106``, output and exit via simcall
  semihosting.

Each input prints one line ``R <index> <status> <hex intent><hex slot rows 0..length-1>``,
then ``DONE``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from .compiler.targets import TARGETS

QEMU = {
    "cortex-m4": ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "none",
                  "-semihosting-config", "enable=on,target=native", "-kernel"],
    "rv32imc": ["qemu-system-riscv32", "-M", "virt", "-bios", "none", "-nographic", "-monitor", "none",
                "-serial", "stdio", "-kernel"],
    "xtensa": ["qemu-system-xtensa", "-M", "sim", "-cpu", "lx106", "-nographic", "-monitor", "none",
               "-serial", "none", "-semihosting", "-kernel"],
}

_HARNESS = r"""
#include <stdint.h>
#include "model.h"
#include "inputs.h"

static uint8_t arena[SE_MODEL_ARENA_BYTES + 1];
static int8_t intent[SE_MODEL_N_INTENTS];
static int8_t slots[SE_MODEL_MAX_LEN * SE_MODEL_N_TAGS];
static char line[16 + 2 * (SE_MODEL_N_INTENTS + SE_MODEL_MAX_LEN * SE_MODEL_N_TAGS)];

void se_putline(const char *s);  /* per target: print a NUL-terminated line */
void se_exit(int code);

static char *put_dec(char *p, int32_t v) {
  char tmp[12];
  int n = 0;
  if (v < 0) { *p++ = '-'; v = -v; }
  do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) *p++ = tmp[--n];
  return p;
}

static char *put_hex(char *p, const int8_t *v, int32_t count) {
  static const char hex[] = "0123456789abcdef";
  int32_t i;
  for (i = 0; i < count; ++i) {
    uint8_t b = (uint8_t)v[i];
    *p++ = hex[b >> 4];
    *p++ = hex[b & 15];
  }
  return p;
}

int main(void) {
  int32_t i, rc;
  for (i = 0; i < SE_N_INPUTS; ++i) {
    char *p = line;
    int32_t len = se_lengths[i];
    rc = se_model_run(se_ids + se_offsets[i], len, intent, slots, arena);
    *p++ = 'R'; *p++ = ' ';
    p = put_dec(p, i); *p++ = ' ';
    p = put_dec(p, rc); *p++ = ' ';
    if (rc == 0) {
      p = put_hex(p, intent, SE_MODEL_N_INTENTS);
      p = put_hex(p, slots, len * SE_MODEL_N_TAGS);
    }
    *p++ = '\n'; *p = 0;
    se_putline(line);
  }
  se_putline("DONE\n");
  se_exit(0);
  return 0;
}
"""

_ARM_START = r"""
#include <stdint.h>
extern int main(void);
extern uint32_t __stack_top, __bss_start, __bss_end, __data_start, __data_end, __data_load;
static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
void se_putline(const char *s) { semihost(0x04, s); }
void se_exit(int code) {
  uint32_t block[2] = {code == 0 ? 0x20026u : 0x20024u, (uint32_t)code};
  semihost(0x20, block);  /* SYS_EXIT_EXTENDED */
  semihost(0x18, (const void *)(uintptr_t)block[0]);
  for (;;) {}
}
void reset_handler(void) {
  uint32_t *s = &__data_load, *d = &__data_start;
  while (d < &__data_end) *d++ = *s++;
  for (d = &__bss_start; d < &__bss_end;) *d++ = 0;
  se_exit(main());
}
void fault_handler(void) { se_putline("FAULT\n"); se_exit(3); }
__attribute__((section(".vectors"), used)) static const void *vectors[16] = {
  &__stack_top, (void *)reset_handler, (void *)fault_handler, (void *)fault_handler,
  (void *)fault_handler, (void *)fault_handler, (void *)fault_handler,
};
"""

_ARM_LD = r"""
MEMORY { FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 4M
         RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = 4M }
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) } > FLASH
  .ARM.exidx : { *(.ARM.exidx*) } > FLASH
  __data_load = LOADADDR(.data);
  .data : { __data_start = .; *(.data*) . = ALIGN(4); __data_end = .; } > RAM AT > FLASH
  .bss (NOLOAD) : { __bss_start = .; *(.bss*) *(COMMON) . = ALIGN(4); __bss_end = .; } > RAM
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
}
"""

_RV_START = r"""
#include <stdint.h>
extern int main(void);
extern uint32_t __bss_start, __bss_end;
#define UART ((volatile uint8_t *)0x10000000)
void se_putline(const char *s) {
  while (*s) { while ((UART[5] & 0x20) == 0) {} UART[0] = (uint8_t)*s++; }
}
void se_exit(int code) {
  *(volatile uint32_t *)0x100000 = code == 0 ? 0x5555u : (((uint32_t)code << 16) | 0x3333u);
  for (;;) {}
}
void c_start(void) {
  uint32_t *d;
  for (d = &__bss_start; d < &__bss_end;) *d++ = 0;
  se_exit(main());
}
__asm__(".section .text.start\n.globl _start\n_start:\n la sp, __stack_top\n j c_start\n");
"""

_RV_LD = r"""
ENTRY(_start)
MEMORY { RAM (rwx) : ORIGIN = 0x80000000, LENGTH = 16M }
SECTIONS {
  .text : { *(.text.start) *(.text*) *(.rodata*) *(.srodata*) } > RAM
  .data : { *(.data*) *(.sdata*) } > RAM
  .bss (NOLOAD) : { . = ALIGN(4); __bss_start = .; *(.sbss*) *(.bss*) *(COMMON) . = ALIGN(4); __bss_end = .; } > RAM
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
}
"""

_XT_START = r"""
#include <stdint.h>
extern int main(void);
static int simcall(int nr, int a, int b, int c) {
  register int a2 __asm__("a2") = nr;
  register int a3 __asm__("a3") = a;
  register int a4 __asm__("a4") = b;
  register int a5 __asm__("a5") = c;
  __asm__ volatile("simcall" : "+r"(a2), "+r"(a3) : "r"(a4), "r"(a5) : "memory");
  return a2;
}
void se_putline(const char *s) {
  int n = 0;
  while (s[n]) ++n;
  simcall(4, 1, (int)(intptr_t)s, n);  /* SYS_write(stdout) */
}
void se_exit(int code) { simcall(1, code, 0, 0); for (;;) {} }
void c_start(void) { se_exit(main()); }
/* Reset vector of the sim machine (0x50000000): jump over the stack literal, set sp, go. */
__asm__(".section .text.start,\"ax\"\n.global _start\n.align 4\n_start:\n j 1f\n.align 4\n"
        ".Lse_sp: .word 0x60800000\n1:\n l32r a1, .Lse_sp\n call0 c_start\n");
/* Debian's lx106 libgcc leaves these to the ESP8266 ROM: plain shift-and-subtract versions. */
unsigned __udivsi3(unsigned a, unsigned b) {
  unsigned q = 0, r = 0;
  int i;
  for (i = 31; i >= 0; --i) {
    r = (r << 1) | ((a >> i) & 1u);
    if (r >= b) { r -= b; q |= 1u << i; }
  }
  return q;
}
unsigned __umodsi3(unsigned a, unsigned b) { return a - __udivsi3(a, b) * b; }
int __divsi3(int a, int b) {
  unsigned ua = a < 0 ? 0u - (unsigned)a : (unsigned)a, ub = b < 0 ? 0u - (unsigned)b : (unsigned)b;
  unsigned q = __udivsi3(ua, ub);
  return ((a < 0) != (b < 0)) ? -(int)q : (int)q;
}
long long __muldi3(long long a, long long b) {
  unsigned long long x = (unsigned long long)a, y = (unsigned long long)b, r = 0;
  while (y) { if (y & 1u) r += x; x <<= 1; y >>= 1; }
  return (long long)r;
}
unsigned long long __umulsidi3(unsigned a, unsigned b) {
  return (unsigned long long)__muldi3((long long)a, (long long)b);
}
long long __divmoddi4(long long a, long long b, long long *rem);
long long __divdi3(long long a, long long b) { long long r; return __divmoddi4(a, b, &r); }
"""


_XT_LD = r"""
ENTRY(_start)
SECTIONS {
  .text 0x50000000 : { KEEP(*(.text.start)) *(.literal .literal.* .text .text.*) }
  .rodata : { *(.rodata*) }
  .data 0x60000000 : { *(.data*) }
  .bss (NOLOAD) : { *(.bss*) *(COMMON) }
}
"""


def write_inputs_h(path: Path, inputs: list[list[int]]) -> None:
    flat = [i for ids in inputs for i in ids]
    offs = np.cumsum([0] + [len(x) for x in inputs])[:-1]

    def arr(ctype, name, vals):
        body = ",".join(str(int(v)) for v in vals) or "0"
        return f"static const {ctype} {name}[] = {{{body}}};\n"

    path.write_text(f"#define SE_N_INPUTS {len(inputs)}\n" + arr("int32_t", "se_ids", flat) +
                    arr("int32_t", "se_offsets", offs) + arr("int32_t", "se_lengths", [len(x) for x in inputs]))


def available(target: str) -> bool:
    return shutil.which(TARGETS[target]["cc"]) is not None and shutil.which(QEMU[target][0]) is not None


def build(package_dir: Path, inputs: list[list[int]], target: str, work: Path) -> Path:
    """Link the package and the harness into a bare-metal ELF for ``target``."""
    from .compiler.targets import target_cflags

    work.mkdir(parents=True, exist_ok=True)
    write_inputs_h(work / "inputs.h", inputs)
    (work / "harness.c").write_text(_HARNESS)
    cc = TARGETS[target]["cc"]
    flags = [f for f in target_cflags(target) if not f.startswith("--specs")]
    common = [cc, *flags, "-ffreestanding", "-ffunction-sections", "-fdata-sections", "-I", str(package_dir),
              "-I", str(work)]
    sources = [str(package_dir / "model.c"), str(work / "harness.c"), str(work / "start.c")]
    if target == "cortex-m4":
        (work / "start.c").write_text(_ARM_START)
        (work / "link.ld").write_text(_ARM_LD)
        cmd = [*common, "-nostdlib", "-T", str(work / "link.ld"), "-Wl,--gc-sections", *sources, "-lgcc"]
    elif target == "rv32imc":
        (work / "start.c").write_text(_RV_START)
        (work / "link.ld").write_text(_RV_LD)
        cmd = [*common, "-nostdlib", "-mcmodel=medany", "-T", str(work / "link.ld"), "-Wl,--gc-sections",
               *sources, "-lgcc"]
    elif target == "xtensa":
        (work / "start.c").write_text(_XT_START)
        (work / "link.ld").write_text(_XT_LD)
        cmd = [*common, "-nostdlib", "-T", str(work / "link.ld"), "-Wl,--gc-sections",
               *sources, "-lgcc"]
    else:
        raise ValueError(f"no firmware harness for {target}")
    elf = work / f"harness-{target}.elf"
    r = subprocess.run([*cmd, "-o", str(elf)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"firmware build failed for {target}:\n{' '.join(cmd)}\n{r.stderr[-3000:]}")
    return elf


def run(elf: Path, target: str, timeout: float = 120) -> str:
    r = subprocess.run([*QEMU[target], str(elf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, text=True, timeout=timeout)
    return r.stdout


def parse(output: str, n_intents: int, n_tags: int) -> dict[int, tuple[int, np.ndarray, np.ndarray]]:
    """index → (status, intent logits, slot logits [length, n_tags])."""
    out = {}
    for line in output.splitlines():
        parts = line.strip().split(" ")
        if len(parts) < 3 or parts[0] != "R":
            continue
        idx, rc = int(parts[1]), int(parts[2])
        if rc != 0:
            out[idx] = (rc, None, None)
            continue
        raw = np.frombuffer(bytes.fromhex(parts[3]), dtype=np.int8).astype(np.int64)
        out[idx] = (rc, raw[:n_intents], raw[n_intents:].reshape(-1, n_tags))
    return out
