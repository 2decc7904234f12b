/* SqueezeEdge STM32F4 port (STM32F405/F407; QEMU netduinoplus2): the firmware core and the
 * generated model package serving the line protocol (firmware/PROTOCOL.md) on USART1
 * (PA9 TX / PA10 RX, AF7), 115200 8N1.
 *
 * Receive is interrupt driven (USART1 IRQ 37 → a ring buffer), so bytes that arrive while the
 * model runs are kept; transmit is polled. SysTick gives a 1 ms tick and the protocol's
 * microsecond clock. Built with SEMIHOSTING=1 (QEMU tests only: semihosting faults on a board
 * without a debugger) the image runs a built-in self-test through the same protocol code,
 * prints the responses on the semihosting console and exits QEMU with a status code. */
#include <stdint.h>
#include <string.h>

#include "se_device.h"
#include "se_json.h"
#include "systick_clock.h"

#ifndef SE_RX_RING
#define SE_RX_RING 4096 /* power of two; ~350 ms of 115200 baud */
#endif
#define SE_FIRMWARE_VERSION "0.1.0"
#define SE_BAUD 115200u

#if (SE_RX_RING & (SE_RX_RING - 1)) != 0
#error "SE_RX_RING must be a power of two"
#endif

/* ---- registers ---- */
#define REG(addr) (*(volatile uint32_t *)(addr))
#define RCC_BASE 0x40023800u
#define RCC_CR REG(RCC_BASE + 0x00)
#define RCC_PLLCFGR REG(RCC_BASE + 0x04)
#define RCC_CFGR REG(RCC_BASE + 0x08)
#define RCC_AHB1ENR REG(RCC_BASE + 0x30)
#define RCC_APB2ENR REG(RCC_BASE + 0x44)
#define FLASH_ACR REG(0x40023C00u)
#define GPIOA_MODER REG(0x40020000u)
#define GPIOA_AFRH REG(0x40020024u)
#define USART1_BASE 0x40011000u
#define USART1_SR REG(USART1_BASE + 0x00)
#define USART1_DR REG(USART1_BASE + 0x04)
#define USART1_BRR REG(USART1_BASE + 0x08)
#define USART1_CR1 REG(USART1_BASE + 0x0C)
#define USART1_CR2 REG(USART1_BASE + 0x10)
#define USART1_CR3 REG(USART1_BASE + 0x14)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_SR_ORE (1u << 3)
#define USART_CR1_UE (1u << 13)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RE (1u << 2)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define NVIC_ISER1 REG(0xE000E104u)
#define SCB_ICSR REG(0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define USART1_IRQ 37

/* ---- clocks ---- */
static uint32_t cpu_hz = 16000000u, apb2_hz = 16000000u;

/* 168 MHz from HSI: 16 MHz / M16 * N336 / P2 (Q7 = 48 MHz); AHB /1, APB1 /4, APB2 /2; flash 5 WS.
 * Every wait is bounded. QEMU's RCC is a stub that reads 0 (even HSIRDY, which is always 1 on
 * silicon): then the machine's own clock, 168 MHz, is assumed. */
static void clock_init(void) {
  int i;
  if ((RCC_CR & (1u << 1)) == 0) { cpu_hz = 168000000u; apb2_hz = 84000000u; return; }
  FLASH_ACR = (1u << 8) | (1u << 9) | (1u << 10) | 5u; /* prefetch, I-cache, D-cache, 5 WS */
  RCC_PLLCFGR = 16u | (336u << 6) | (0u << 16) | (0u << 22) | (7u << 24); /* M, N, P=2, src HSI, Q */
  RCC_CR |= 1u << 24; /* PLLON */
  for (i = 0; i < 1000000 && (RCC_CR & (1u << 25)) == 0; ++i) {}
  if ((RCC_CR & (1u << 25)) == 0) return; /* stay on HSI 16 MHz */
  RCC_CFGR = (RCC_CFGR & ~0xFCF3u) | (5u << 10) | (4u << 13) | 2u; /* APB1 /4, APB2 /2, SW=PLL */
  for (i = 0; i < 1000000 && ((RCC_CFGR >> 2) & 3u) != 2u; ++i) {}
  if (((RCC_CFGR >> 2) & 3u) == 2u) { cpu_hz = 168000000u; apb2_hz = 84000000u; }
}

/* ---- SysTick: 1 ms tick, microsecond clock ---- */
static volatile uint32_t ticks_ms;
void systick_handler(void) { ticks_ms++; }

static void systick_init(void) {
  SYST_RVR = cpu_hz / 1000u - 1u;
  SYST_CVR = 0;
  SYST_CSR = 7u; /* processor clock, interrupt, enable */
}

static uint32_t read_ms(void) { return ticks_ms; }
static uint32_t read_counter(void) { return SYST_CVR; }
static int read_pending(void) { return (SCB_ICSR & SCB_ICSR_PENDSTSET) != 0; }

/* Monotonic across the SysTick wrap (systick_clock.h says how). */
static uint32_t clock_us(void *ctx) {
  static const se_systick_regs_t regs = {read_ms, read_counter, read_pending};
  (void)ctx;
  return se_systick_read_us(&regs, SYST_RVR, cpu_hz / 1000000u);
}

