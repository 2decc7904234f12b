/* SqueezeEdge firmware core: decoding (see se_decode.h). */
#include "se_decode.h"

#include <string.h>

#include "se_case.h"

int32_t se_argmax_i8(const int8_t *v, int32_t n) {
  int32_t i, best = 0;
  for (i = 1; i < n; ++i)
    if (v[i] > v[best]) best = i;
  return best;
}

static int64_t rshift_round(int64_t x, int32_t n) { return (x + ((int64_t)1 << (n - 1))) >> n; }

int32_t se_confidence(const se_meta_t *meta, const int8_t *logits, int32_t n, int32_t top) {
  int64_t total = 0;
  int32_t k;
  for (k = 0; k < n; ++k) {
    int64_t gap = (int64_t)logits[top] - (int64_t)logits[k];
    int64_t idx = rshift_round(gap * (int64_t)meta->conf_m, meta->conf_n);
    if (idx > 255) idx = 255;
    total += meta->exp_table[idx];
  }
  if (total <= 0) return 0;
  return (int32_t)(((int64_t)meta->exp_table[0] * SE_CONF_ONE + total / 2) / total);
}

int32_t se_normalize_phrase(const uint8_t *data, int32_t n, uint8_t *out, int32_t cap) {
  int32_t i, len = 0, prev_end = -1, start = -1;
  for (i = 0; i <= n; ++i) {
    int cls = i < n ? se_byte_class(data[i]) : 0;
    int32_t ws = -1, we = -1, k;
    if (cls == 3) {
      if (start < 0) start = i;
      continue;
    }
    /* a word ends here (and/or a one-byte word is here): emit it/them in order */
    for (k = 0; k < 2; ++k) {
      if (k == 0) {
        if (start < 0) continue;
        ws = start; we = i; start = -1;
      } else {
        if (i >= n || cls == 0) continue;
        ws = i; we = i + 1;
      }
      if (prev_end >= 0 && ws > prev_end) {
        if (len >= cap) return -1;
        out[len++] = ' ';
      }
      if (we - ws > cap - len) return -1;
      se_fold_case(data + ws, we - ws, out + len);
      len += we - ws;
      prev_end = we;
    }
  }
  return len;
}

static int is_digit(uint8_t b) { return b >= '0' && b <= '9'; }

static int is_number_separator(const uint8_t *data, const se_tokens_t *tok, int32_t pos) {
  return tok->ends[pos] - tok->starts[pos] == 1 && (data[tok->starts[pos]] == '.' || data[tok->starts[pos]] == ',');
}

/* 1 when token pos continues the word of the token before it (models/tokenizer.py
 * word_continuation): a "##" piece, or the rest of a number written without spaces (a digit
 * after a digit; one '.' or ',' between two digits, and the digit after it). Digits are
 * tokens of their own, so without this a number slot would keep only its first digit. */
static int continues_word(const se_meta_t *meta, const uint8_t *data, const se_tokens_t *tok, int32_t pos) {
  int32_t id = tok->ids[pos];
  if (id >= 0 && id < meta->vocab_size && meta->token_cont[id]) return 1;
  if (pos < 2 || tok->starts[pos] != tok->ends[pos - 1]) return 0;
  if (is_digit(data[tok->starts[pos]]))
    return is_digit(data[tok->ends[pos - 1] - 1]) ||
           (is_number_separator(data, tok, pos - 1) && pos >= 3 && tok->starts[pos - 1] == tok->ends[pos - 2] &&
            is_digit(data[tok->ends[pos - 2] - 1]));
  return is_number_separator(data, tok, pos) && is_digit(data[tok->ends[pos - 1] - 1]) && pos + 1 < tok->length &&
         tok->starts[pos + 1] == tok->ends[pos] && is_digit(data[tok->starts[pos + 1]]);
}

#define SE_NO_SCORE INT32_MIN

static int tag_allowed(const uint8_t *allowed, int32_t t) { return t == 0 || !allowed || allowed[(t - 1) / 2]; }

/* O may follow anything; I-x only B-x or I-x; B-x anything but B-x and I-x (models/decode.py
 * may_follow: two spans of one slot always have a word between them). */
static int may_follow(int32_t prev, int32_t t) {
  if (t == 0) return 1;
  if (t % 2 == 1) return prev != t && prev != t + 1;
  return prev == t - 1 || prev == t;
}

