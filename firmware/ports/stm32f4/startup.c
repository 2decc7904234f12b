/* SqueezeEdge STM32F4 port: vector table and reset handler (Cortex-M4, no libc start files).
 * Copies .data from flash, zeroes .bss, then calls main(). No heap: nothing calls malloc. */
#include <stdint.h>

extern int main(void);
extern uint32_t __stack_top, __data_load, __data_start, __data_end, __bss_start, __bss_end;

void reset_handler(void);
void default_handler(void);
void fault_handler(void);
void systick_handler(void);
void usart1_handler(void);

void reset_handler(void) {
  uint32_t *s = &__data_load, *d = &__data_start;
  while (d < &__data_end) *d++ = *s++;
  for (d = &__bss_start; d < &__bss_end;) *d++ = 0;
  (void)main();
  for (;;) {}
}

void default_handler(void) { for (;;) {} }

/* The test build (SEMIHOSTING=1) overrides this in board.c to report and exit QEMU. */
__attribute__((weak)) void fault_handler(void) { for (;;) {} }

#define N_IRQ 82 /* STM32F405: 82 peripheral interrupts */
typedef void (*vector_t)(void);

__attribute__((section(".vectors"), used)) static const vector_t vectors[16 + N_IRQ] = {
  [0] = (vector_t)(uintptr_t)&__stack_top,
  [1] = reset_handler,
  [2] = default_handler,  /* NMI */
  [3] = fault_handler,    /* HardFault */
  [4] = fault_handler,    /* MemManage */
  [5] = fault_handler,    /* BusFault */
  [6] = fault_handler,    /* UsageFault */
  [11] = default_handler, /* SVCall */
  [12] = default_handler, /* DebugMon */
  [14] = default_handler, /* PendSV */
  [15] = systick_handler,
  [16 + 37] = usart1_handler, /* USART1 global interrupt */
};
