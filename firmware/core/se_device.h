/* SqueezeEdge firmware core: one device = the compiled-in model's classifier + the line protocol,
 * with every buffer they need in one caller-owned struct sized by the model package's macros.
 * Each port makes one `static se_device_t` (its RAM is then known at link time) and calls
 * se_device_init; nothing is allocated.
 *
 * Header-only because the sizes come from the model package: include it only where model.h and
 * model_meta.h are on the include path. A port may define SE_LINE_MAX / SE_OUT_MAX (request line
 * and answer buffer bytes) and SE_NAMES_MAX / SE_NAMES_IDS_MAX (the home's names: entries and
 * their token ids in total; 6 + 2 bytes of RAM each) before including it. */
#ifndef SE_DEVICE_H
#define SE_DEVICE_H

#include <stdint.h>

#include "model.h"
#include "model_meta.h"
#include "se_classify.h"
#include "se_protocol.h"

#if SE_MODEL_MAX_LEN != SE_META_MAX_LEN || SE_MODEL_N_TAGS != SE_META_N_TAGS || SE_MODEL_N_INTENTS != SE_META_N_INTENTS
#error "model.h and model_meta.h describe different models: make both from the same model file"
#endif

#ifndef SE_LINE_MAX
#define SE_LINE_MAX 1024
#endif
#ifndef SE_OUT_MAX
#define SE_OUT_MAX 4096
#endif
/* Room for a large home (home_names("all"): 520 names) with margin. */
#ifndef SE_NAMES_MAX
#define SE_NAMES_MAX 600
#endif
#ifndef SE_NAMES_IDS_MAX
#define SE_NAMES_IDS_MAX 2048
#endif
#if SE_NAMES_MAX < 1 || SE_NAMES_IDS_MAX < 1 || SE_NAMES_IDS_MAX > 65535
#error "SE_NAMES_MAX must be >= 1 and SE_NAMES_IDS_MAX 1..65535 (entries address ids with 16 bits)"
#endif
#if SE_LINE_MAX < SE_PROTOCOL_MIN_LINE || SE_OUT_MAX < SE_PROTOCOL_MIN_OUT
#error "SE_LINE_MAX / SE_OUT_MAX are below the protocol's minimum (se_protocol.h)"
#endif

typedef struct {
  uint8_t arena[SE_MODEL_ARENA_BYTES + 1]; /* first: the struct's alignment is the arena's */
  int32_t ids[SE_META_MAX_LEN], starts[SE_META_MAX_LEN], ends[SE_META_MAX_LEN];
  int8_t intent_logits[SE_META_N_INTENTS];
  int8_t slot_logits[SE_META_MAX_LEN * SE_META_N_TAGS];
  uint8_t phrase_buf[SE_CLASSIFY_PHRASE_BYTES(SE_META_MAX_LEN)];
  se_slot_value_t slot_values[SE_META_N_SLOTS + 1];
  uint8_t line[SE_LINE_MAX];
  uint8_t text[SE_LINE_MAX];
  char out[SE_OUT_MAX];
  se_name_entry_t name_entries[SE_NAMES_MAX];
  uint16_t name_ids[SE_NAMES_IDS_MAX];
  se_names_t names;
  se_classifier_t clf;
  se_protocol_t proto;
} se_device_t;

/* Wires d's classifier to the compiled-in model and its protocol to `write` (answers) and `clock`
 * (may be NULL). `device` and `firmware_version` are reported by /info and must outlive d. */
static inline se_status_t se_device_init(se_device_t *d, const char *device, const char *firmware_version,
                                         se_write_fn write, void *write_ctx, se_clock_fn clock) {
  se_classifier_t *c = &d->clf;
  se_protocol_t *p = &d->proto;
  c->meta = &se_model_meta;
  c->run = se_model_run;
  c->n_tags = SE_MODEL_N_TAGS;
  c->arena = d->arena;
  c->ids = d->ids;
  c->starts = d->starts;
  c->ends = d->ends;
  c->intent_logits = d->intent_logits;
  c->slot_logits = d->slot_logits;
  c->phrase_buf = d->phrase_buf;
  c->phrase_cap = (int32_t)sizeof d->phrase_buf;
  c->slot_values = d->slot_values;
  c->slot_values_cap = SE_META_N_SLOTS + 1;
  if (se_names_init(&d->names, d->name_ids, SE_NAMES_IDS_MAX, d->name_entries, SE_NAMES_MAX) != SE_STATUS_OK) {
    return SE_STATUS_BUFFER;
  }
  c->names = &d->names;
  p->clf = c;
  p->names = &d->names;
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
