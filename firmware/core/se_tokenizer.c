/* SqueezeEdge firmware core: byte-level lowercase WordPiece (see se_tokenizer.h). */
#include "se_tokenizer.h"

#include "se_case.h"

#include <string.h>

int se_byte_class(uint8_t b) {
  if (b <= 0x20 || b == 0x7F) return 0;
  if (b >= 0x30 && b <= 0x39) return 2;
  if (b < 0x80 && !((b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A))) return 1;
  return 3;
}

/* Binary search over the sorted lookup table (see se_tokenizer.h). */
int32_t se_vocab_id(const se_meta_t *meta, int cont, const uint8_t *key, int32_t n) {
  int32_t lo = 0, hi = meta->n_lookup - 1;
  while (lo <= hi) {
    int32_t mid = lo + (hi - lo) / 2;
    int c = (int)meta->vocab_cont[mid] - cont;
    if (c == 0) {
      const uint8_t *p = meta->vocab_blob + meta->vocab_off[mid];
      int32_t pn = (int32_t)(meta->vocab_off[mid + 1] - meta->vocab_off[mid]);
      int32_t m = pn < n ? pn : n;
      c = m ? memcmp(p, key, (size_t)m) : 0;
      if (c == 0) c = (pn > n) - (pn < n);
    }
    if (c == 0) return (int32_t)meta->vocab_id[mid];
    if (c < 0) lo = mid + 1; else hi = mid - 1;
  }
  return -1;
}

static void put(se_tokens_t *out, int32_t limit, int32_t id, int32_t start, int32_t end) {
  if (out->length < limit) {
    out->ids[out->length] = id;
    out->starts[out->length] = start;
    out->ends[out->length] = end;
    out->length++;
  } else {
    out->truncated = 1;
  }
}

/* Pieces of the word data[ws..we): emits them, or one [UNK] when the word cannot be split. */
static void word_pieces(const se_meta_t *meta, const uint8_t *data, int32_t ws, int32_t we,
                        se_tokens_t *out, int32_t limit) {
  uint8_t low[SE_MAX_WORD_BYTES];
  int32_t n = we - ws, start = 0;
  int32_t saved_len = out->length, saved_trunc = out->truncated;
  if (n > SE_MAX_WORD_BYTES) {
    put(out, limit, SE_TOKEN_UNK, ws, we);
    return;
  }
  se_fold_case(data + ws, n, low);
  while (start < n) {
    int32_t end = n < start + meta->max_piece ? n : start + meta->max_piece;
    int32_t id = -1;
    for (; end > start; --end) {
      id = se_vocab_id(meta, start > 0, low + start, end - start);
      if (id >= 0) break;
    }
    if (id < 0) {
      out->length = saved_len;
      out->truncated = saved_trunc;
      put(out, limit, SE_TOKEN_UNK, ws, we);
      return;
    }
    put(out, limit, id, ws + start, ws + end);
    start = end;
  }
}

se_status_t se_tokenize(const se_meta_t *meta, const uint8_t *data, int32_t len, se_tokens_t *out) {
  int32_t i, start = -1, limit;
  if (!meta || !out || !out->ids || !out->starts || !out->ends || (!data && len > 0)) return SE_STATUS_NULL;
  if (out->capacity < 1) return SE_STATUS_BUFFER;
  limit = out->capacity < meta->max_len ? out->capacity : meta->max_len;
  out->length = 0;
  out->truncated = 0;
  put(out, limit, SE_TOKEN_CLS, 0, 0);
  for (i = 0; i < len && !out->truncated; ++i) {
    int cls = se_byte_class(data[i]);
    if (cls == 3) {
      if (start < 0) start = i;
      continue;
    }
    if (start >= 0) {
      word_pieces(meta, data, start, i, out, limit);
      start = -1;
    }
    if (cls != 0 && !out->truncated) word_pieces(meta, data, i, i + 1, out, limit);
  }
  if (start >= 0 && !out->truncated) word_pieces(meta, data, start, len, out, limit);
  return SE_STATUS_OK;
}
