/* SqueezeEdge firmware core: the home's names (see se_names.h). */
#include "se_names.h"

#include <string.h>

se_status_t se_names_init(se_names_t *names, uint16_t *ids, int32_t ids_cap, se_name_entry_t *entries, int32_t cap) {
  if (!names || !ids || !entries) return SE_STATUS_NULL;
  /* entry starts are 16-bit */
  if (ids_cap < 1 || ids_cap > 65535 || cap < 1) return SE_STATUS_BUFFER;
  names->ids = ids;
  names->ids_cap = ids_cap;
  names->entries = entries;
  names->cap = cap;
  se_names_clear(names);
  return SE_STATUS_OK;
}

void se_names_clear(se_names_t *names) {
  if (!names) return;
  names->n_ids = 0;
  names->n = 0;
}

/* Lexicographic order of key[0..n) against entry e's ids (a prefix sorts first). */
static int compare(const se_names_t *names, const int32_t *key, int32_t n, const se_name_entry_t *e) {
  const uint16_t *ids = names->ids + e->start;
  int32_t i, m = n < (int32_t)e->len ? n : (int32_t)e->len;
  for (i = 0; i < m; ++i) {
    if (key[i] != (int32_t)ids[i]) return key[i] < (int32_t)ids[i] ? -1 : 1;
  }
  return (n > (int32_t)e->len) - (n < (int32_t)e->len);
}

/* Index of the first entry not below key[0..n); *found = 1 when that entry equals it. */
static int32_t lower_bound(const se_names_t *names, const int32_t *key, int32_t n, int *found) {
  int32_t lo = 0, hi = names->n;
  while (lo < hi) {
    int32_t mid = lo + (hi - lo) / 2;
    if (compare(names, key, n, &names->entries[mid]) > 0) lo = mid + 1;
    else hi = mid;
  }
  *found = lo < names->n && compare(names, key, n, &names->entries[lo]) == 0;
  return lo;
}

static int equals(const uint8_t *s, int32_t n, const char *lit) {
  return (size_t)n == strlen(lit) && memcmp(s, lit, (size_t)n) == 0;
}

/* The placeholder id for kind (gazetteer.model_kind): "[" kind "]", for name:<domain> without one
 * of its own "[name]"; -1 when the vocabulary has neither. */
static int32_t placeholder_id(const se_meta_t *meta, const uint8_t *kind, int32_t kind_len) {
  uint8_t buf[SE_NAMES_KIND_MAX + 2];
  int32_t id = -1;
  if (kind_len <= SE_NAMES_KIND_MAX) {
    buf[0] = '[';
    memcpy(buf + 1, kind, (size_t)kind_len);
    buf[kind_len + 1] = ']';
    id = se_vocab_id(meta, 0, buf, kind_len + 2);
  }
  if (id < 0 && kind_len >= 4 && memcmp(kind, "name", 4) == 0) {
    id = se_vocab_id(meta, 0, (const uint8_t *)"[name]", 6);
  }
  return id;
}

se_status_t se_names_add(se_names_t *names, const se_meta_t *meta, const uint8_t *kind, int32_t kind_len,
                         const uint8_t *text, int32_t len, se_tokens_t *scratch, se_name_result_t *result) {
  se_name_result_t dummy;
  se_status_t st;
  int32_t placeholder, i, n, pos;
  int found;
  if (!result) result = &dummy;
  if (!names || !meta || !scratch || (!kind && kind_len > 0) || (!text && len > 0)) return SE_STATUS_NULL;
  if (kind_len < 0 || len < 0) return SE_STATUS_BUFFER;
  /* The refusals in gazetteer.Gazetteer.add's order: kind, placeholders, words, [UNK]/cut. */
  if (!(equals(kind, kind_len, "area") || equals(kind, kind_len, "floor") || equals(kind, kind_len, "name") ||
        (kind_len >= 5 && memcmp(kind, "name:", 5) == 0))) {
    *result = SE_NAME_BAD_KIND;
    return SE_STATUS_INPUT;
  }
  placeholder = placeholder_id(meta, kind, kind_len);
  if (placeholder < 0) {
    *result = SE_NAME_NO_PLACEHOLDERS;
    return SE_STATUS_INPUT;
  }
  /* A smaller scratch would cut names earlier than the model's max_len does. */
  if (scratch->capacity < meta->max_len) return SE_STATUS_BUFFER;
  st = se_tokenize(meta, text, len, scratch);
  if (st != SE_STATUS_OK) return st;
  n = scratch->length - 1; /* without [CLS] */
  if (n < 1) {
    *result = SE_NAME_NO_WORDS;
    return SE_STATUS_INPUT;
  }
  /* len is 8-bit: only a model with max_len > 256 could cut a name here that Python keeps */
  if (scratch->truncated || n > 255) {
    *result = SE_NAME_UNREADABLE;
    return SE_STATUS_INPUT;
  }
  for (i = 1; i <= n; ++i) {
    if (scratch->ids[i] == SE_TOKEN_UNK) {
      *result = SE_NAME_UNREADABLE;
      return SE_STATUS_INPUT;
    }
  }
  pos = lower_bound(names, scratch->ids + 1, n, &found);
  if (found) {
    *result = names->entries[pos].placeholder == placeholder ? SE_NAME_DUPLICATE : SE_NAME_OTHER_KIND;
    return SE_STATUS_OK;
  }
  if (names->n >= names->cap || n > names->ids_cap - names->n_ids) {
    *result = SE_NAME_FULL;
    return SE_STATUS_INPUT;
  }
  for (i = 0; i < n; ++i) names->ids[names->n_ids + i] = (uint16_t)scratch->ids[1 + i];
  memmove(&names->entries[pos + 1], &names->entries[pos], (size_t)(names->n - pos) * sizeof names->entries[0]);
  names->entries[pos].start = (uint16_t)names->n_ids;
  names->entries[pos].len = (uint8_t)n;
  names->entries[pos].placeholder = (uint16_t)placeholder;
  names->n_ids += n;
  names->n++;
  *result = SE_NAME_ADDED;
  return SE_STATUS_OK;
}

