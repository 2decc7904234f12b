/* SqueezeEdge firmware core: classification glue (see se_classify.h). */
#include "se_classify.h"

#include "se_utf8.h"

se_check_result_t se_check_command(const uint8_t *data, int32_t len) {
  se_check_result_t r = {SE_CHECK_OK, 0, 0, 0, 0};
  int32_t i, bad = 0, blank = 1;
  if (len > SE_MAX_TEXT_BYTES) {
    r.check = SE_CHECK_TOO_LONG;
    r.length = len;
    return r;
  }
  if (!se_utf8_valid(data, len, &bad)) {
    r.check = SE_CHECK_INVALID_UTF8;
    r.offset = bad;
    r.byte = data[bad];
    return r;
  }
  for (i = 0; i < len; ++i) {
    uint8_t b = data[i];
    if (!(b == ' ' || b == '\t' || b == '\r' || b == '\n' || b == '\v' || b == '\f')) {
      blank = 0;
      break;
    }
  }
  if (blank) r.check = SE_CHECK_EMPTY;
  return r;
}

se_status_t se_classify(const se_classifier_t *clf, const uint8_t *data, int32_t len, se_tokens_t *tok,
                        se_answer_t *ans, se_check_result_t *check) {
  se_status_t st;
  int rc;
  if (!clf || !tok || !ans || !check || (!data && len > 0)) return SE_STATUS_NULL;
  *check = se_check_command(data, len);
  if (check->check != SE_CHECK_OK) return SE_STATUS_INPUT;
  tok->ids = clf->ids;
  tok->starts = clf->starts;
  tok->ends = clf->ends;
  tok->capacity = clf->meta->max_len;
  st = se_tokenize(clf->meta, data, len, tok);
  if (st == SE_STATUS_OK) st = se_names_apply(clf->names, clf->meta, tok);
  if (st != SE_STATUS_OK) return st;
  rc = clf->run(tok->ids, tok->length, clf->intent_logits, clf->slot_logits, clf->arena);
  if (rc != 0) {
    check->check = SE_CHECK_MODEL;
    check->model_rc = rc;
    return SE_STATUS_INPUT;
  }
  ans->slots = clf->slot_values;
  ans->slots_cap = clf->slot_values_cap;
  return se_decode(clf->meta, data, tok, clf->intent_logits, clf->slot_logits, clf->n_tags, clf->phrase_buf,
                   clf->phrase_cap, clf->names != 0 && clf->names->n > 0, ans);
}

se_tokens_t se_classifier_scratch_tokens(const se_classifier_t *clf) {
  se_tokens_t t;
  t.ids = clf->ids;
  t.starts = clf->starts;
  t.ends = clf->ends;
  t.capacity = clf->meta->max_len;
  t.length = 0;
  t.truncated = 0;
  return t;
}
