/* SqueezeEdge ESP32 app: the one classifier and protocol state, shared by UART0 and MQTT.
 * Everything the protocol does (framing, requests, classification, answers, stats) is
 * firmware/core; this module owns its static buffers and the mutex that serialises the two
 * transports, because both use the same classifier buffers and the same se_protocol_t. */
#ifndef SE_ESP32_ENGINE_H
#define SE_ESP32_ENGINE_H

#include <stdint.h>

#include "esp_err.h"
#include "se_protocol.h"

/* Longest request line kept (PROTOCOL.md max_line; >= SE_PROTOCOL_MIN_LINE): as the STM32 port. */
#define SE_LINE_MAX 1024
/* Response buffer: SE_PROTOCOL_MIN_OUT, enough for any answer of a 512-byte command. */
#define SE_OUT_MAX 4096
#define SE_FIRMWARE_VERSION "0.1.0"

/* Set up the classifier, the protocol and the mutex. `device` is what "info" reports. */
esp_err_t engine_init(const char *device);

/* Feed bytes of a byte stream (UART0). Complete lines are answered through write(ctx, ...),
 * synchronously, with the lock held. The stream's partial line survives between calls. */
void engine_feed(const uint8_t *data, int32_t n, se_write_fn write, void *ctx);

/* Handle one request that arrived as a whole message (MQTT): kept[0..kept_len) are its first
 * bytes (kept_len <= SE_LINE_MAX), total its real length, tail its last two bytes (for the
 * "\n" / "\r\n" that may end it). The answer, without its newline, goes to write(ctx, ...). */
void engine_handle_message(const uint8_t *kept, int32_t kept_len, int32_t total, const uint8_t tail[2],
                           se_write_fn write, void *ctx);

#endif /* SE_ESP32_ENGINE_H */
