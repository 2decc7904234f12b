/* libFuzzer harness: the request parser and the id finder (se_json.c) on one line at the STM32
 * port's line size, and the string writer on the same bytes. Checked beyond the sanitizers:
 * when the parser accepts a line with an id, the id finder finds the same bytes; whatever the
 * finder returns is a valid id; the writer's string never holds a raw control byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "se_json.h"

#define LINE_MAX 1024 /* se_device.h's SE_LINE_MAX default, which the STM32 port keeps */

static uint8_t text_buf[LINE_MAX];
static char out[8 * LINE_MAX + 2]; /* \u00XX per byte at most (6), quotes */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  se_request_t req;
  const char *why = 0, *id = 0;
  int32_t id_len = 0, n = size > LINE_MAX ? LINE_MAX : (int32_t)size, i;
  int found = se_json_find_id(data, n, &id, &id_len);
  se_jw_t w;
  if (found && (id_len < 1 || id_len > SE_JSON_MAX_ID || id < (const char *)data ||
                id + id_len > (const char *)data + n))
    abort();
  if (se_json_parse_request(data, n, text_buf, LINE_MAX, &req, &why) == SE_STATUS_OK) {
    if (req.has_text && (req.text_len < 0 || req.text_len > LINE_MAX)) abort();
    if (req.has_cmd && strlen(req.cmd) >= sizeof req.cmd) abort();
    if (req.id && (!found || id_len != req.id_len || memcmp(id, req.id, (size_t)id_len) != 0)) abort();
  } else if (!why || !*why) {
    abort(); /* every refusal has a reason to answer with */
  }
  se_jw_init(&w, out, (int32_t)sizeof out);
  se_jw_string(&w, data, n);
  if (w.overflow || w.len < 2 || out[0] != '"' || out[w.len - 1] != '"') abort();
  for (i = 0; i < w.len; ++i)
    if ((uint8_t)out[i] < 0x20 || (uint8_t)out[i] == 0x7f) abort();
  return 0;
}
