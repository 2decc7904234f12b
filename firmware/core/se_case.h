/* SqueezeEdge firmware core: the tokenizer's lowercasing (TOKENIZER.md §2; models/case_fold.py
 * defines it, se_case_table.h is generated from there). ASCII A-Z and every two-byte UTF-8
 * letter whose Unicode lowercase is one two-byte code point are lowercased; every other byte
 * sequence is kept, so the length and every offset stay the same. */
#ifndef SE_CASE_H
#define SE_CASE_H

#include <stdint.h>

/* Code points first, first + step, ..., last lowercase to code point + delta. */
typedef struct {
  uint16_t first, last;
  uint8_t step;
  int16_t delta;
} se_case_fold_t;

/* out[0..n) = s[0..n) lowercased; out may be s. */
void se_fold_case(const uint8_t *s, int32_t n, uint8_t *out);

#endif /* SE_CASE_H */
