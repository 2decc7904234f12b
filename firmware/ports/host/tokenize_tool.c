/* Test tool: the firmware tokenizer alone (no model). Reads records (4-byte little-endian
 * length + bytes) on stdin; prints "count truncated id:start:end ..." per record. */
#include <stdint.h>
#include <stdio.h>

#include "model_meta.h"
#include "se_tokenizer.h"

static int32_t ids[SE_META_MAX_LEN], starts[SE_META_MAX_LEN], ends[SE_META_MAX_LEN];
static uint8_t data[1 << 20];

int main(void) {
  uint8_t hdr[4];
  se_tokens_t tok;
  tok.ids = ids; tok.starts = starts; tok.ends = ends; tok.capacity = SE_META_MAX_LEN;
  while (fread(hdr, 1, 4, stdin) == 4) {
    uint32_t n = (uint32_t)hdr[0] | ((uint32_t)hdr[1] << 8) | ((uint32_t)hdr[2] << 16) | ((uint32_t)hdr[3] << 24);
    int32_t i;
    if (n > sizeof data || fread(data, 1, n, stdin) != n) return 1;
    if (se_tokenize(&se_model_meta, data, (int32_t)n, &tok) != SE_STATUS_OK) return 1;
    printf("%d %d", (int)tok.length, (int)tok.truncated);
    for (i = 0; i < tok.length; ++i) printf(" %d:%d:%d", (int)tok.ids[i], (int)tok.starts[i], (int)tok.ends[i]);
    printf("\n");
  }
  return 0;
}