/* ---- USART1: interrupt-driven receive into a ring, polled transmit ---- */
static uint8_t rx_ring[SE_RX_RING];
static volatile uint32_t rx_head, rx_tail; /* head: written by the ISR; tail: by main */
static volatile uint32_t rx_dropped;

void usart1_handler(void) {
  uint32_t sr = USART1_SR;
  if (sr & (USART_SR_RXNE | USART_SR_ORE)) {
    uint8_t b = (uint8_t)USART1_DR; /* reading SR then DR clears RXNE and ORE */
    uint32_t h = rx_head;
    if (h - rx_tail < SE_RX_RING) { rx_ring[h & (SE_RX_RING - 1)] = b; rx_head = h + 1; }
    else rx_dropped++;
  }
}

__attribute__((unused)) static void usart1_init(void) {
  RCC_AHB1ENR |= 1u << 0; /* GPIOA */
  RCC_APB2ENR |= 1u << 4; /* USART1 */
  GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18);  /* PA9, PA10: alternate function */
  GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);     /* AF7 = USART1 */
  USART1_CR1 = 0;
  USART1_BRR = (apb2_hz + SE_BAUD / 2u) / SE_BAUD;             /* oversampling 16 */
  USART1_CR2 = 0;                                               /* 1 stop bit */
  USART1_CR3 = 0;                                               /* no flow control */
  USART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE; /* 8N1 */
  NVIC_ISER1 = 1u << (USART1_IRQ - 32);
}

__attribute__((unused)) static void uart_write(void *ctx, const uint8_t *data, int32_t len) {
  (void)ctx;
  while (len-- > 0) {
    while ((USART1_SR & USART_SR_TXE) == 0) {}
    USART1_DR = *data++;
  }
}

/* ---- the classifier and the protocol ---- */
static se_device_t dev;

static int setup(se_write_fn write) {
  return se_device_init(&dev, "stm32f405", SE_FIRMWARE_VERSION, write, 0, clock_us) == SE_STATUS_OK;
}

#ifdef SE_SEMIHOSTING
/* ---- test build: semihosting console and exit ---- */
static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
static void sh_exit(int code) {
  uint32_t block[2] = {code == 0 ? 0x20026u : 0x20024u, (uint32_t)code};
  semihost(0x20, block); /* SYS_EXIT_EXTENDED */
  semihost(0x18, (const void *)(uintptr_t)block[0]);
  for (;;) {}
}
static char sh_out[SE_OUT_MAX + 1];
static int32_t sh_len;
static void sh_write(void *ctx, const uint8_t *data, int32_t len) {
  (void)ctx;
  while (len-- > 0) {
    if (sh_len < SE_OUT_MAX) sh_out[sh_len++] = (char)*data;
    data++;
  }
}
void fault_handler(void) {
  semihost(0x04, "FAULT\n");
  sh_exit(3);
}
static int selftest_line(const char *line, const char *expect) {
  sh_len = 0;
  se_protocol_feed(&dev.proto, (const uint8_t *)line, (int32_t)strlen(line));
  sh_out[sh_len] = 0;
  semihost(0x04, sh_out); /* SYS_WRITE0 */
  return strstr(sh_out, expect) != 0;
}
/* The protocol's clock read back to back across many SysTick wraps: it must never go back. */
static int selftest_clock(void) {
  uint32_t reads = 0, back = 0, prev = clock_us(0), start = ticks_ms;
  char line[64];
  se_jw_t w;
  while (ticks_ms - start < 300u) {
    uint32_t now = clock_us(0);
    if ((int32_t)(now - prev) < 0) back++;
    prev = now;
    reads++;
  }
  se_jw_init(&w, line, (int32_t)sizeof line - 1);
  se_jw_raw(&w, "{\"clock_reads\":");
  se_jw_int(&w, reads);
  se_jw_raw(&w, ",\"clock_backwards\":");
  se_jw_int(&w, back);
  se_jw_raw(&w, "}\n");
  line[w.len] = 0;
  semihost(0x04, line);
  return back == 0;
}
int main(void) {
  int ok = 1;
  clock_init();
  systick_init();
  if (!setup(sh_write)) sh_exit(2);
  ok &= selftest_clock();
  ok &= selftest_line("/ping\n", "\"pong\"");
  ok &= selftest_line("turn off the kitchen lights\n", "\"intent\":\"HassTurnOff\"");
  ok &= selftest_line("\xff\xfe garbage\n", "\"code\":\"invalid_utf8\"");
  sh_exit(ok ? 0 : 1);
  return 0;
}
#else
int main(void) {
  clock_init();
  systick_init();
  usart1_init();
  if (!setup(uart_write)) for (;;) {}
  for (;;) {
    uint32_t head = rx_head, tail = rx_tail;
    if (head == tail) {
      __asm__ volatile("wfi"); /* the next byte or SysTick wakes us */
      continue;
    }
    {
      uint32_t at = tail & (SE_RX_RING - 1), n = head - tail;
      if (n > SE_RX_RING - at) n = SE_RX_RING - at; /* contiguous part */
      se_protocol_feed(&dev.proto, rx_ring + at, (int32_t)n);
      rx_tail = tail + n;
    }
  }
}
#endif
