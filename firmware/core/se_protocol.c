/* SqueezeEdge firmware core: the line protocol (see se_protocol.h and firmware/PROTOCOL.md). */
#include "se_protocol.h"

#include <string.h>

#include "se_json.h"
#include "se_utf8.h"

se_status_t se_protocol_init(se_protocol_t *p) {
  if (!p || !p->clf || !p->write || !p->line || !p->text_buf || !p->out) return SE_STATUS_NULL;
  if (p->line_cap < SE_PROTOCOL_MIN_LINE || p->out_cap < SE_PROTOCOL_MIN_OUT) return SE_STATUS_BUFFER;
  se_line_init(&p->rx, p->line, p->line_cap);
  memset(&p->stats, 0, sizeof p->stats);
  return SE_STATUS_OK;
}

static void send(se_protocol_t *p, se_jw_t *w) {
  if (w->overflow) { /* cannot happen with SE_PROTOCOL_MIN_OUT; answer something valid anyway */
    se_jw_init(w, p->out, p->out_cap);
    se_jw_raw(w, "{\"error\":\"response too large\",\"code\":\"internal\"}");
  }
  se_jw_rawn(w, "\n", 1);
  p->write(p->write_ctx, (const uint8_t *)w->buf, w->len);
}

static void begin(se_jw_t *w, const se_request_t *req) {
  se_jw_raw(w, "{");
  if (req && req->id) {
    se_jw_raw(w, "\"id\":");
    se_jw_rawn(w, req->id, req->id_len);
    se_jw_raw(w, ",");
  }
}

static void error_reply(se_protocol_t *p, const se_request_t *req, const char *code, const char *msg) {
  se_jw_t w;
  se_jw_init(&w, p->out, p->out_cap);
  begin(&w, req);
  se_jw_raw(&w, "\"error\":");
  se_jw_string(&w, (const uint8_t *)msg, (int32_t)strlen(msg));
  se_jw_raw(&w, ",\"code\":\"");
  se_jw_raw(&w, code);
  se_jw_raw(&w, "\"}");
  p->stats.protocol_errors++;
  send(p, &w);
}

static void hex2(se_jw_t *w, int32_t b) {
  static const char hex[] = "0123456789abcdef";
  char t[2];
  t[0] = hex[(b >> 4) & 15];
  t[1] = hex[b & 15];
  se_jw_rawn(w, t, 2);
}

/* Classify `text` (total = its full length when it was cut to fit the line buffer). */
const char *se_protocol_check_error(const se_check_result_t *check, char *buf, int32_t cap) {
  const char *code;
  se_jw_t w;
  se_jw_init(&w, buf, cap - 1);
  switch (check->check) {
    case SE_CHECK_TOO_LONG:
      code = "too_long";
      se_jw_raw(&w, "command too long: ");
      se_jw_int(&w, check->length);
      se_jw_raw(&w, " bytes, the limit is ");
      se_jw_int(&w, SE_MAX_TEXT_BYTES);
      break;
    case SE_CHECK_INVALID_UTF8:
      code = "invalid_utf8";
      se_jw_raw(&w, "command is not valid UTF-8 (byte 0x");
      hex2(&w, check->byte);
      se_jw_raw(&w, " at offset ");
      se_jw_int(&w, check->offset);
      se_jw_raw(&w, ")");
      break;
    case SE_CHECK_EMPTY:
      code = "empty";
      se_jw_raw(&w, "empty command");
      break;
    default:
      code = "model";
      se_jw_raw(&w, "inference failed: status ");
      se_jw_int(&w, check->model_rc);
      break;
  }
  buf[w.len] = 0;
  return code;
}

const char *se_protocol_name_error(se_name_result_t result, const char **code) {
  switch (result) {
    case SE_NAME_BAD_KIND:
      *code = "unknown_kind";
      return "unknown kind: use area, floor, name or name:<domain>";
    case SE_NAME_NO_PLACEHOLDERS:
      *code = "names_unsupported";
      return "this model was trained without home names (no placeholder tokens); retrain it with this version "
             "of squeezeedge";
    case SE_NAME_NO_WORDS:
      *code = "bad_name";
      return "name has no words";
    case SE_NAME_UNREADABLE:
      *code = "bad_name";
      return "name is too long or has characters the model cannot read";
    default:
      *code = "internal";
      return "adding the name failed";
  }
}

