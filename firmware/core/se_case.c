/* SqueezeEdge firmware core: the tokenizer's lowercasing (see se_case.h). */
#include "se_case.h"

#include "se_case_table.h"

/* The lowercase of a two-byte code point, or cp itself: a binary search for the last fold
 * starting at or before cp (the table is sorted and its ranges do not overlap). */
static uint16_t lower(uint16_t cp) {
  int32_t lo = 0, hi = SE_CASE_FOLDS - 1, found = -1;
  while (lo <= hi) {
    int32_t mid = lo + (hi - lo) / 2;
    if (se_case_folds[mid].first <= cp) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (found >= 0) {
    const se_case_fold_t *f = &se_case_folds[found];
    if (cp <= f->last && (cp - f->first) % f->step == 0) return (uint16_t)(cp + f->delta);
  }
  return cp;
}

void se_fold_case(const uint8_t *s, int32_t n, uint8_t *out) {
  int32_t i = 0;
  while (i < n) {
    uint8_t b = s[i];
    if (b < 0x80) {
      out[i] = (uint8_t)((b >= 0x41 && b <= 0x5A) ? b + 32 : b);
      i += 1;
    } else if (b >= 0xC2 && b <= 0xDF && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0xBF) {
      uint16_t low = lower((uint16_t)(((b & 0x1F) << 6) | (s[i + 1] & 0x3F)));
      out[i] = (uint8_t)(0xC0 | (low >> 6));
      out[i + 1] = (uint8_t)(0x80 | (low & 0x3F));
      i += 2;
    } else {
      out[i] = b;
      i += 1;
    }
  }
}
