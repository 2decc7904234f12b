/* SqueezeEdge RV32IMC port (QEMU virt): reset entry and trap handler (no libc start files).
 * _start sets gp and sp (they must be valid before any C runs), parks every hart but 0, then
 * reset_handler copies .data from its load image, zeroes .bss and calls main(). No heap. */
#include <stdint.h>

extern int main(void);
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;

void reset_handler(void);
void trap_handler(void);
void virt_exit(uint32_t code);

__asm__(".section .text.start, \"ax\"\n"
        ".globl _start\n"
        "_start:\n"
        "  .option push\n"
        "  .option norelax\n"          /* gp is not set yet: this la must not become gp-relative */
        "  la gp, __global_pointer$\n"
        "  .option arch, +zicsr\n"    /* CSRs are Zicsr for binutils >= 2.38, not "rv32imc" */
        "  csrr t0, mhartid\n"
        "  bnez t0, 1f\n"
        "  la sp, __stack_top\n"
        "  la t0, trap_handler\n"
        "  csrw mtvec, t0\n"           /* direct mode: trap_handler is 4-byte aligned */
        "  .option pop\n"
        "  j reset_handler\n"
        "1: wfi\n"
        "  j 1b\n"
        ".text\n");

void reset_handler(void) {
  uint32_t *s = &__data_load, *d = &__data_start;
  while (d < &__data_end) *d++ = *s++;
  for (d = &__bss_start; d < &__bss_end;) *d++ = 0;
  (void)main();
  for (;;) {}
}

/* Interrupts never trap (mstatus.MIE stays 0: they only end a wfi), so anything that lands here
 * is an exception: a bug. Stop QEMU with status 3 through virt's SiFive test device rather than
 * spin forever, so a host tool sees the board die instead of a silent hang. */
__attribute__((aligned(4))) void trap_handler(void) { virt_exit(3); }

/* virt's SiFive test device: 0x5555 = pass (status 0), (code << 16) | 0x3333 = fail (status code). */
void virt_exit(uint32_t code) {
  *(volatile uint32_t *)0x00100000u = code == 0 ? 0x5555u : ((code << 16) | 0x3333u);
  for (;;) {}
}