static void classify_reply(se_protocol_t *p, const se_request_t *req, const uint8_t *text, int32_t len,
                           int32_t total) {
  const se_classifier_t *clf = p->clf;
  const se_meta_t *meta = clf->meta;
  se_tokens_t tok;
  se_answer_t ans;
  se_check_result_t check;
  se_status_t st = SE_STATUS_INPUT;
  se_jw_t w;
  uint32_t t0 = 0, dt = 0;
  int32_t echo = len < SE_MAX_TEXT_BYTES ? len : SE_MAX_TEXT_BYTES;
  memset(&tok, 0, sizeof tok);
  memset(&ans, 0, sizeof ans);
  if (total > SE_MAX_TEXT_BYTES) {
    check.check = SE_CHECK_TOO_LONG;
    check.length = total;
  } else {
    if (p->clock) t0 = p->clock(p->clock_ctx);
    st = se_classify(clf, text, len, &tok, &ans, &check);
    if (p->clock) dt = p->clock(p->clock_ctx) - t0;
  }
  se_jw_init(&w, p->out, p->out_cap);
  begin(&w, req);
  se_jw_raw(&w, "\"text\":");
  se_jw_string(&w, text, echo);
  if (st == SE_STATUS_OK) {
    int32_t k;
    se_jw_raw(&w, ",\"intent\":");
    if (ans.intent == 0) se_jw_raw(&w, "null");
    else {
      const char *name = se_meta_intent(meta, ans.intent);
      se_jw_string(&w, (const uint8_t *)name, (int32_t)strlen(name));
    }
    se_jw_raw(&w, ",\"confidence\":");
    se_jw_q4(&w, ans.conf_q);
    se_jw_raw(&w, ",\"slots\":{");
    for (k = 0; k < ans.n_slots; ++k) {
      const char *name = se_meta_slot(meta, ans.slots[k].slot);
      if (k) se_jw_raw(&w, ",");
      se_jw_string(&w, (const uint8_t *)name, (int32_t)strlen(name));
      se_jw_raw(&w, ":");
      se_jw_string(&w, ans.slots[k].value, ans.slots[k].value_len);
    }
    se_jw_raw(&w, "},\"time_us\":");
    se_jw_int(&w, dt);
    se_jw_raw(&w, "}");
    p->stats.classified++;
    p->stats.infer_us_last = dt;
    p->stats.infer_us_total += dt;
    if (dt > p->stats.infer_us_max) p->stats.infer_us_max = dt;
  } else {
    char msg[SE_PROTOCOL_ERROR_MAX];
    const char *code;
    if (st != SE_STATUS_INPUT) {
      check.check = SE_CHECK_MODEL;
      check.model_rc = (int32_t)st;
    }
    code = se_protocol_check_error(&check, msg, (int32_t)sizeof msg);
    se_jw_raw(&w, ",\"error\":\"");
    se_jw_raw(&w, msg);
    se_jw_raw(&w, "\",\"code\":\"");
    se_jw_raw(&w, code);
    se_jw_raw(&w, "\"}");
    p->stats.errors++;
  }
  send(p, &w);
}

