/* SqueezeEdge firmware core: tiny JSON writer and request parser (see se_json.h). */
#include "se_json.h"

#include <string.h>

#include "se_utf8.h"

void se_jw_init(se_jw_t *w, char *buf, int32_t cap) {
  w->buf = buf;
  w->cap = cap;
  w->len = 0;
  w->overflow = 0;
}

void se_jw_rawn(se_jw_t *w, const char *s, int32_t n) {
  if (w->overflow) return;
  if (n > w->cap - w->len) {
    w->overflow = 1;
    return;
  }
  memcpy(w->buf + w->len, s, (size_t)n);
  w->len += n;
}

void se_jw_raw(se_jw_t *w, const char *s) { se_jw_rawn(w, s, (int32_t)strlen(s)); }

void se_jw_string(se_jw_t *w, const uint8_t *s, int32_t n) {
  static const char hex[] = "0123456789abcdef";
  int32_t i = 0, used;
  se_jw_rawn(w, "\"", 1);
  while (i < n && !w->overflow) {
    uint8_t b = s[i];
    if (b < 0x80) {
      char esc[6];
      if (b == '"') se_jw_rawn(w, "\\\"", 2);
      else if (b == '\\') se_jw_rawn(w, "\\\\", 2);
      else if (b == '\n') se_jw_rawn(w, "\\n", 2);
      else if (b == '\r') se_jw_rawn(w, "\\r", 2);
      else if (b == '\t') se_jw_rawn(w, "\\t", 2);
      else if (b < 0x20 || b == 0x7F) {
        esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
        esc[4] = hex[b >> 4]; esc[5] = hex[b & 15];
        se_jw_rawn(w, esc, 6);
      } else {
        se_jw_rawn(w, (const char *)&s[i], 1);
      }
      i += 1;
      continue;
    }
    {
      int32_t cp = se_utf8_next(s + i, n - i, &used);
      if (cp < 0) se_jw_rawn(w, "\\ufffd", 6);
      else if (cp == 0x2028) se_jw_rawn(w, "\\u2028", 6); /* line separators: escaped, so that */
      else if (cp == 0x2029) se_jw_rawn(w, "\\u2029", 6); /* no reader splits a response line */
      else se_jw_rawn(w, (const char *)(s + i), used);
    }
    i += used;
  }
  se_jw_rawn(w, "\"", 1);
}

void se_jw_int(se_jw_t *w, int64_t v) {
  char tmp[24];
  int n = 0;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do { tmp[sizeof tmp - 1 - n++] = (char)('0' + (int)(u % 10u)); u /= 10u; } while (u);
  if (v < 0) tmp[sizeof tmp - 1 - n++] = '-';
  se_jw_rawn(w, tmp + sizeof tmp - n, n);
}

void se_jw_q4(se_jw_t *w, int32_t q) {
  char tmp[6];
  if (q < 0) { se_jw_raw(w, "-"); q = -q; }
  se_jw_int(w, q / 10000);
  q %= 10000;
  tmp[0] = '.';
  tmp[1] = (char)('0' + q / 1000);
  tmp[2] = (char)('0' + q / 100 % 10);
  tmp[3] = (char)('0' + q / 10 % 10);
  tmp[4] = (char)('0' + q % 10);
  se_jw_rawn(w, tmp, 5);
}

/* ---- parser ---- */

typedef struct {
  const uint8_t *s;
  int32_t n;
  int32_t i;
} cursor_t;

static void skip_ws(cursor_t *c) {
  while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\r' || c->s[c->i] == '\n'))
    c->i++;
}

static int hexval(uint8_t b) {
  if (b >= '0' && b <= '9') return b - '0';
  if (b >= 'a' && b <= 'f') return b - 'a' + 10;
  if (b >= 'A' && b <= 'F') return b - 'A' + 10;
  return -1;
}

static int32_t read_hex4(cursor_t *c) {
  int32_t v = 0, k;
  if (c->n - c->i < 4) return -1;
  for (k = 0; k < 4; ++k) {
    int h = hexval(c->s[c->i + k]);
    if (h < 0) return -1;
    v = (v << 4) | h;
  }
  c->i += 4;
  return v;
}

