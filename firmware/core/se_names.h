/* SqueezeEdge firmware core: the home's names (areas, floors, entity names) and how a command's
 * tokens that spell one become one placeholder token (models/TOKENIZER.md §4; the Python
 * reference is models/gazetteer.py, class Gazetteer, and this must equal it bit for bit).
 *
 * The table lives in caller-owned arrays: a pool of token ids and one entry per distinct name.
 * Entries are kept sorted by their token ids so that a lookup is a binary search; "first added
 * wins" holds because a name whose ids equal an earlier one's is never stored. No allocation. */
#ifndef SE_NAMES_H
#define SE_NAMES_H

#include <stdint.h>
#include "se_meta.h"
#include "se_status.h"
#include "se_tokenizer.h"

/* Longest kind whose placeholder is looked up in the vocabulary ("name:binary_sensor" is 18). */
#define SE_NAMES_KIND_MAX 40

typedef struct {
  uint16_t start;       /* first id in se_names_t.ids */
  uint8_t len;          /* number of ids (>= 1) */
  uint16_t placeholder; /* the token id the name becomes */
} se_name_entry_t;

typedef struct {
  uint16_t *ids;             /* pool of the entries' token ids, capacity ids_cap (<= 65535) */
  int32_t ids_cap, n_ids;
  se_name_entry_t *entries;  /* capacity cap, n used, sorted by token ids */
  int32_t cap, n;
} se_names_t;

/* What se_names_add did with a name. Only ADDED, DUPLICATE and OTHER_KIND leave the caller
 * without an error; OTHER_KIND deserves a word to the sender (its kind is not the one kept). */
typedef enum {
  SE_NAME_ADDED = 0,
  SE_NAME_DUPLICATE,       /* same tokens and placeholder as a stored name: ignored, the first one wins */
  SE_NAME_BAD_KIND,        /* not area, floor, name or name:<domain> */
  SE_NAME_NO_PLACEHOLDERS, /* the model was trained without home names */
  SE_NAME_NO_WORDS,        /* the text gives no token */
  SE_NAME_UNREADABLE,      /* cut by max_len, or contains [UNK] */
  SE_NAME_FULL,            /* no room for another entry or for its ids */
  SE_NAME_OTHER_KIND       /* same tokens as a stored name of another placeholder: ignored, the first kind stays */
} se_name_result_t;

/* An empty table over ids[ids_cap] and entries[cap]. */
se_status_t se_names_init(se_names_t *names, uint16_t *ids, int32_t ids_cap, se_name_entry_t *entries, int32_t cap);

/* Forget every name. */
void se_names_clear(se_names_t *names);

/* Add the name text[0..len) of kind[0..kind_len). `scratch` holds the name's tokens while it is
 * tokenized: capacity >= meta->max_len (a classifier's token buffers will do). Returns
 * SE_STATUS_OK when the name was added or was a duplicate, SE_STATUS_INPUT when it was refused;
 * *result says which. */
se_status_t se_names_add(se_names_t *names, const se_meta_t *meta, const uint8_t *kind, int32_t kind_len,
                         const uint8_t *text, int32_t len, se_tokens_t *scratch, se_name_result_t *result);

/* The placeholder token of the stored name spelled by ids[0..n), or -1 when none is stored. */
int32_t se_names_find(const se_names_t *names, const int32_t *ids, int32_t n);

/* The kind a placeholder token stands for, as its vocabulary piece without the brackets ("area",
 * "name:light", "name"), NUL-terminated into buf[cap]; returns its length, or -1 if the id is not
 * a placeholder piece or it does not fit. */
int32_t se_names_kind_of(const se_meta_t *meta, int32_t placeholder, char *buf, int32_t cap);

/* Rewrite tok (the output of se_tokenize) in place: every run of tokens that spells a stored name
 * and ends at a word end becomes the name's placeholder, its offsets covering the whole run.
 * names may be NULL or empty (tok is left as it is). */
se_status_t se_names_apply(const se_names_t *names, const se_meta_t *meta, se_tokens_t *tok);

#endif /* SE_NAMES_H */
