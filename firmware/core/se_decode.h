/* SqueezeEdge firmware core: integer logits → answer (intent, confidence, slot values), step for
 * step as models/decode.py (FORMAT.md "Decoding"). No float, no allocation. */
#ifndef SE_DECODE_H
#define SE_DECODE_H

#include <stdint.h>
#include "se_meta.h"
#include "se_status.h"
#include "se_tokenizer.h"

#define SE_CONF_ONE 10000

typedef struct {
  int32_t slot;        /* slot index (se_meta_slot) */
  const uint8_t *value;/* value bytes: a value-table entry (flash) or the normalized phrase */
  int32_t value_len;
} se_slot_value_t;

typedef struct {
  int32_t top;            /* argmax of the intent logits */
  int32_t intent;         /* 0 = out of scope (null), else an intent index (se_meta_intent) */
  int32_t conf_q;         /* confidence, 0..SE_CONF_ONE */
  se_slot_value_t *slots; /* caller-owned, capacity slots_cap (meta->n_slots suffices) */
  int32_t slots_cap;
  int32_t n_slots;        /* out: values found, in order of first mention */
} se_answer_t;

/* Index of the largest of v[0..n) (the lowest index on ties). */
int32_t se_argmax_i8(const int8_t *v, int32_t n);

/* Confidence of class `top` in 0..SE_CONF_ONE. */
int32_t se_confidence(const se_meta_t *meta, const int8_t *logits, int32_t n, int32_t top);

/* Normalize data[0..n) as labels.normalize_phrase: ASCII lowercase, words joined by one space
 * where whitespace/control bytes separated them. Returns the length, or -1 if cap is too small. */
int32_t se_normalize_phrase(const uint8_t *data, int32_t n, uint8_t *out, int32_t cap);

/* Decode one inference. data: the input bytes; tok: its tokens; slot_logits row-major
 * [tok->length][n_tags]; phrase_buf (capacity >= input length + max_len) holds normalized
 * phrases that the answer points to. */
/* Bounds of the decoder's own stack state (tags per token, two rows of Viterbi scores). */
#define SE_DECODE_MAX_LEN 128
#define SE_DECODE_MAX_TAGS 128

/* slot_logits is the caller's scratch: decoding overwrites rows with Viterbi back pointers.
 * names_told: the device holds home names (meta->oos_threshold applies, else
 * meta->oos_threshold_no_names). */
se_status_t se_decode(const se_meta_t *meta, const uint8_t *data, const se_tokens_t *tok,
                      const int8_t *intent_logits, int8_t *slot_logits, int32_t n_tags,
                      uint8_t *phrase_buf, int32_t phrase_cap, int names_told, se_answer_t *ans);

#endif /* SE_DECODE_H */