static int32_t put_utf8(uint8_t *out, int32_t cp) {
  if (cp < 0x80) { out[0] = (uint8_t)cp; return 1; }
  if (cp < 0x800) { out[0] = (uint8_t)(0xC0 | (cp >> 6)); out[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    out[0] = (uint8_t)(0xE0 | (cp >> 12)); out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (uint8_t)(0xF0 | (cp >> 18)); out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (uint8_t)(0x80 | (cp & 0x3F));
  return 4;
}

/* Parse a string at c->i (on '"'). out may be NULL (validate only). Raw bytes are copied as
 * they are (UTF-8 is checked by the caller where it matters). */
static int parse_string(cursor_t *c, uint8_t *out, int32_t cap, int32_t *out_len, const char **why) {
  int32_t len = 0;
  c->i++; /* opening quote */
  for (;;) {
    uint8_t b;
    if (c->i >= c->n) { *why = "unterminated string"; return 0; }
    b = c->s[c->i++];
    if (b == '"') break;
    if (b < 0x20) { *why = "control byte in string"; return 0; }
    if (b == '\\') {
      uint8_t e;
      int32_t cp;
      uint8_t tmp[4];
      int32_t k, m;
      if (c->i >= c->n) { *why = "unterminated string"; return 0; }
      e = c->s[c->i++];
      switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = 8; break;
        case 'f': cp = 12; break;
        case 'n': cp = 10; break;
        case 'r': cp = 13; break;
        case 't': cp = 9; break;
        case 'u':
          cp = read_hex4(c);
          if (cp < 0) { *why = "bad \\u escape"; return 0; }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            int32_t lo;
            if (c->n - c->i < 6 || c->s[c->i] != '\\' || c->s[c->i + 1] != 'u') { *why = "lone surrogate"; return 0; }
            c->i += 2;
            lo = read_hex4(c);
            if (lo < 0xDC00 || lo > 0xDFFF) { *why = "lone surrogate"; return 0; }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            *why = "lone surrogate";
            return 0;
          }
          break;
        default: *why = "bad escape"; return 0;
      }
      m = put_utf8(tmp, cp);
      for (k = 0; k < m; ++k) {
        if (out) {
          if (len >= cap) { *why = "string too long"; return 0; }
          out[len] = tmp[k];
        }
        len++;
      }
      continue;
    }
    if (out) {
      if (len >= cap) { *why = "string too long"; return 0; }
      out[len] = b;
    }
    len++;
  }
  if (out_len) *out_len = len;
  return 1;
}

static int parse_number(cursor_t *c) {
  int32_t start = c->i, digits = 0;
  if (c->i < c->n && c->s[c->i] == '-') c->i++;
  if (c->i < c->n && c->s[c->i] == '0') { c->i++; digits = 1; }
  else while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') { c->i++; digits++; }
  if (!digits) return 0;
  if (c->i < c->n && c->s[c->i] == '.') {
    int32_t f = 0;
    c->i++;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') { c->i++; f++; }
    if (!f) return 0;
  }
  if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
    int32_t e = 0;
    c->i++;
    if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-')) c->i++;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') { c->i++; e++; }
    if (!e) return 0;
  }
  return c->i > start;
}

static int match_word(cursor_t *c, const char *w) {
  int32_t k = (int32_t)strlen(w);
  if (c->n - c->i < k || memcmp(c->s + c->i, w, (size_t)k) != 0) return 0;
  c->i += k;
  return 1;
}

/* A scalar value (string, number, true, false, null); nested values are refused. */
static int parse_scalar(cursor_t *c, const char **why) {
  uint8_t b;
  if (c->i >= c->n) { *why = "missing value"; return 0; }
  b = c->s[c->i];
  if (b == '"') return parse_string(c, NULL, 0, NULL, why);
  if (b == '-' || (b >= '0' && b <= '9')) {
    if (!parse_number(c)) { *why = "bad number"; return 0; }
    return 1;
  }
  if (match_word(c, "true") || match_word(c, "false") || match_word(c, "null")) return 1;
  *why = (b == '{' || b == '[') ? "nested values are not supported" : "bad value";
  return 0;
}

/* An id is echoed as written, so it must be short and valid UTF-8 (the answer stays JSON). */
static int id_acceptable(const uint8_t *raw, int32_t len, const char **why) {
  int32_t bad;
  if (len > SE_JSON_MAX_ID) { *why = "id too long"; return 0; }
  if (!se_utf8_valid(raw, len, &bad)) { *why = "id is not valid UTF-8"; return 0; }
  return 1;
}

