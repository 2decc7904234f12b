/* SqueezeEdge Xtensa sim port: the firmware core and the generated model package serving the
 * line protocol (firmware/PROTOCOL.md) on an LX106 core (the ESP8266's) under
 * `qemu-system-xtensa -M sim -cpu lx106 -semihosting -serial none`.
 *
 * I/O is simcall semihosting: SYS_read on fd 0 and SYS_write on fd 1 are QEMU's own stdin and
 * stdout (with -serial none QEMU opens no simcall console and passes them to the host's
 * read/write). The read blocks, so an idle device costs the host nothing. End of input flushes
 * a pending half line (PROTOCOL.md) and exits QEMU with status 0. The protocol's microsecond
 * clock is the core's CCOUNT register divided by SE_CPU_MHZ. */
#include <stdint.h>

#include "se_device.h"

#ifndef SE_RX_CHUNK
#define SE_RX_CHUNK 256
#endif
#ifndef SE_CPU_MHZ
#define SE_CPU_MHZ 40 /* QEMU's lx106 counts CCOUNT at 40 MHz; an ESP8266 runs at 80 or 160 */
#endif
#define SE_FIRMWARE_VERSION "0.1.0"

/* ---- simcall semihosting (QEMU target/xtensa/xtensa-semi.c): a2 = call, a3..a5 = arguments;
 * a2 returns the result (-1 on error), a3 the errno. ---- */
#define SYS_EXIT 1
#define SYS_READ 3
#define SYS_WRITE 4

static int32_t simcall(int32_t nr, int32_t a, int32_t b, int32_t c) {
  register int32_t a2 __asm__("a2") = nr;
  register int32_t a3 __asm__("a3") = a;
  register int32_t a4 __asm__("a4") = b;
  register int32_t a5 __asm__("a5") = c;
  __asm__ volatile("simcall" : "+r"(a2), "+r"(a3) : "r"(a4), "r"(a5) : "memory");
  return a2;
}

static void sim_exit(int32_t code) {
  simcall(SYS_EXIT, code, 0, 0);
  for (;;) {}
}

static int32_t sim_write_all(int32_t fd, const uint8_t *data, int32_t len) {
  while (len > 0) {
    int32_t n = simcall(SYS_WRITE, fd, (int32_t)(uintptr_t)data, len);
    if (n <= 0) return -1;
    data += n;
    len -= n;
  }
  return 0;
}

/* Called from the exception vectors (start.S); reports on stderr and exits with status 3. */
void se_fault(uint32_t cause, uint32_t pc, uint32_t addr);
void se_fault(uint32_t cause, uint32_t pc, uint32_t addr) {
  static const char hex[] = "0123456789abcdef";
  char msg[] = "FAULT cause=00 pc=00000000 addr=00000000\n";
  int i;
  msg[12] = hex[(cause >> 4) & 15];
  msg[13] = hex[cause & 15];
  for (i = 0; i < 8; ++i) {
    msg[18 + i] = hex[(pc >> (28 - 4 * i)) & 15];
    msg[32 + i] = hex[(addr >> (28 - 4 * i)) & 15];
  }
  sim_write_all(2, (const uint8_t *)msg, (int32_t)sizeof msg - 1);
  sim_exit(3);
}

/* ---- microsecond clock from CCOUNT: 32 bits of cycles wrap in 107 s at 40 MHz, so elapsed
 * cycles are accumulated on every call; correct as long as calls are less than a wrap apart,
 * which holds within one line (the protocol only subtracts two readings taken around it). ---- */
static uint32_t last_ccount, us_now, cycle_rest;

static uint32_t clock_us(void *ctx) {
  uint32_t c, cycles;
  (void)ctx;
  __asm__ volatile("rsr.ccount %0" : "=a"(c));
  cycles = c - last_ccount + cycle_rest;
  last_ccount = c;
  us_now += cycles / SE_CPU_MHZ;
  cycle_rest = cycles % SE_CPU_MHZ;
  return us_now;
}

static void stdout_write(void *ctx, const uint8_t *data, int32_t len) {
  (void)ctx;
  if (sim_write_all(1, data, len) != 0) sim_exit(4); /* the host closed our stdout */
}

/* ---- the classifier and the protocol ---- */
static se_device_t dev;
static uint8_t rx_buf[SE_RX_CHUNK];

int main(void) {
  static const char ready[] = "SE_READY xtensa-sim\n";
  if (se_device_init(&dev, "xtensa-lx106-sim", SE_FIRMWARE_VERSION, stdout_write, 0, clock_us) != SE_STATUS_OK)
    sim_exit(2);
  sim_write_all(2, (const uint8_t *)ready, (int32_t)sizeof ready - 1);
  for (;;) {
    int32_t n = simcall(SYS_READ, 0, (int32_t)(uintptr_t)rx_buf, (int32_t)sizeof rx_buf);
    if (n <= 0) break; /* end of input (0) or a read error (-1) */
    se_protocol_feed(&dev.proto, rx_buf, n);
  }
  se_protocol_flush(&dev.proto);
  return 0;
}

/* Entered from start.S with the stack set: zero .bss (a real loader does not), run, exit. */
extern uint32_t _bss_start, _bss_end;
void se_start(void);
void se_start(void) {
  uint32_t *p;
  for (p = &_bss_start; p < &_bss_end;) *p++ = 0;
  sim_exit(main());
}
