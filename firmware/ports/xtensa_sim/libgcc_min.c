/* Integer helpers that Debian's lx106 libgcc.a references but leaves out: on an ESP8266 they
 * live in the mask ROM (the SDKs link them from eagle.rom.addr.v6.ld). The LX106 has a 32-bit
 * multiplier (MUL32: low word only) and no divider, so GCC calls these for 32-bit division,
 * 32x32->64 multiplication (the model's requantization) and 64-bit division (the stats mean). */
#include <stdint.h>

uint32_t __udivsi3(uint32_t a, uint32_t b);
uint32_t __umodsi3(uint32_t a, uint32_t b);
int32_t __divsi3(int32_t a, int32_t b);
uint64_t __umulsidi3(uint32_t a, uint32_t b);
int64_t __muldi3(int64_t a, int64_t b);
uint64_t __udivdi3(uint64_t a, uint64_t b);
uint64_t __umoddi3(uint64_t a, uint64_t b);
int64_t __divdi3(int64_t a, int64_t b);
/* In libgcc.a (they use only 32-bit operations on this core). */
uint64_t __udivmoddi4(uint64_t a, uint64_t b, uint64_t *rem);
int64_t __divmoddi4(int64_t a, int64_t b, int64_t *rem);

/* Restoring division, one quotient bit per step; b == 0 gives an all-ones quotient. */
static uint32_t udivmod32(uint32_t a, uint32_t b, uint32_t *rem) {
  uint32_t q = 0, r = 0;
  int i;
  for (i = 31; i >= 0; --i) {
    r = (r << 1) | ((a >> i) & 1u);
    if (r >= b) {
      r -= b;
      q |= 1u << i;
    }
  }
  *rem = r;
  return q;
}

uint32_t __udivsi3(uint32_t a, uint32_t b) {
  uint32_t r;
  return udivmod32(a, b, &r);
}

uint32_t __umodsi3(uint32_t a, uint32_t b) {
  uint32_t r;
  udivmod32(a, b, &r);
  return r;
}

int32_t __divsi3(int32_t a, int32_t b) {
  uint32_t r, ua = a < 0 ? 0u - (uint32_t)a : (uint32_t)a, ub = b < 0 ? 0u - (uint32_t)b : (uint32_t)b;
  uint32_t q = udivmod32(ua, ub, &r);
  return (int32_t)((a < 0) != (b < 0) ? 0u - q : q); /* truncates toward zero, as C requires */
}

/* 32x32->64 from four 16x16->32 products: the core's MULL gives only the low 32 bits. */
uint64_t __umulsidi3(uint32_t a, uint32_t b) {
  uint32_t a0 = a & 0xFFFFu, a1 = a >> 16, b0 = b & 0xFFFFu, b1 = b >> 16;
  uint32_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  uint32_t mid = (p00 >> 16) + (p01 & 0xFFFFu) + (p10 & 0xFFFFu); /* < 3 * 2^16: no overflow */
  uint32_t lo = (mid << 16) | (p00 & 0xFFFFu);
  uint32_t hi = p11 + (p01 >> 16) + (p10 >> 16) + (mid >> 16);
  return ((uint64_t)hi << 32) | lo;
}

/* The low 64 bits of a 64x64 product are the same for signed and unsigned operands. */
int64_t __muldi3(int64_t a, int64_t b) {
  uint64_t x = (uint64_t)a, y = (uint64_t)b;
  uint32_t xl = (uint32_t)x, xh = (uint32_t)(x >> 32), yl = (uint32_t)y, yh = (uint32_t)(y >> 32);
  uint64_t r = __umulsidi3(xl, yl);
  r += (uint64_t)(xh * yl + xl * yh) << 32;
  return (int64_t)r;
}

uint64_t __udivdi3(uint64_t a, uint64_t b) { return __udivmoddi4(a, b, 0); }

uint64_t __umoddi3(uint64_t a, uint64_t b) {
  uint64_t r;
  __udivmoddi4(a, b, &r);
  return r;
}

int64_t __divdi3(int64_t a, int64_t b) {
  int64_t r;
  return __divmoddi4(a, b, &r);
}