static void info_reply(se_protocol_t *p, const se_request_t *req, const char *cmd) {
  const se_meta_t *meta = p->clf->meta;
  se_jw_t w;
  se_jw_init(&w, p->out, p->out_cap);
  begin(&w, req);
  if (strcmp(cmd, "version") == 0) {
    se_jw_raw(&w, "\"version\":");
    se_jw_string(&w, (const uint8_t *)p->firmware_version, (int32_t)strlen(p->firmware_version));
    se_jw_raw(&w, ",\"protocol\":");
    se_jw_int(&w, SE_PROTOCOL_VERSION);
  } else if (strcmp(cmd, "stats") == 0) {
    const se_stats_t *s = &p->stats;
    se_jw_raw(&w, "\"lines\":"); se_jw_int(&w, s->lines);
    se_jw_raw(&w, ",\"classified\":"); se_jw_int(&w, s->classified);
    se_jw_raw(&w, ",\"errors\":"); se_jw_int(&w, s->errors);
    se_jw_raw(&w, ",\"protocol_errors\":"); se_jw_int(&w, s->protocol_errors);
    se_jw_raw(&w, ",\"overflows\":"); se_jw_int(&w, s->overflows);
    se_jw_raw(&w, ",\"bytes_in\":"); se_jw_int(&w, (int64_t)s->bytes_in);
    se_jw_raw(&w, ",\"time_us_last\":"); se_jw_int(&w, s->infer_us_last);
    se_jw_raw(&w, ",\"time_us_max\":"); se_jw_int(&w, s->infer_us_max);
    se_jw_raw(&w, ",\"time_us_mean\":");
    se_jw_int(&w, s->classified ? (int64_t)(s->infer_us_total / s->classified) : 0);
  } else if (strcmp(cmd, "ping") == 0) {
    se_jw_raw(&w, "\"pong\":true");
  } else { /* info */
    se_jw_raw(&w, "\"device\":");
    se_jw_string(&w, (const uint8_t *)p->device, (int32_t)strlen(p->device));
    se_jw_raw(&w, ",\"version\":");
    se_jw_string(&w, (const uint8_t *)p->firmware_version, (int32_t)strlen(p->firmware_version));
    se_jw_raw(&w, ",\"protocol\":"); se_jw_int(&w, SE_PROTOCOL_VERSION);
    se_jw_raw(&w, ",\"max_line\":"); se_jw_int(&w, p->line_cap);
    se_jw_raw(&w, ",\"max_text\":"); se_jw_int(&w, SE_MAX_TEXT_BYTES);
    se_jw_raw(&w, ",\"vocab_size\":"); se_jw_int(&w, meta->vocab_size);
    se_jw_raw(&w, ",\"max_len\":"); se_jw_int(&w, meta->max_len);
    se_jw_raw(&w, ",\"intents\":"); se_jw_int(&w, meta->n_intents);
    se_jw_raw(&w, ",\"slots\":"); se_jw_int(&w, meta->n_slots);
    se_jw_raw(&w, ",\"oos_threshold\":"); se_jw_q4(&w, meta->oos_threshold);
    se_jw_raw(&w, ",\"oos_threshold_no_names\":"); se_jw_q4(&w, meta->oos_threshold_no_names);
    se_jw_raw(&w, ",\"arena_bytes\":"); se_jw_int(&w, p->arena_bytes);
    se_jw_raw(&w, ",\"names\":"); se_jw_int(&w, p->names ? p->names->n : 0);
  }
  se_jw_raw(&w, "}");
  send(p, &w);
}

static int is_command(const char *cmd) {
  return strcmp(cmd, "info") == 0 || strcmp(cmd, "version") == 0 || strcmp(cmd, "stats") == 0 ||
         strcmp(cmd, "ping") == 0;
}

/* {"names":N,"names_max":M,"name_tokens":T,"name_tokens_max":TM}; names_clear empties the table first. */
static void names_reply(se_protocol_t *p, const se_request_t *req, int clear) {
  const se_names_t *nm = p->names;
  se_jw_t w;
  if (clear && p->names) se_names_clear(p->names);
  se_jw_init(&w, p->out, p->out_cap);
  begin(&w, req);
  se_jw_raw(&w, "\"names\":"); se_jw_int(&w, nm ? nm->n : 0);
  if (!clear) {
    se_jw_raw(&w, ",\"names_max\":"); se_jw_int(&w, nm ? nm->cap : 0);
    se_jw_raw(&w, ",\"name_tokens\":"); se_jw_int(&w, nm ? nm->n_ids : 0);
    se_jw_raw(&w, ",\"name_tokens_max\":"); se_jw_int(&w, nm ? nm->ids_cap : 0);
  }
  se_jw_raw(&w, "}");
  send(p, &w);
}

