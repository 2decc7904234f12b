/* SqueezeEdge firmware core: one device = the compiled-in model's classifier (se_engine.h) + the
 * line protocol, with every buffer they need in one caller-owned struct sized by the model
 * package's macros. Each port makes one `static se_device_t` (its RAM is then known at link time)
 * and calls se_device_init; nothing is allocated.
 *
 * Header-only because the sizes come from the model package: include it only where model.h and
 * model_meta.h are on the include path. A port may define SE_LINE_MAX / SE_OUT_MAX (request line
 * and answer buffer bytes) and SE_NAMES_MAX / SE_NAMES_IDS_MAX (se_engine.h) before including it. */
#ifndef SE_DEVICE_H
#define SE_DEVICE_H

#include <stdint.h>

#include "se_engine.h"
#include "se_protocol.h"

#ifndef SE_LINE_MAX
#define SE_LINE_MAX 1024
#endif
#ifndef SE_OUT_MAX
#define SE_OUT_MAX 4096
#endif
#if SE_LINE_MAX < SE_PROTOCOL_MIN_LINE || SE_OUT_MAX < SE_PROTOCOL_MIN_OUT
#error "SE_LINE_MAX / SE_OUT_MAX are below the protocol's minimum (se_protocol.h)"
#endif

typedef struct {
  se_engine_t engine; /* first: the struct's alignment is the arena's */
  uint8_t line[SE_LINE_MAX];
  uint8_t text[SE_LINE_MAX];
  char out[SE_OUT_MAX];
  se_protocol_t proto;
} se_device_t;

/* Wires d's classifier to the compiled-in model and its protocol to `write` (answers) and `clock`
 * (may be NULL). `device` and `firmware_version` are reported by /info and must outlive d. */
static inline se_status_t se_device_init(se_device_t *d, const char *device, const char *firmware_version,
                                         se_write_fn write, void *write_ctx, se_clock_fn clock) {
  se_protocol_t *p = &d->proto;
  if (se_engine_init(&d->engine) != SE_STATUS_OK) return SE_STATUS_BUFFER;
  p->clf = &d->engine.clf;
  p->names = &d->engine.names;
  p->write = write;
  p->write_ctx = write_ctx;
  p->clock = clock;
  p->clock_ctx = 0;
  p->device = device;
  p->firmware_version = firmware_version;
  p->arena_bytes = SE_MODEL_ARENA_BYTES;
  p->line = d->line;
  p->line_cap = SE_LINE_MAX;
  p->text_buf = d->text;
  p->out = d->out;
  p->out_cap = SE_OUT_MAX;
  return se_protocol_init(p);
}

#endif /* SE_DEVICE_H */
