/* SqueezeEdge firmware core: a tiny JSON writer (string escaping that round-trips through any
 * JSON parser) and a minimal parser for one flat request object. No allocation. */
#ifndef SE_JSON_H
#define SE_JSON_H

#include <stdint.h>
#include "se_status.h"

/* Writer over a caller-owned buffer; `overflow` is set (and output stops) when it is full. */
typedef struct {
  char *buf;
  int32_t cap;
  int32_t len;
  int overflow;
} se_jw_t;

void se_jw_init(se_jw_t *w, char *buf, int32_t cap);
void se_jw_raw(se_jw_t *w, const char *s);                 /* NUL-terminated, copied as is */
void se_jw_rawn(se_jw_t *w, const char *s, int32_t n);
/* A quoted JSON string of the bytes s[0..n): valid UTF-8 is kept, each ill-formed subpart
 * becomes \ufffd (as Python's errors="replace"), '"' '\\' and control bytes are escaped. */
void se_jw_string(se_jw_t *w, const uint8_t *s, int32_t n);
void se_jw_int(se_jw_t *w, int64_t v);
/* A fixed-point number q / 10000 printed with four decimals ("0.9731", "1.0000"). */
void se_jw_q4(se_jw_t *w, int32_t q);

/* Longest "kind" kept (a longer one is reported by its length only: no kind is that long). */
#define SE_JSON_MAX_KIND 40

/* A parsed request: {"id": <scalar>, "text": "...", "cmd": "...", "kind": "..."}; other keys
 * are ignored. */
typedef struct {
  const char *id;      /* raw JSON token of "id" (valid JSON), or NULL */
  int32_t id_len;
  uint8_t *text;       /* unescaped "text" bytes (caller buffer), valid when has_text */
  int32_t text_len;
  int has_text;
  char cmd[16];        /* "cmd" value (NUL-terminated), valid when has_cmd; "" when too long to be a command */
  int has_cmd;
  char kind[SE_JSON_MAX_KIND + 1]; /* "kind" value, NUL-terminated when kind_len <= SE_JSON_MAX_KIND */
  int32_t kind_len;    /* its length in bytes (may exceed SE_JSON_MAX_KIND: then kind is "") */
  int has_kind;
} se_request_t;

#define SE_JSON_MAX_ID 64

/* Parse line[0..n) as one JSON object. text_buf (capacity >= n) receives the unescaped text.
 * Returns SE_STATUS_OK or SE_STATUS_PARSE; *why gets a short static reason on failure. */
se_status_t se_json_parse_request(const uint8_t *line, int32_t n, uint8_t *text_buf, int32_t text_cap,
                                  se_request_t *req, const char **why);

/* The request's id when se_json_parse_request refused the line (a nested value, a bad string
 * after the id) or the line was cut to the buffer: the value of the top-level key "id", if it is
 * a whole scalar (followed by ',' or '}') that the parser would accept as an id. Returns 1 and
 * points *id into line when there is one; 0 otherwise (the answer then has no id). */
int se_json_find_id(const uint8_t *line, int32_t n, const char **id, int32_t *id_len);

#endif /* SE_JSON_H */