se_status_t se_json_parse_request(const uint8_t *line, int32_t n, uint8_t *text_buf, int32_t text_cap,
                                  se_request_t *req, const char **why) {
  cursor_t c;
  const char *dummy;
  if (!why) why = &dummy;
  *why = "bad JSON";
  if (!line || !req) return SE_STATUS_NULL;
  memset(req, 0, sizeof *req);
  c.s = line; c.n = n; c.i = 0;
  skip_ws(&c);
  if (c.i >= c.n || c.s[c.i] != '{') { *why = "expected an object"; return SE_STATUS_PARSE; }
  c.i++;
  skip_ws(&c);
  if (c.i < c.n && c.s[c.i] == '}') {
    c.i++;
  } else {
    for (;;) {
      int32_t key_start, key_len, vstart;
      uint8_t key[8];
      skip_ws(&c);
      if (c.i >= c.n || c.s[c.i] != '"') { *why = "expected a key"; return SE_STATUS_PARSE; }
      key_start = c.i + 1;
      if (!parse_string(&c, NULL, 0, &key_len, why)) return SE_STATUS_PARSE;
      /* keys we know have no escapes: compare the raw bytes */
      key_len = c.i - 1 - key_start;
      memset(key, 0, sizeof key);
      if (key_len > 0 && key_len < (int32_t)sizeof key) memcpy(key, c.s + key_start, (size_t)key_len);
      skip_ws(&c);
      if (c.i >= c.n || c.s[c.i] != ':') { *why = "expected ':'"; return SE_STATUS_PARSE; }
      c.i++;
      skip_ws(&c);
      vstart = c.i;
      if (strcmp((const char *)key, "text") == 0 && c.i < c.n && c.s[c.i] == '"') {
        if (!parse_string(&c, text_buf, text_cap, &req->text_len, why)) return SE_STATUS_PARSE;
        req->text = text_buf;
        req->has_text = 1;
      } else if (strcmp((const char *)key, "cmd") == 0 && c.i < c.n && c.s[c.i] == '"') {
        /* measure first: a command too long to be one we know is "unknown_command" (answered with
         * the request's id), not a JSON error */
        int32_t at = c.i, clen = 0;
        if (!parse_string(&c, NULL, 0, &clen, why)) return SE_STATUS_PARSE;
        req->cmd[0] = 0;
        if (clen < (int32_t)sizeof req->cmd) {
          c.i = at;
          if (!parse_string(&c, (uint8_t *)req->cmd, (int32_t)sizeof req->cmd - 1, &clen, why)) return SE_STATUS_PARSE;
          req->cmd[clen] = 0;
          if (strlen(req->cmd) != (size_t)clen) req->cmd[0] = 0; /* "\u0000" inside: no command has one */
        }
        req->has_cmd = 1;
      } else if (strcmp((const char *)key, "kind") == 0 && c.i < c.n && c.s[c.i] == '"') {
        /* measure first: an overlong kind is the caller's "unknown kind", not a JSON error */
        int32_t at = c.i, klen = 0;
        if (!parse_string(&c, NULL, 0, &klen, why)) return SE_STATUS_PARSE;
        req->kind_len = klen;
        req->has_kind = 1;
        req->kind[0] = 0;
        if (klen <= SE_JSON_MAX_KIND) {
          c.i = at;
          if (!parse_string(&c, (uint8_t *)req->kind, SE_JSON_MAX_KIND, &klen, why)) return SE_STATUS_PARSE;
          req->kind[klen] = 0;
        }
      } else {
        if (!parse_scalar(&c, why)) return SE_STATUS_PARSE;
        if (strcmp((const char *)key, "id") == 0) {
          if (!id_acceptable(c.s + vstart, c.i - vstart, why)) return SE_STATUS_PARSE;
          req->id = (const char *)(c.s + vstart);
          req->id_len = c.i - vstart;
        } else if (strcmp((const char *)key, "text") == 0 || strcmp((const char *)key, "cmd") == 0 ||
                   strcmp((const char *)key, "kind") == 0) {
          *why = "text, cmd and kind must be strings";
          return SE_STATUS_PARSE;
        }
      }
      skip_ws(&c);
      if (c.i < c.n && c.s[c.i] == ',') { c.i++; continue; }
      if (c.i < c.n && c.s[c.i] == '}') { c.i++; break; }
      *why = "expected ',' or '}'";
      return SE_STATUS_PARSE;
    }
  }
  skip_ws(&c);
  if (c.i != c.n) { *why = "trailing bytes after the object"; return SE_STATUS_PARSE; }
  return SE_STATUS_OK;
}

/* Walks the bytes as JSON tokens without judging the structure: strings are skipped whole (so a
 * brace or "id" inside one is not taken for structure), brackets only move the depth. A key is a
 * string at depth 1 followed by ':'. The last acceptable id wins, as in se_json_parse_request. */
int se_json_find_id(const uint8_t *line, int32_t n, const char **id, int32_t *id_len) {
  cursor_t c;
  const char *why;
  int32_t depth = 0;
  int found = 0;
  if (!line || n <= 0 || !id || !id_len) return 0;
  c.s = line; c.n = n; c.i = 0;
  skip_ws(&c);
  if (c.i >= c.n || c.s[c.i] != '{') return 0;
  while (c.i < c.n) {
    uint8_t b = c.s[c.i];
    if (b == '"') {
      int32_t start = c.i;
      cursor_t v;
      /* past a string that does not end, nothing can be told apart from string contents */
      if (!parse_string(&c, NULL, 0, NULL, &why)) break;
      if (depth != 1 || c.i - start != 4 || memcmp(c.s + start, "\"id\"", 4) != 0) continue;
      v = c;
      skip_ws(&v);
      if (v.i >= v.n || v.s[v.i] != ':') continue; /* "id" as a value, not a key */
      v.i++;
      skip_ws(&v);
      {
        int32_t vstart = v.i, vend;
        if (!parse_scalar(&v, &why)) continue;
        vend = v.i;
        skip_ws(&v);
        /* a value the line's end may have cut ("12" of "123") is not an id */
        if (v.i >= v.n || (v.s[v.i] != ',' && v.s[v.i] != '}')) continue;
        if (!id_acceptable(v.s + vstart, vend - vstart, &why)) continue;
        *id = (const char *)(v.s + vstart);
        *id_len = vend - vstart;
        found = 1;
      }
      continue;
    }
    if (b == '{' || b == '[') depth++;
    else if (b == '}' || b == ']') depth--;
    c.i++;
  }
  return found;
}
