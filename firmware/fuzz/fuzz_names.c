/* libFuzzer harness: the home's names table (se_names.c) with the compiled-in model's vocabulary,
 * at the STM32 port's sizes (se_engine.h: 600 names, 2048 tokens). The input is a script of
 * operations separated by 0x00: the first byte of each picks add (with a kind chosen by the
 * second byte), apply (tokenize the rest, then replace names) or clear. Checked beyond the
 * sanitizers: the table stays sorted, within its arrays and free of duplicates; apply only
 * shortens the tokens and keeps their offsets inside the text and in order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model_meta.h"
#include "se_names.h"
#include "se_tokenizer.h"

#define NAMES_MAX 600
#define NAMES_IDS_MAX 2048

static se_name_entry_t entries[NAMES_MAX];
static uint16_t ids[NAMES_IDS_MAX];
static int32_t tok_ids[SE_META_MAX_LEN], tok_starts[SE_META_MAX_LEN], tok_ends[SE_META_MAX_LEN];
static const char *const kinds[] = {"area", "floor", "name", "name:light", "name:vacuum", "name:media_player",
                                    "name:no_such_domain", "room", "", "name:"};

static int cmp_entry(const se_names_t *t, const se_name_entry_t *a, const se_name_entry_t *b) {
  int32_t i, m = a->len < b->len ? a->len : b->len;
  for (i = 0; i < m; ++i)
    if (t->ids[a->start + i] != t->ids[b->start + i]) return t->ids[a->start + i] < t->ids[b->start + i] ? -1 : 1;
  return (a->len > b->len) - (a->len < b->len);
}

static void check_table(const se_names_t *t) {
  int32_t k;
  if (t->n < 0 || t->n > t->cap || t->n_ids < 0 || t->n_ids > t->ids_cap) abort();
  for (k = 0; k < t->n; ++k) {
    const se_name_entry_t *e = &t->entries[k];
    if (e->len < 1 || e->start + e->len > t->n_ids) abort();
    if (k > 0 && cmp_entry(t, &t->entries[k - 1], e) >= 0) abort(); /* sorted, no duplicate */
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  se_names_t names;
  se_tokens_t tok;
  size_t at = 0;
  tok.ids = tok_ids; tok.starts = tok_starts; tok.ends = tok_ends; tok.capacity = SE_META_MAX_LEN;
  if (se_names_init(&names, ids, NAMES_IDS_MAX, entries, NAMES_MAX) != SE_STATUS_OK) abort();
  while (at < size) {
    const uint8_t *op = data + at;
    const uint8_t *end = memchr(op, 0, size - at);
    size_t len = end ? (size_t)(end - op) : size - at;
    at += len + 1;
    if (len == 0) continue;
    switch (op[0] % 3) {
      case 0: { /* add */
        se_name_result_t result;
        const char *kind = kinds[len > 1 ? op[1] % (sizeof kinds / sizeof kinds[0]) : 0];
        int32_t before = names.n;
        se_status_t st;
        if (len < 2) break;
        st = se_names_add(&names, &se_model_meta, (const uint8_t *)kind, (int32_t)strlen(kind), op + 2,
                          (int32_t)(len - 2), &tok, &result);
        if (st == SE_STATUS_OK && result == SE_NAME_ADDED && names.n != before + 1) abort();
        if ((st != SE_STATUS_OK || result != SE_NAME_ADDED) && names.n != before) abort();
        if (result == SE_NAME_OTHER_KIND && se_names_find(&names, tok.ids + 1, tok.length - 1) < 0) abort();
        break;
      }
      case 1: { /* apply */
        int32_t before, k;
        if (se_tokenize(&se_model_meta, op + 1, (int32_t)(len - 1), &tok) != SE_STATUS_OK) abort();
        before = tok.length;
        if (se_names_apply(&names, &se_model_meta, &tok) != SE_STATUS_OK) abort();
        if (tok.length < 1 || tok.length > before) abort();
        for (k = 1; k < tok.length; ++k) {
          if (tok.starts[k] < 0 || tok.starts[k] > tok.ends[k] || tok.ends[k] > (int32_t)(len - 1)) abort();
          if (k > 1 && tok.starts[k] < tok.ends[k - 1]) abort();
        }
        break;
      }
      default:
        se_names_clear(&names);
    }
    check_table(&names);
  }
  return 0;
}