/* A name already stored under another kind keeps its first kind, as the reference does; the
 * sender is told, since its table and the device's now differ for that name:
 * ,"note":"...","kept_kind":"area". scratch holds the name's tokens after [CLS]. */
static void kind_note(se_jw_t *w, se_protocol_t *p, const se_tokens_t *scratch) {
  char kept[SE_NAMES_KIND_MAX + 1];
  int32_t placeholder = se_names_find(p->names, scratch->ids + 1, scratch->length - 1);
  int32_t n = se_names_kind_of(p->clf->meta, placeholder, kept, (int32_t)sizeof kept);
  if (n < 0) n = 0, kept[0] = 0;
  se_jw_raw(w, ",\"note\":\"already stored under another kind; the first kind stays (send names_clear, then "
               "each name once, to change it)\",\"kept_kind\":");
  se_jw_string(w, (const uint8_t *)kept, n);
}

/* {"cmd":"names_add","kind":K,"text":T} → {"names":N} (a duplicate is not an error: N is unchanged;
 * one of another kind gets a note). */
static void names_add_reply(se_protocol_t *p, const se_request_t *req) {
  const se_classifier_t *clf = p->clf;
  se_tokens_t scratch;
  se_name_result_t result = SE_NAME_ADDED;
  se_status_t st;
  int32_t bad = 0;
  if (!p->names) {
    error_reply(p, req, "names_unsupported", "this firmware has no names table");
    return;
  }
  if (!req->has_kind || !req->has_text) {
    error_reply(p, req, "bad_request",
                "names_add needs \"kind\" (area, floor, name or name:<domain>) and \"text\" (the name)");
    return;
  }
  if (req->kind_len > SE_JSON_MAX_KIND) {
    error_reply(p, req, "unknown_kind", "unknown kind: use area, floor, name or name:<domain>");
    return;
  }
  if (!se_utf8_valid(req->text, req->text_len, &bad)) {
    error_reply(p, req, "bad_name", "name is not valid UTF-8");
    return;
  }
  scratch = se_classifier_scratch_tokens(clf);
  st = se_names_add(p->names, clf->meta, (const uint8_t *)req->kind, req->kind_len, req->text, req->text_len,
                    &scratch, &result);
  if (st == SE_STATUS_OK) {
    se_jw_t w;
    se_jw_init(&w, p->out, p->out_cap);
    begin(&w, req);
    se_jw_raw(&w, "\"names\":");
    se_jw_int(&w, p->names->n);
    if (result == SE_NAME_OTHER_KIND) kind_note(&w, p, &scratch);
    se_jw_raw(&w, "}");
    send(p, &w);
    return;
  }
  if (st == SE_STATUS_INPUT && result == SE_NAME_FULL) {
    char msg[120];
    se_jw_t m;
    se_jw_init(&m, msg, (int32_t)sizeof msg - 1);
    se_jw_raw(&m, "the names table is full (");
    se_jw_int(&m, p->names->cap);
    se_jw_raw(&m, " names, ");
    se_jw_int(&m, p->names->ids_cap);
    se_jw_raw(&m, " tokens): send names_clear first, then fewer or shorter names");
    msg[m.len] = 0;
    error_reply(p, req, "names_full", msg);
  } else {
    const char *code;
    const char *msg = se_protocol_name_error(st == SE_STATUS_INPUT ? result : SE_NAME_ADDED, &code);
    error_reply(p, req, code, msg);
  }
}

/* Commands answered from a plain "/cmd" line as well as from {"cmd": ...}. */
static int names_command(se_protocol_t *p, const se_request_t *req, const char *cmd) {
  if (strcmp(cmd, "names") == 0) names_reply(p, req, 0);
  else if (strcmp(cmd, "names_clear") == 0) names_reply(p, req, 1);
  else return 0;
  return 1;
}

/* A refused JSON line is still answered with its id when the id can be read, so that a client
 * waiting for that id hears of the error at once instead of timing out. */
