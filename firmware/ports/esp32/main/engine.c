/* SqueezeEdge ESP32 app: the classifier and the protocol behind one mutex (see engine.h). */
#include "engine.h"

#include <string.h>

#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "se_device.h" /* after engine.h: it takes SE_LINE_MAX / SE_OUT_MAX from there */

/* Static, so the RAM is counted at link time and no task stack has to hold it. The model's
 * weights and tables are `static const` in model.c / model_meta.c: ESP-IDF places .rodata in
 * flash (read through the cache), so they cost no RAM. */
static se_device_t dev;
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
  /* the write target is replaced by each caller under the lock */
  return se_device_init(&dev, device, SE_FIRMWARE_VERSION, drop_write, NULL, clock_us) == SE_STATUS_OK ? ESP_OK : ESP_FAIL;
}

void engine_feed(const uint8_t *data, int32_t n, se_write_fn write, void *ctx) {
  xSemaphoreTake(lock, portMAX_DELAY);
  dev.proto.write = write;
  dev.proto.write_ctx = ctx;
  se_protocol_feed(&dev.proto, data, n);
  xSemaphoreGive(lock);
}

/* As firmware/ports/host/mqtt.c on_message: the payload counts as received bytes, one trailing
 * "\n" or "\r\n" is dropped, a payload longer than the line buffer is answered as an overlong
 * line (the core knows its true length). */
void engine_handle_message(const uint8_t *kept, int32_t kept_len, int32_t total, const uint8_t tail[2],
                           se_write_fn write, void *ctx) {
  int32_t len = total;
  xSemaphoreTake(lock, portMAX_DELAY);
  dev.proto.stats.bytes_in += (uint64_t)(total > 0 ? total : 0);
  if (len > 0 && tail[1] == '\n') {
    --len;
    if (len > 0 && tail[0] == '\r') --len;
  } else if (len > 0 && tail[1] == '\r') {
    --len;
  }
  collected.len = 0;
  dev.proto.write = collect;
  dev.proto.write_ctx = &collected;
  if (kept_len > dev.proto.line_cap) kept_len = dev.proto.line_cap;
  if (len > kept_len) se_protocol_handle_line(&dev.proto, kept, kept_len, len, 1);
  else se_protocol_handle_line(&dev.proto, kept, len, len, 0);
  if (collected.len > 0 && collected.buf[collected.len - 1] == '\n') --collected.len;
  if (collected.len > 0) write(ctx, (const uint8_t *)collected.buf, collected.len);
  xSemaphoreGive(lock);
}
