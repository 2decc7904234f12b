/* SqueezeEdge firmware core: UTF-8 (see se_utf8.h). */
#include "se_utf8.h"

int32_t se_utf8_next(const uint8_t *s, int32_t n, int32_t *consumed) {
  uint8_t b = s[0];
  int32_t need, i, cp;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b < 0x80) { *consumed = 1; return b; }
  if (b < 0xC2 || b > 0xF4) { *consumed = 1; return -1; }
  if (b < 0xE0) { need = 1; cp = b & 0x1F; }
  else if (b < 0xF0) {
    need = 2; cp = b & 0x0F;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else {
    need = 3; cp = b & 0x07;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  }
  for (i = 1; i <= need; ++i) {
    uint8_t c;
    if (i >= n) { *consumed = i; return -1; }
    c = s[i];
    if (c < lo || c > hi) { *consumed = i; return -1; }
    lo = 0x80; hi = 0xBF;
    cp = (cp << 6) | (c & 0x3F);
  }
  *consumed = need + 1;
  return cp;
}

int se_utf8_valid(const uint8_t *s, int32_t n, int32_t *bad_offset) {
  int32_t i = 0, used;
  while (i < n) {
    if (se_utf8_next(s + i, n - i, &used) < 0) {
      if (bad_offset) *bad_offset = i;
      return 0;
    }
    i += used;
  }
  return 1;
}
