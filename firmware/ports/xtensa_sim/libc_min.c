/* Minimal C library for the Xtensa port (see include/string.h): memcpy, memmove, memset here;
 * memcmp, strlen, strcmp in firmware/lib/string_cmp.c. Byte loops, correct for any alignment
 * and overlap rules of the C standard. Compiled with -fno-tree-loop-distribute-patterns
 * (Makefile) so that GCC does not turn these loops back into calls to themselves. */
#include <string.h>

void *memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  if (d < s) {
    while (n--) *d++ = *s++;
  } else {
    while (n--) d[n] = s[n];
  }
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}