static const se_request_t *id_of_refused(const uint8_t *line, int32_t len, se_request_t *req) {
  memset(req, 0, sizeof *req);
  return se_json_find_id(line, len, &req->id, &req->id_len) ? req : NULL;
}

void se_protocol_handle_line(se_protocol_t *p, const uint8_t *line, int32_t len, int32_t total, int overflow) {
  p->stats.lines++;
  if (len > 0 && line[0] == '{') {
    se_request_t req;
    const char *why = "bad JSON";
    if (overflow) {
      p->stats.overflows++;
      error_reply(p, id_of_refused(line, len, &req), "line_too_long",
                  "request line longer than the device's line buffer (max_line in info)");
      return;
    }
    if (se_json_parse_request(line, len, p->text_buf, p->line_cap, &req, &why) != SE_STATUS_OK) {
      error_reply(p, id_of_refused(line, len, &req), "bad_json", why);
      return;
    }
    if (req.has_cmd) {
      if (strcmp(req.cmd, "names_add") == 0) {
        names_add_reply(p, &req);
        return;
      }
      if (names_command(p, &req, req.cmd)) return;
      if (!is_command(req.cmd)) {
        error_reply(p, &req, "unknown_command",
                    "unknown command; use info, version, stats, ping, names, names_add or names_clear");
        return;
      }
      info_reply(p, &req, req.cmd);
      return;
    }
    if (!req.has_text) {
      error_reply(p, &req, "bad_request", "a request needs \"text\" or \"cmd\"");
      return;
    }
    classify_reply(p, &req, req.text, req.text_len, req.text_len);
    return;
  }
  if (len > 1 && line[0] == '/' && !overflow) {
    char cmd[16];
    if (len - 1 < (int32_t)sizeof cmd) {
      memcpy(cmd, line + 1, (size_t)(len - 1));
      cmd[len - 1] = 0;
      if (strlen(cmd) == (size_t)(len - 1) && names_command(p, NULL, cmd)) return;
      if (strlen(cmd) == (size_t)(len - 1) && is_command(cmd)) {
        info_reply(p, NULL, cmd);
        return;
      }
    }
  }
  if (overflow) p->stats.overflows++;
  classify_reply(p, NULL, line, len, total);
}

void se_line_init(se_line_t *l, uint8_t *buf, int32_t cap) {
  l->buf = buf;
  l->cap = cap;
  se_line_reset(l);
}

void se_line_reset(se_line_t *l) {
  l->len = 0;
  l->total = 0;
  l->last_byte = 0;
  l->overflow = 0;
}

static void end_line(se_protocol_t *p, se_line_t *l) {
  int32_t len = l->len, total = l->total;
  if (total > 0 && l->last_byte == '\r') { /* one CR before the newline is not part of the line */
    total--;
    if (!l->overflow) len--;
  }
  if (l->overflow && len > total) len = total;
  se_protocol_handle_line(p, l->buf, len, total, l->overflow);
  se_line_reset(l);
}

int32_t se_protocol_feed_line(se_protocol_t *p, se_line_t *l, const uint8_t *data, int32_t n) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    uint8_t b = data[i];
    p->stats.bytes_in++;
    if (b == '\n') {
      end_line(p, l);
      return i + 1;
    }
    if (l->len < l->cap) l->buf[l->len++] = b;
    else l->overflow = 1;
    if (l->total < INT32_MAX) l->total++;
    l->last_byte = b;
  }
  return n;
}

void se_protocol_flush_line(se_protocol_t *p, se_line_t *l) {
  if (l->total > 0) end_line(p, l);
}

void se_protocol_feed(se_protocol_t *p, const uint8_t *data, int32_t n) {
  int32_t used = 0;
  while (used < n) used += se_protocol_feed_line(p, &p->rx, data + used, n - used);
}

void se_protocol_flush(se_protocol_t *p) { se_protocol_flush_line(p, &p->rx); }

void se_protocol_reset_line(se_protocol_t *p) { se_line_reset(&p->rx); }