/* The best BIO-consistent tag of each word (Viterbi, models/decode.py word_tags): the allowed
 * tag sequence with the largest sum of slot logits; ties to the lowest tag index, for each
 * predecessor and at the end. Tokens that continue a word get tag 0. Each word's row of slot_logits
 * (but the first word's) is overwritten with its back pointers once read: the logits are
 * scratch owned by the caller, and this way decoding needs no memory of its own. */
static se_status_t best_tags(const se_meta_t *meta, int32_t intent, const uint8_t *data, const se_tokens_t *tok,
                             int8_t *slot_logits, int32_t n_tags, uint8_t *tags) {
  int32_t score[2][SE_DECODE_MAX_TAGS];
  const uint8_t *allowed = meta->intent_slot_allowed ? meta->intent_slot_allowed + (int64_t)intent * meta->n_slots
                                                     : 0;
  int32_t pos, t, p, cur = 0, first = -1, last = -1;
  if (n_tags > SE_DECODE_MAX_TAGS || tok->length > SE_DECODE_MAX_LEN) return SE_STATUS_BUFFER;
  for (pos = 0; pos < tok->length; ++pos) {
    int8_t *row = slot_logits + (int64_t)pos * n_tags;
    tags[pos] = 0;
    if (pos == 0 || continues_word(meta, data, tok, pos)) continue;
    if (first < 0) {
      for (t = 0; t < n_tags; ++t)
        score[cur][t] = (tag_allowed(allowed, t) && (t == 0 || t % 2 == 1)) ? row[t] : SE_NO_SCORE;
      first = pos;
    } else {
      int32_t nxt = 1 - cur;
      for (t = 0; t < n_tags; ++t) {
        int32_t best_p = -1;
        score[nxt][t] = SE_NO_SCORE;
        if (!tag_allowed(allowed, t)) continue;
        for (p = 0; p < n_tags; ++p)
          if (score[cur][p] != SE_NO_SCORE && may_follow(p, t) && (best_p < 0 || score[cur][p] > score[cur][best_p]))
            best_p = p;
        if (best_p < 0) continue;
        score[nxt][t] = score[cur][best_p] + row[t];
        row[t] = (int8_t)best_p; /* the logit is read; keep the back pointer in its place */
      }
      cur = nxt;
    }
    last = pos;
  }
  if (first < 0) return SE_STATUS_OK;
  t = -1;
  for (p = 0; p < n_tags; ++p)
    if (score[cur][p] != SE_NO_SCORE && (t < 0 || score[cur][p] > score[cur][t])) t = p;
  for (pos = last; pos >= first; --pos) {
    if (continues_word(meta, data, tok, pos)) continue;
    tags[pos] = (uint8_t)t;
    if (pos > first) t = slot_logits[(int64_t)pos * n_tags + t];
  }
  return SE_STATUS_OK;
}

/* Value-table lookup: the Home Assistant value of `phrase` for slot s, or NULL. */
static const char *find_value(const se_meta_t *meta, int32_t s, const uint8_t *phrase, int32_t n) {
  int32_t lo = meta->value_start[s], hi = meta->value_start[s + 1] - 1;
  while (lo <= hi) {
    int32_t mid = lo + (hi - lo) / 2;
    const uint8_t *p = (const uint8_t *)(meta->strings + meta->value_phrases[mid]);
    int32_t pn = (int32_t)strlen((const char *)p);
    int32_t m = pn < n ? pn : n;
    int c = m ? memcmp(p, phrase, (size_t)m) : 0;
    if (c == 0) c = (pn > n) - (pn < n);
    if (c == 0) return meta->strings + meta->value_texts[mid];
    if (c < 0) lo = mid + 1; else hi = mid - 1;
  }
  return NULL;
}

static int negated(const se_meta_t *meta, int32_t slot) {
  return meta->slot_negated != NULL && meta->slot_negated[slot];
}

/* Appends the span's value to ans. A plain and a negated slot share one Home Assistant name,
 * so "first mention wins" compares names, not slot indices. */
