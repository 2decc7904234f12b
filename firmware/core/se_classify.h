/* SqueezeEdge firmware core: one command in, one answer out — input checks (the classify
 * contract of host_tools/classify.py), tokenizer, the generated model, decoding.
 * All memory is owned by the caller (see se_classifier_t). */
#ifndef SE_CLASSIFY_H
#define SE_CLASSIFY_H

#include <stdint.h>
#include "se_decode.h"
#include "se_meta.h"
#include "se_names.h"
#include "se_status.h"
#include "se_tokenizer.h"

/* Longest command accepted, in bytes (host_tools/classify.py MAX_TEXT_BYTES). */
#define SE_MAX_TEXT_BYTES 512

typedef enum {
  SE_CHECK_OK = 0,
  SE_CHECK_TOO_LONG,     /* "command too long: N bytes, the limit is 512" */
  SE_CHECK_INVALID_UTF8, /* "command is not valid UTF-8 (byte 0xXX at offset N)" */
  SE_CHECK_EMPTY,        /* "empty command" */
  SE_CHECK_MODEL         /* the model returned an error */
} se_check_t;

typedef struct {
  se_check_t check;
  int32_t length;    /* SE_CHECK_TOO_LONG: the command's length */
  int32_t offset;    /* SE_CHECK_INVALID_UTF8: where, and which byte */
  int32_t byte;
  int32_t model_rc;  /* SE_CHECK_MODEL: se_model_run's status */
} se_check_result_t;

/* The generated entry point (model.h), passed in so that the core needs no model header. */
typedef int (*se_model_fn)(const int32_t *ids, int32_t length, int8_t *intent_logits, int8_t *slot_logits,
                           uint8_t *arena);

typedef struct {
  const se_meta_t *meta;
  se_model_fn run;
  int32_t n_tags;
  uint8_t *arena;               /* SE_MODEL_ARENA_BYTES */
  int32_t *ids, *starts, *ends; /* meta->max_len each */
  int8_t *intent_logits;        /* meta->n_intents */
  int8_t *slot_logits;          /* meta->max_len * n_tags */
  uint8_t *phrase_buf;          /* SE_CLASSIFY_PHRASE_BYTES(max_len) */
  int32_t phrase_cap;
  se_slot_value_t *slot_values; /* meta->n_slots (at least 1) */
  int32_t slot_values_cap;
  const se_names_t *names;      /* the home's names, applied after tokenizing; NULL: none */
} se_classifier_t;

#define SE_CLASSIFY_PHRASE_BYTES(max_len) (SE_MAX_TEXT_BYTES + (max_len) + 8)

/* The contract's input checks, in its order: length, UTF-8, blank. */
se_check_result_t se_check_command(const uint8_t *data, int32_t len);

/* Check and classify data[0..len). On SE_STATUS_INPUT, *check says why; on SE_STATUS_OK the
 * answer points into the classifier's buffers (valid until the next call). */
se_status_t se_classify(const se_classifier_t *clf, const uint8_t *data, int32_t len, se_tokens_t *tok,
                        se_answer_t *ans, se_check_result_t *check);

/* The classifier's token buffers, free between commands: scratch for se_names_add. */
se_tokens_t se_classifier_scratch_tokens(const se_classifier_t *clf);

#endif /* SE_CLASSIFY_H */
