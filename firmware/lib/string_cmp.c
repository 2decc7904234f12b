/* memcmp, strlen and strcmp for builds that link no C library: the Xtensa LX106 port (Debian's
 * gcc-xtensa-lx106 ships none) and the MicroPython native module (its runtime provides only
 * memcpy, memset and memmove: tools/mpy_ld.py). Byte loops, correct for any alignment; compile
 * with -fno-tree-loop-distribute-patterns so that GCC does not turn them into calls to themselves. */
#include <stddef.h>
#include <string.h>

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (; n; --n, ++x, ++y)
    if (*x != *y) return *x < *y ? -1 : 1;
  return 0;
}

size_t strlen(const char *s) {
  const char *p = s;
  while (*p) ++p;
  return (size_t)(p - s);
}

int strcmp(const char *a, const char *b) {
  const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
  while (*x && *x == *y) ++x, ++y;
  return (int)*x - (int)*y;
}
