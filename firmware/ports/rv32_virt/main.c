/* SqueezeEdge RV32IMC port for QEMU `virt` (qemu-system-riscv32 -M virt -bios none): the
 * firmware core and the generated model package serving the line protocol
 * (firmware/PROTOCOL.md) on the machine's NS16550A UART at 0x10000000. It proves the whole
 * firmware on the ESP32-C3's ISA (rv32imc, ilp32); the ESP32 boards themselves are served by
 * the ESP-IDF app in firmware/ports/esp32.
 *
 * Receive is polled: QEMU's 16550 model tells its character backend how many bytes it can take
 * (the free space of its 16-byte FIFO) and the backend leaves the rest in the TCP socket, so
 * nothing is lost while the model runs. Verified: tests/test_rv32.py writes 300 lines (over
 * 16 KB) at once and gets every answer, in order. A real 16550 on a wire has no such
 * back-pressure and would need an interrupt-driven ring like the STM32 port.
 * When no byte is waiting the hart sleeps in wfi (interrupts enabled in mie but never taken,
 * mstatus.MIE = 0): the UART's receive interrupt through the PLIC wakes it, and a 10 ms CLINT
 * timer bounds every sleep, so an idle board costs the host next to no CPU. Transmit is polled.
 * The CLINT's 10 MHz mtime gives the protocol's microsecond clock. */
#include <stdint.h>
#include <string.h>

#include "se_device.h"

#define SE_RX_CHUNK 64
#define SE_FIRMWARE_VERSION "0.1.0"

void virt_exit(uint32_t code); /* startup.c */

/* ---- virt's devices ---- */
#define REG8(addr) (*(volatile uint8_t *)(addr))
#define REG32(addr) (*(volatile uint32_t *)(addr))
#define UART_BASE 0x10000000u
#define UART_RBR REG8(UART_BASE + 0) /* read */
#define UART_THR REG8(UART_BASE + 0) /* write */
#define UART_IER REG8(UART_BASE + 1)
#define UART_FCR REG8(UART_BASE + 2) /* write */
#define UART_LCR REG8(UART_BASE + 3)
#define UART_LSR REG8(UART_BASE + 5)
#define UART_LSR_DR 0x01u
#define UART_LSR_THRE 0x20u
#define UART_IRQ 10u
#define PLIC_BASE 0x0C000000u
#define PLIC_PRIORITY(irq) REG32(PLIC_BASE + 4u * (irq))
#define PLIC_ENABLE0 REG32(PLIC_BASE + 0x2000u)     /* context 0 = hart 0, M-mode */
#define PLIC_THRESHOLD0 REG32(PLIC_BASE + 0x200000u)
#define PLIC_CLAIM0 REG32(PLIC_BASE + 0x200004u)
#define CLINT_BASE 0x02000000u
#define CLINT_MTIMECMP_LO REG32(CLINT_BASE + 0x4000u) /* hart 0 */
#define CLINT_MTIMECMP_HI REG32(CLINT_BASE + 0x4004u)
#define CLINT_MTIME_LO REG32(CLINT_BASE + 0xBFF8u)
#define CLINT_MTIME_HI REG32(CLINT_BASE + 0xBFFCu)
#define MTIME_HZ 10000000u /* virt's timebase */
#define MIE_MTIE (1u << 7)
#define MIE_MEIE (1u << 11)

/* ---- CLINT: the microsecond clock and the bounded sleep ---- */
static uint64_t mtime(void) {
  uint32_t hi, lo;
  do {
    hi = CLINT_MTIME_HI;
    lo = CLINT_MTIME_LO;
  } while (hi != CLINT_MTIME_HI);
  return ((uint64_t)hi << 32) | lo;
}

static uint32_t clock_us(void *ctx) {
  (void)ctx;
  return (uint32_t)(mtime() / (MTIME_HZ / 1000000u));
}

static void set_timer(uint64_t when) {
  CLINT_MTIMECMP_HI = 0xFFFFFFFFu; /* no spurious match between the two halves */
  CLINT_MTIMECMP_LO = (uint32_t)when;
  CLINT_MTIMECMP_HI = (uint32_t)(when >> 32);
}

/* Sleep until the UART has data or 10 ms pass. The UART interrupt is level-triggered: after the
 * claim/complete below it is pending again at once if bytes are still waiting, so no wake-up is
 * lost; the timer covers anything else. */
static void wait_for_input(void) {
  uint32_t id;
  set_timer(mtime() + MTIME_HZ / 100u);
  __asm__ volatile("wfi");
  id = PLIC_CLAIM0;
  if (id != 0) PLIC_CLAIM0 = id;
}

/* ---- NS16550A ---- */
static void uart_init(void) {
  UART_IER = 0;
  UART_LCR = 0x03;   /* 8N1; no divisor: virt's UART has no line, its speed is the host's */
  UART_FCR = 0x07;   /* FIFOs on and cleared, receive trigger at 1 byte */
  UART_IER = 0x01;   /* receive-data interrupt: only to end a wfi */
  PLIC_PRIORITY(UART_IRQ) = 1;
  PLIC_THRESHOLD0 = 0;
  PLIC_ENABLE0 = 1u << UART_IRQ;
  set_timer(mtime() + MTIME_HZ / 100u);
  /* binutils >= 2.38 counts CSR instructions as Zicsr, outside "rv32imc": allow them here only */
  __asm__ volatile(".option push\n.option arch, +zicsr\ncsrs mie, %0\n.option pop" : : "r"(MIE_MEIE | MIE_MTIE));
}

static void uart_write(void *ctx, const uint8_t *data, int32_t len) {
  (void)ctx;
  while (len-- > 0) {
    while ((UART_LSR & UART_LSR_THRE) == 0) {}
    UART_THR = *data++;
  }
}

/* ---- the classifier and the protocol ---- */
static se_device_t dev;
static uint8_t rx_chunk[SE_RX_CHUNK];

int main(void) {
  uart_init();
  if (se_device_init(&dev, "rv32-virt", SE_FIRMWARE_VERSION, uart_write, 0, clock_us) != SE_STATUS_OK)
    virt_exit(2); /* QEMU exits with status 2: the tools report it */
  for (;;) {
    int32_t n = 0;
    while (n < SE_RX_CHUNK && (UART_LSR & UART_LSR_DR)) rx_chunk[n++] = UART_RBR;
    if (n > 0) se_protocol_feed(&dev.proto, rx_chunk, n);
    else wait_for_input();
  }
}
