/* libFuzzer harness: the line protocol (se_protocol.c) with the compiled-in model, at the STM32
 * port's buffer sizes. The input is a byte stream, fed in chunks whose sizes come from the input
 * itself (a UART delivers bytes in any grouping). Checked beyond the sanitizers: every complete
 * line gets exactly one answer, and every answer is one line holding one JSON object. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "se_device.h"

static se_device_t dev;
static int32_t answers;

static void check_answer(void *ctx, const uint8_t *data, int32_t len) {
  (void)ctx;
  /* "{...}\n" with no other newline: a reader splitting on newlines sees one answer */
  if (len < 3 || data[0] != '{' || data[len - 2] != '}' || data[len - 1] != '\n') abort();
  if (memchr(data, '\n', (size_t)(len - 1)) != NULL) abort();
  answers++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  size_t at = 0, i;
  int32_t lines = 0;
  if (!ready) {
    if (se_device_init(&dev, "fuzz", "0", check_answer, 0, 0) != SE_STATUS_OK) abort();
    ready = 1;
  }
  /* a fresh device per input: a crash reproduces from its input alone */
  se_names_clear(dev.proto.names);
  se_protocol_init(&dev.proto);
  answers = 0;
  for (i = 0; i < size; ++i) lines += data[i] == '\n';
  while (at < size) {
    size_t chunk = 1 + data[at] % 64u; /* the chunk's first byte picks its length */
    if (chunk > size - at) chunk = size - at;
    se_protocol_feed(&dev.proto, data + at, (int32_t)chunk);
    at += chunk;
  }
  if (size > 0 && data[size - 1] != '\n') lines++; /* flush answers a pending line */
  se_protocol_flush(&dev.proto);
  if (size > 0 && answers != lines) abort();
  return 0;
}
