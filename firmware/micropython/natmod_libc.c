/* The C library functions the firmware core calls that a native module's runtime does not
 * provide (MicroPython links memcpy, memset and memmove for it; tools/mpy_ld.py), for the .mpy
 * build only. Byte loops: this is a few comparisons per token, not a hot path. */
#include <stddef.h>

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
