/* The five string functions the firmware core uses. Debian's gcc-xtensa-lx106 ships no C
 * library (the ESP8266 SDKs bring their own), so the port provides them in libc_min.c. */
#ifndef SE_XTENSA_STRING_H
#define SE_XTENSA_STRING_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);

#endif /* SE_XTENSA_STRING_H */