static se_status_t emit_span(const se_meta_t *meta, const uint8_t *data, const se_tokens_t *tok,
                             int32_t first, int32_t last, int32_t slot, uint8_t *buf, int32_t cap,
                             int32_t *used, se_answer_t *ans) {
  int32_t k, n, sign = negated(meta, slot);
  const char *v;
  uint8_t *out;
  for (k = 0; k < ans->n_slots; ++k)
    if (strcmp(se_meta_slot(meta, ans->slots[k].slot), se_meta_slot(meta, slot)) == 0) return SE_STATUS_OK;
  if (ans->n_slots >= ans->slots_cap) return SE_STATUS_BUFFER;
  if (*used + sign > cap) return SE_STATUS_BUFFER;
  out = buf + *used;
  n = se_normalize_phrase(data + tok->starts[first], tok->ends[last] - tok->starts[first], out + sign,
                          cap - *used - sign);
  if (n < 0) return SE_STATUS_BUFFER;
  v = find_value(meta, slot, out + sign, n);
  if (v) {
    int32_t vn = (int32_t)strlen(v);
    if (!sign) {
      ans->slots[ans->n_slots].value = (const uint8_t *)v;
      ans->slots[ans->n_slots].value_len = vn;
      ans->slots[ans->n_slots].slot = slot;
      ans->n_slots++;
      return SE_STATUS_OK;
    }
    if (*used + 1 + vn > cap) return SE_STATUS_BUFFER;
    memcpy(out + 1, v, (size_t)vn);
    n = vn;
  }
  if (sign) out[0] = '-';
  ans->slots[ans->n_slots].slot = slot;
  ans->slots[ans->n_slots].value = out;
  ans->slots[ans->n_slots].value_len = n + sign;
  *used += n + sign;
  ans->n_slots++;
  return SE_STATUS_OK;
}

se_status_t se_decode(const se_meta_t *meta, const uint8_t *data, const se_tokens_t *tok,
                      const int8_t *intent_logits, int8_t *slot_logits, int32_t n_tags,
                      uint8_t *phrase_buf, int32_t phrase_cap, int names_told, se_answer_t *ans) {
  int32_t pos, used = 0, cur_first = -1, cur_last = -1, cur_slot = -1, threshold;
  uint8_t tags[SE_DECODE_MAX_LEN];
  se_status_t st;
  if (!meta || !tok || !intent_logits || !slot_logits || !ans || (!data && tok->length > 1)) return SE_STATUS_NULL;
  ans->n_slots = 0;
  ans->top = se_argmax_i8(intent_logits, meta->n_intents);
  ans->conf_q = se_confidence(meta, intent_logits, meta->n_intents, ans->top);
  threshold = names_told ? meta->oos_threshold : meta->oos_threshold_no_names;
  ans->intent = (ans->top == 0 || ans->conf_q < threshold) ? 0 : ans->top;
  if (ans->intent == 0) return SE_STATUS_OK;
  st = best_tags(meta, ans->intent, data, tok, slot_logits, n_tags, tags);
  if (st != SE_STATUS_OK) return st;
  for (pos = 1; pos < tok->length; ++pos) {
    int32_t tag, slot, inside;
    if (continues_word(meta, data, tok, pos)) {
      if (cur_first >= 0 && cur_last == pos - 1) cur_last = pos;
      continue;
    }
    tag = tags[pos];
    if (tag == 0) {
      if (cur_first >= 0) {
        st = emit_span(meta, data, tok, cur_first, cur_last, cur_slot, phrase_buf, phrase_cap, &used, ans);
        if (st != SE_STATUS_OK) return st;
      }
      cur_first = -1;
      continue;
    }
    slot = (tag - 1) / 2;
    inside = (tag - 1) % 2 == 1;
    if (inside && cur_first >= 0 && cur_slot == slot) {
      cur_last = pos;
    } else {
      if (cur_first >= 0) {
        st = emit_span(meta, data, tok, cur_first, cur_last, cur_slot, phrase_buf, phrase_cap, &used, ans);
        if (st != SE_STATUS_OK) return st;
      }
      cur_first = cur_last = pos;
      cur_slot = slot;
    }
  }
  if (cur_first >= 0) {
    st = emit_span(meta, data, tok, cur_first, cur_last, cur_slot, phrase_buf, phrase_cap, &used, ans);
    if (st != SE_STATUS_OK) return st;
  }
  return SE_STATUS_OK;
}
