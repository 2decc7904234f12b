/* SqueezeEdge ESP32 app: the classifier and the protocol behind one mutex (see engine.h). */
#include "engine.h"

#include <string.h>

#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "model.h"
#include "model_meta.h"

#if SE_MODEL_MAX_LEN != SE_META_MAX_LEN || SE_MODEL_N_TAGS != SE_META_N_TAGS || SE_MODEL_N_INTENTS != SE_META_N_INTENTS
#error "model.h and model_meta.h describe different models: make both from the same model file"
#endif
#if SE_LINE_MAX < SE_PROTOCOL_MIN_LINE || SE_OUT_MAX < SE_PROTOCOL_MIN_OUT
#error "SE_LINE_MAX / SE_OUT_MAX are below the protocol's minimum"
#endif

/* Static, so the RAM is counted at link time and no task stack has to hold it. The model's
 * weights and tables are `static const` in model.c / model_meta.c: ESP-IDF places .rodata in
 * flash (read through the cache), so they cost no RAM. */
static uint8_t arena[SE_MODEL_ARENA_BYTES + 1];
static int32_t tok_ids[SE_META_MAX_LEN], tok_starts[SE_META_MAX_LEN], tok_ends[SE_META_MAX_LEN];
static int8_t intent_logits[SE_META_N_INTENTS];
static int8_t slot_logits[SE_META_MAX_LEN * SE_META_N_TAGS];
static uint8_t phrase_buf[SE_CLASSIFY_PHRASE_BYTES(SE_META_MAX_LEN)];
static se_slot_value_t slot_values[SE_META_N_SLOTS + 1];
static uint8_t line_buf[SE_LINE_MAX];
static uint8_t text_buf[SE_LINE_MAX];
static char out_buf[SE_OUT_MAX];

static se_classifier_t clf;
static se_protocol_t proto;
static SemaphoreHandle_t lock;

/* The answer of one MQTT message, collected so that its newline can be dropped. */
typedef struct {
  char buf[SE_OUT_MAX];
  int32_t len;
} collect_t;
static collect_t collected;

static uint32_t clock_us(void *ctx) {
  (void)ctx;
  return (uint32_t)esp_timer_get_time(); /* µs since boot; the protocol takes differences */
}

static void collect(void *ctx, const uint8_t *data, int32_t len) {
  collect_t *c = (collect_t *)ctx;
  if (c->len + len > (int32_t)sizeof c->buf) len = (int32_t)sizeof c->buf - c->len;
  memcpy(c->buf + c->len, data, (size_t)len);
  c->len += len;
}

static void drop_write(void *ctx, const uint8_t *data, int32_t len) {
  (void)ctx; (void)data; (void)len;
}

esp_err_t engine_init(const char *device) {
  lock = xSemaphoreCreateMutex();
  if (lock == NULL) return ESP_ERR_NO_MEM;
  clf.meta = &se_model_meta;
  clf.run = se_model_run;
  clf.n_tags = SE_MODEL_N_TAGS;
  clf.arena = arena;
  clf.ids = tok_ids;
  clf.starts = tok_starts;
  clf.ends = tok_ends;
  clf.intent_logits = intent_logits;
  clf.slot_logits = slot_logits;
  clf.phrase_buf = phrase_buf;
  clf.phrase_cap = (int32_t)sizeof phrase_buf;
  clf.slot_values = slot_values;
  clf.slot_values_cap = SE_META_N_SLOTS + 1;
  proto.clf = &clf;
  proto.write = drop_write; /* replaced by each caller under the lock */
  proto.write_ctx = NULL;
  proto.clock = clock_us;
  proto.device = device;
  proto.firmware_version = SE_FIRMWARE_VERSION;
  proto.arena_bytes = SE_MODEL_ARENA_BYTES;
  proto.line = line_buf;
  proto.line_cap = SE_LINE_MAX;
  proto.text_buf = text_buf;
  proto.out = out_buf;
  proto.out_cap = SE_OUT_MAX;
  return se_protocol_init(&proto) == SE_STATUS_OK ? ESP_OK : ESP_FAIL;
}

void engine_feed(const uint8_t *data, int32_t n, se_write_fn write, void *ctx) {
  xSemaphoreTake(lock, portMAX_DELAY);
  proto.write = write;
  proto.write_ctx = ctx;
  se_protocol_feed(&proto, data, n);
  xSemaphoreGive(lock);
}

/* As firmware/ports/host/mqtt.c on_message: the payload counts as received bytes, one trailing
 * "\n" or "\r\n" is dropped, a payload longer than the line buffer is answered as an overlong
 * line (the core knows its true length). */
void engine_handle_message(const uint8_t *kept, int32_t kept_len, int32_t total, const uint8_t tail[2],
                           se_write_fn write, void *ctx) {
  int32_t len = total;
  xSemaphoreTake(lock, portMAX_DELAY);
  proto.stats.bytes_in += (uint64_t)(total > 0 ? total : 0);
  if (len > 0 && tail[1] == '\n') {
    --len;
    if (len > 0 && tail[0] == '\r') --len;
  } else if (len > 0 && tail[1] == '\r') {
    --len;
  }
  collected.len = 0;
  proto.write = collect;
  proto.write_ctx = &collected;
  if (kept_len > proto.line_cap) kept_len = proto.line_cap;
  if (len > kept_len) se_protocol_handle_line(&proto, kept, kept_len, len, 1);
  else se_protocol_handle_line(&proto, kept, len, len, 0);
  if (collected.len > 0 && collected.buf[collected.len - 1] == '\n') --collected.len;
  if (collected.len > 0) write(ctx, (const uint8_t *)collected.buf, collected.len);
  xSemaphoreGive(lock);
}
