/* SqueezeEdge firmware core: the line protocol (firmware/PROTOCOL.md) over any byte stream.
 * Feed received bytes with se_protocol_feed; every complete line produces exactly one JSON
 * response line through the write callback. Any byte sequence is safe: overlong lines are
 * discarded up to the next newline and answered with an error. No allocation. */
#ifndef SE_PROTOCOL_H
#define SE_PROTOCOL_H

#include <stdint.h>
#include "se_classify.h"
#include "se_names.h"
#include "se_status.h"

#define SE_PROTOCOL_VERSION 1

typedef void (*se_write_fn)(void *ctx, const uint8_t *data, int32_t len);
typedef uint32_t (*se_clock_fn)(void *ctx); /* a free-running microsecond counter */

typedef struct {
  uint32_t lines, classified, errors, overflows, protocol_errors;
  uint32_t infer_us_last, infer_us_max;
  uint64_t infer_us_total;
  uint64_t bytes_in;
} se_stats_t;

/* One byte stream's partial line. A device has one (se_protocol_t.rx); a port serving several
 * streams at once (the host emulator's TCP clients) keeps one per stream, each over its own
 * buffer, so that bytes of different clients never mix in a line. */
typedef struct {
  uint8_t *buf;                 /* capacity cap (the maximum line length) */
  int32_t cap;
  int32_t len;
  int32_t total;                /* bytes of the current line, counted beyond cap too */
  uint8_t last_byte;
  int overflow;
} se_line_t;

typedef struct {
  /* configuration (set before se_protocol_init) */
  const se_classifier_t *clf;
  se_names_t *names;            /* the home's names (names_add fills it; clf->names reads it); may be NULL */
  se_write_fn write;
  void *write_ctx;
  se_clock_fn clock;            /* may be NULL: time_us is then 0 */
  void *clock_ctx;
  const char *device;           /* e.g. "host-emulator" */
  const char *firmware_version; /* e.g. "0.1.0" */
  int32_t arena_bytes;          /* reported by "info" */
  uint8_t *line;                /* line buffer; capacity line_cap (the maximum line length) */
  int32_t line_cap;
  uint8_t *text_buf;            /* unescaped JSON text; capacity line_cap */
  char *out;                    /* response buffer */
  int32_t out_cap;
  /* state */
  se_line_t rx;                 /* the partial line of se_protocol_feed's stream, over line[] */
  se_stats_t stats;
} se_protocol_t;

/* Minimum sizes the caller should provide. */
#define SE_PROTOCOL_MIN_LINE (SE_MAX_TEXT_BYTES + 2)
#define SE_PROTOCOL_MIN_OUT 4096

se_status_t se_protocol_init(se_protocol_t *p);
/* Feed received bytes; responses are written synchronously. */
void se_protocol_feed(se_protocol_t *p, const uint8_t *data, int32_t n);
/* End of stream: a pending unterminated line is handled as if a newline followed it. */
void se_protocol_flush(se_protocol_t *p);
/* The peer went away: drop a pending partial line without answering it. */
void se_protocol_reset_line(se_protocol_t *p);
/* Several streams: l (se_line_init over a buffer of p->line_cap bytes or fewer) holds one
 * stream's partial line. se_protocol_feed_line takes bytes up to and including the first newline
 * (answering that line) and returns how many it took, so a caller can stop between answers (to
 * send them before it reads on); se_protocol_flush_line ends a pending line at end of stream;
 * se_line_reset drops it (the peer went away). Answers go to p->write with p->write_ctx: set it
 * to the stream's before feeding. */
void se_line_init(se_line_t *l, uint8_t *buf, int32_t cap);
void se_line_reset(se_line_t *l);
int32_t se_protocol_feed_line(se_protocol_t *p, se_line_t *l, const uint8_t *data, int32_t n);
void se_protocol_flush_line(se_protocol_t *p, se_line_t *l);
/* Handle one complete line (no newline). `overflow_total` > 0 means the line was longer than
 * the buffer and only its first line_cap bytes are in line[]. */
void se_protocol_handle_line(se_protocol_t *p, const uint8_t *line, int32_t len, int32_t total, int overflow);

/* The protocol's error texts, for other front ends (the MicroPython module) to say the same:
 * se_protocol_check_error writes the classify contract's message for `check` (SE_CHECK_MODEL:
 * check->model_rc) NUL-terminated into buf (SE_PROTOCOL_ERROR_MAX bytes suffice) and returns its
 * code ("too_long", "invalid_utf8", "empty", "model"); se_protocol_name_error gives the message
 * and code of a refused name (every result but SE_NAME_FULL, whose text names the table's size). */
#define SE_PROTOCOL_ERROR_MAX 96
const char *se_protocol_check_error(const se_check_result_t *check, char *buf, int32_t cap);
const char *se_protocol_name_error(se_name_result_t result, const char **code);

#endif /* SE_PROTOCOL_H */
