/* SqueezeEdge firmware core: UTF-8 validation and replacement decoding, exactly as Python's
 * bytes.decode("utf-8", errors="replace") (one U+FFFD per maximal ill-formed subpart). */
#ifndef SE_UTF8_H
#define SE_UTF8_H

#include <stdint.h>

/* Decode one code point at s[0..n) (n >= 1). Returns the code point, or -1 for an ill-formed
 * subpart (to be replaced by U+FFFD); *consumed gets the bytes used (>= 1). */
int32_t se_utf8_next(const uint8_t *s, int32_t n, int32_t *consumed);

/* 1 when s[0..n) is valid UTF-8; otherwise 0 and *bad_offset = start of the first ill-formed
 * subpart (Python's UnicodeDecodeError.start). */
int se_utf8_valid(const uint8_t *s, int32_t n, int32_t *bad_offset);

#endif /* SE_UTF8_H */
