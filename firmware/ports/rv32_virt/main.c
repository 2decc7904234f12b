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

#include "model.h"
#include "model_meta.h"
#include "se_protocol.h"

#ifndef SE_LINE_MAX
#define SE_LINE_MAX 1024 /* >= SE_PROTOCOL_MIN_LINE (514) */
#endif
#ifndef SE_OUT_MAX
#define SE_OUT_MAX 4096 /* SE_PROTOCOL_MIN_OUT */
#endif
#define SE_RX_CHUNK 64
#define SE_FIRMWARE_VERSION "0.1.0"

#if SE_MODEL_MAX_LEN != SE_META_MAX_LEN || SE_MODEL_N_TAGS != SE_META_N_TAGS || SE_MODEL_N_INTENTS != SE_META_N_INTENTS
#error "model.h and model_meta.h describe different models"
#endif

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
static uint8_t arena[SE_MODEL_ARENA_BYTES + 1];
static int32_t tok_ids[SE_META_MAX_LEN], tok_starts[SE_META_MAX_LEN], tok_ends[SE_META_MAX_LEN];
static int8_t intent_logits[SE_META_N_INTENTS];
static int8_t slot_logits[SE_META_MAX_LEN * SE_META_N_TAGS];
static uint8_t phrase_buf[SE_CLASSIFY_PHRASE_BYTES(SE_META_MAX_LEN)];
static se_slot_value_t slot_values[SE_META_N_SLOTS + 1];
static uint8_t line_buf[SE_LINE_MAX];
static uint8_t text_buf[SE_LINE_MAX];
static char out_buf[SE_OUT_MAX];
static uint8_t rx_chunk[SE_RX_CHUNK];
static se_classifier_t clf;
static se_protocol_t proto;

static int setup(se_write_fn write) {
  clf.meta = &se_model_meta;
  clf.run = se_model_run;
  clf.n_tags = SE_MODEL_N_TAGS;
  clf.arena = arena;
  clf.ids = tok_ids;
  clf.starts = tok_starts;
  clf.ends = tok_ends;
  clf.intent_logits = intent_logits;
  clf.slot_logits = slot_logits;
  clf.phrase_buf = phrase_buf;
  clf.phrase_cap = (int32_t)sizeof phrase_buf;
  clf.slot_values = slot_values;
  clf.slot_values_cap = SE_META_N_SLOTS + 1;
  proto.clf = &clf;
  proto.write = write;
  proto.write_ctx = 0;
  proto.clock = clock_us;
  proto.device = "rv32-virt";
  proto.firmware_version = SE_FIRMWARE_VERSION;
  proto.arena_bytes = SE_MODEL_ARENA_BYTES;
  proto.line = line_buf;
  proto.line_cap = SE_LINE_MAX;
  proto.text_buf = text_buf;
  proto.out = out_buf;
  proto.out_cap = SE_OUT_MAX;
  return se_protocol_init(&proto) == SE_STATUS_OK;
}

int main(void) {
  uart_init();
  if (!setup(uart_write)) virt_exit(2); /* QEMU exits with status 2: the tools report it */
  for (;;) {
    int32_t n = 0;
    while (n < SE_RX_CHUNK && (UART_LSR & UART_LSR_DR)) rx_chunk[n++] = UART_RBR;
    if (n > 0) se_protocol_feed(&proto, rx_chunk, n);
    else wait_for_input();
  }
}
