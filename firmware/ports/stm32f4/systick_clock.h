/* SqueezeEdge STM32F4 port: the protocol's microsecond clock from SysTick, as arithmetic on what
 * was read, so that a host-compiled test can drive every case (tests/test_systick_clock.py).
 *
 * SysTick counts down from `reload` to 0 once per millisecond; at 0 it reloads and makes its
 * interrupt pending, whose handler counts `ms`. Between the reload and the handler, `ms` is one
 * behind a counter value that already belongs to the next millisecond: read together they give
 * a time up to 1 ms too early, and the clock went backwards (time_us 4294967161 = -135 us in an
 * answer). The reader therefore also reads the pending bit (ICSR.PENDSTSET) after the counter:
 * set, the wrap has happened but was not counted, so the counter is read again (it is certainly
 * past the wrap now) and the millisecond is counted here. */
#ifndef SE_SYSTICK_CLOCK_H
#define SE_SYSTICK_CLOCK_H

#include <stdint.h>

/* Microseconds (mod 2^32) for `ms` handled ticks, `wrap_pending` (0/1) unhandled ones and the
 * counter value `val` (reload..0) read after the pending bit; ticks_per_us = core MHz. */
static inline uint32_t se_systick_us(uint32_t ms, uint32_t wrap_pending, uint32_t val, uint32_t reload,
                                     uint32_t ticks_per_us) {
  if (val > reload) val = reload; /* a counter written after the reload register changed */
  return (ms + wrap_pending) * 1000u + (reload - val) / ticks_per_us;
}

/* One consistent reading: ms, the counter and the pending bit of the same millisecond (the
 * handler did not run in between: ms read again is unchanged). Register readers are passed in
 * so that the host test can script them. */
typedef struct {
  uint32_t (*ms)(void);
  uint32_t (*counter)(void);
  int (*pending)(void);
} se_systick_regs_t;

static inline uint32_t se_systick_read_us(const se_systick_regs_t *r, uint32_t reload, uint32_t ticks_per_us) {
  uint32_t ms, val, wrapped;
  do {
    ms = r->ms();
    val = r->counter();
    wrapped = r->pending() ? 1u : 0u;
    if (wrapped) val = r->counter(); /* read before the pending bit, it may predate the wrap */
  } while (ms != r->ms());
  return se_systick_us(ms, wrapped, val, reload, ticks_per_us);
}

#endif /* SE_SYSTICK_CLOCK_H */
