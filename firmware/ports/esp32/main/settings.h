/* SqueezeEdge ESP32 app: the settings — menuconfig defaults (Kconfig.projbuild), overridden by
 * NVS keys in namespace "squeezeedge" (README.md "Settings in NVS"). No secret is in the source. */
#ifndef SE_ESP32_SETTINGS_H
#define SE_ESP32_SETTINGS_H

#include <stdint.h>

#include "esp_err.h"
#include "se_mqtt_topics.h"

#define SE_NVS_NAMESPACE "squeezeedge"

typedef struct {
  char wifi_ssid[33];  /* 802.11: at most 32 bytes */
  char wifi_pass[65];  /* WPA: 8..63 characters, or 64 hex digits */
  char broker[256];    /* mqtt://host[:port] or mqtts://host[:port] */
  char mqtt_user[128];
  char mqtt_pass[128];
  char device[SE_MQTT_DEVICE_MAX + 1]; /* 1..64 of [A-Za-z0-9_-] */
  char prefix[SE_MQTT_PREFIX_MAX + 1]; /* first topic level(s), [A-Za-z0-9_/-] */
  uint32_t baud;       /* UART0 */
  /* mqtts://: PEM texts from NVS (heap, NULL when absent): the CA that signed the broker's
   * certificate (mqtt_ca; without it, ESP-IDF's certificate bundle if enabled), and a client
   * certificate with its key (mqtt_cert, mqtt_key) for brokers that require one. */
  char *mqtt_ca, *mqtt_cert, *mqtt_key;
} se_settings_t;

/* Fill s from the Kconfig defaults and the NVS overrides (nvs_flash_init must have run), derive
 * the device id when none is set. A stored value that cannot be used is logged and skipped. */
void settings_load(se_settings_t *s);

/* 1 when d can be used in topics and Home Assistant ids: 1..64 of [A-Za-z0-9_-]. */
int settings_valid_device(const char *d);
/* 1 when p is a usable topic prefix: 1..63 of [A-Za-z0-9_/-], not starting or ending with '/'. */
int settings_valid_prefix(const char *p);

#endif /* SE_ESP32_SETTINGS_H */