int32_t se_names_find(const se_names_t *names, const int32_t *ids, int32_t n) {
  int found;
  int32_t pos;
  if (!names || !ids || n < 1) return -1;
  pos = lower_bound(names, ids, n, &found);
  return found ? (int32_t)names->entries[pos].placeholder : -1;
}

/* Placeholders are whole-word pieces "[...]"; the lookup table maps pieces to ids, so the piece
 * of an id is found by a scan (only an answer that names a kept kind needs it). */
int32_t se_names_kind_of(const se_meta_t *meta, int32_t placeholder, char *buf, int32_t cap) {
  int32_t k;
  if (!meta || !buf || cap < 1) return -1;
  for (k = 0; k < meta->n_lookup; ++k) {
    const uint8_t *piece = meta->vocab_blob + meta->vocab_off[k];
    int32_t len = (int32_t)(meta->vocab_off[k + 1] - meta->vocab_off[k]);
    if (meta->vocab_cont[k] || (int32_t)meta->vocab_id[k] != placeholder) continue;
    if (len < 3 || piece[0] != '[' || piece[len - 1] != ']' || len - 2 >= cap) return -1;
    memcpy(buf, piece + 1, (size_t)(len - 2));
    buf[len - 2] = 0;
    return len - 2;
  }
  return -1;
}

se_status_t se_names_apply(const se_names_t *names, const se_meta_t *meta, se_tokens_t *tok) {
  int32_t i, w, n;
  if (!tok || !meta) return SE_STATUS_NULL;
  if (!names || names->n == 0 || tok->length < 2) return SE_STATUS_OK;
  n = tok->length;
  /* w <= i throughout, so the tokens still to be read are never overwritten */
  for (i = 1, w = 1; i < n; ++w) {
    int32_t match = 0, placeholder = 0;
    if (!meta->token_cont[tok->ids[i]]) {
      int found;
      int32_t k = lower_bound(names, tok->ids + i, 1, &found);
      for (; k < names->n; ++k) {
        const se_name_entry_t *e = &names->entries[k];
        int32_t end = i + (int32_t)e->len, j;
        if ((int32_t)names->ids[e->start] != tok->ids[i]) break; /* past the names starting here */
        if (end > n || (int32_t)e->len <= match) continue;
        if (end < n && meta->token_cont[tok->ids[end]]) continue; /* ends inside a word */
        for (j = 1; j < (int32_t)e->len && (int32_t)names->ids[e->start + j] == tok->ids[i + j]; ++j) {
        }
        if (j == (int32_t)e->len) {
          match = j;
          placeholder = e->placeholder;
        }
      }
    }
    if (match) {
      tok->ids[w] = placeholder;
      tok->starts[w] = tok->starts[i];
      tok->ends[w] = tok->ends[i + match - 1];
      i += match;
    } else {
      tok->ids[w] = tok->ids[i];
      tok->starts[w] = tok->starts[i];
      tok->ends[w] = tok->ends[i];
      i++;
    }
  }
  tok->length = w;
  return SE_STATUS_OK;
}
