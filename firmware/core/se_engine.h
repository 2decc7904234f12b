/* SqueezeEdge firmware core: the compiled-in model's classifier with every buffer it needs (the
 * arena, tokens, logits, decoding scratch, the home's names table) in one caller-owned struct
 * sized by the model package's macros. se_device.h adds the line protocol on top; the MicroPython
 * module uses this alone. Nothing is allocated.
 *
 * Header-only because the sizes come from the model package: include it only where model.h and
 * model_meta.h are on the include path. Define SE_NAMES_MAX / SE_NAMES_IDS_MAX (the home's names:
 * entries and their token ids in total; 6 + 2 bytes of RAM each) before including it to change
 * the table's size. */
#ifndef SE_ENGINE_H
#define SE_ENGINE_H

#include <stdint.h>

#include "model.h"
#include "model_meta.h"
#include "se_classify.h"
#include "se_names.h"

#if SE_MODEL_MAX_LEN != SE_META_MAX_LEN || SE_MODEL_N_TAGS != SE_META_N_TAGS || SE_MODEL_N_INTENTS != SE_META_N_INTENTS
#error "model.h and model_meta.h describe different models: make both from the same model file"
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

typedef struct {
  uint8_t arena[SE_MODEL_ARENA_BYTES + 1]; /* first: the struct's alignment is the arena's */
  int32_t ids[SE_META_MAX_LEN], starts[SE_META_MAX_LEN], ends[SE_META_MAX_LEN];
  int8_t intent_logits[SE_META_N_INTENTS];
  int8_t slot_logits[SE_META_MAX_LEN * SE_META_N_TAGS];
  uint8_t phrase_buf[SE_CLASSIFY_PHRASE_BYTES(SE_META_MAX_LEN)];
  se_slot_value_t slot_values[SE_META_N_SLOTS + 1];
  se_name_entry_t name_entries[SE_NAMES_MAX];
  uint16_t name_ids[SE_NAMES_IDS_MAX];
  se_names_t names;
  se_classifier_t clf;
} se_engine_t;

/* Wires e's classifier to the compiled-in model and an empty names table. */
static inline se_status_t se_engine_init(se_engine_t *e) {
  se_classifier_t *c = &e->clf;
  c->meta = &se_model_meta;
  c->run = se_model_run;
  c->n_tags = SE_MODEL_N_TAGS;
  c->arena = e->arena;
  c->ids = e->ids;
  c->starts = e->starts;
  c->ends = e->ends;
  c->intent_logits = e->intent_logits;
  c->slot_logits = e->slot_logits;
  c->phrase_buf = e->phrase_buf;
  c->phrase_cap = (int32_t)sizeof e->phrase_buf;
  c->slot_values = e->slot_values;
  c->slot_values_cap = SE_META_N_SLOTS + 1;
  if (se_names_init(&e->names, e->name_ids, SE_NAMES_IDS_MAX, e->name_entries, SE_NAMES_MAX) != SE_STATUS_OK) {
    return SE_STATUS_BUFFER;
  }
  c->names = &e->names;
  return SE_STATUS_OK;
}

#endif /* SE_ENGINE_H */
