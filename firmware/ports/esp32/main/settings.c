/* SqueezeEdge ESP32 app: settings from menuconfig and NVS (see settings.h). */
#include "settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_log.h"
#include "esp_mac.h"
#include "nvs.h"
#include "sdkconfig.h"

static const char *TAG = "se_settings";

/* A menuconfig default into dst. A loop, not snprintf: GCC's -Wformat-truncation on a long
 * literal would stop the build (ESP-IDF compiles with -Werror=all) without saying which option. */
static void copy(char *dst, size_t cap, const char *src, const char *option) {
  size_t i;
  for (i = 0; i + 1 < cap && src[i]; ++i) dst[i] = src[i];
  dst[i] = 0;
  if (src[i]) ESP_LOGE(TAG, "menuconfig %s is longer than %u bytes and was cut; shorten it", option, (unsigned)(cap - 1));
}

/* A string key overrides dst when present and it fits; the value itself is never logged. */
static void nvs_string(nvs_handle_t h, const char *key, char *dst, size_t cap) {
  char tmp[256];
  size_t len = sizeof tmp;
  esp_err_t err;
  if (cap > sizeof tmp) cap = sizeof tmp;
  err = nvs_get_str(h, key, tmp, &len); /* len: in, the buffer size; out, the bytes used (with NUL) */
  if (err == ESP_ERR_NVS_NOT_FOUND) return;
  if (err != ESP_OK) {
    ESP_LOGE(TAG, "NVS key %s/%s cannot be read (%s); using the menuconfig value", SE_NVS_NAMESPACE, key,
             esp_err_to_name(err));
    return;
  }
  if (len > cap) {
    ESP_LOGE(TAG, "NVS key %s/%s is %u bytes, at most %u fit; using the menuconfig value", SE_NVS_NAMESPACE, key,
             (unsigned)(len - 1), (unsigned)(cap - 1));
    return;
  }
  memcpy(dst, tmp, len);
}

/* A PEM text (a certificate or key, a few KB) from NVS into the heap; NULL when absent. */
static char *nvs_pem(nvs_handle_t h, const char *key) {
  size_t len = 0;
  char *pem;
  esp_err_t err = nvs_get_str(h, key, NULL, &len); /* NULL: only the length (with NUL) */
  if (err == ESP_ERR_NVS_NOT_FOUND) return NULL;
  if (err != ESP_OK || len < 2) {
    ESP_LOGE(TAG, "NVS key %s/%s cannot be read (%s); TLS goes on without it", SE_NVS_NAMESPACE, key, esp_err_to_name(err));
    return NULL;
  }
  pem = malloc(len);
  if (pem == NULL || nvs_get_str(h, key, pem, &len) != ESP_OK) {
    ESP_LOGE(TAG, "NVS key %s/%s (%u bytes) cannot be loaded", SE_NVS_NAMESPACE, key, (unsigned)len);
    free(pem);
    return NULL;
  }
  return pem;
}

int settings_valid_device(const char *d) {
  size_t i, n = strlen(d);
  if (n == 0 || n > SE_MQTT_DEVICE_MAX) return 0;
  for (i = 0; i < n; ++i) {
    char c = d[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return 0;
  }
  return 1;
}

int settings_valid_prefix(const char *p) {
  size_t i, n = strlen(p);
  if (n == 0 || n > SE_MQTT_PREFIX_MAX || p[0] == '/' || p[n - 1] == '/') return 0;
  for (i = 0; i < n; ++i) {
    char c = p[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
          c == '/'))
      return 0;
  }
  return 1;
}

void settings_load(se_settings_t *s) {
  nvs_handle_t h;
  esp_err_t err;
  memset(s, 0, sizeof *s);
  copy(s->wifi_ssid, sizeof s->wifi_ssid, CONFIG_SE_WIFI_SSID, "SE_WIFI_SSID");
  copy(s->wifi_pass, sizeof s->wifi_pass, CONFIG_SE_WIFI_PASSWORD, "SE_WIFI_PASSWORD");
  copy(s->broker, sizeof s->broker, CONFIG_SE_MQTT_BROKER_URI, "SE_MQTT_BROKER_URI");
  copy(s->mqtt_user, sizeof s->mqtt_user, CONFIG_SE_MQTT_USERNAME, "SE_MQTT_USERNAME");
  copy(s->mqtt_pass, sizeof s->mqtt_pass, CONFIG_SE_MQTT_PASSWORD, "SE_MQTT_PASSWORD");
  copy(s->device, sizeof s->device, CONFIG_SE_DEVICE_ID, "SE_DEVICE_ID");
  copy(s->prefix, sizeof s->prefix, CONFIG_SE_TOPIC_PREFIX, "SE_TOPIC_PREFIX");
  s->baud = (uint32_t)CONFIG_SE_UART_BAUD;

  /* NVS_READONLY on a namespace that was never written gives ESP_ERR_NVS_NOT_FOUND: no overrides.
   * https://docs.espressif.com/projects/esp-idf/en/v5.2/esp32/api-reference/storage/nvs_flash.html */
  err = nvs_open(SE_NVS_NAMESPACE, NVS_READONLY, &h);
  if (err == ESP_OK) {
    uint32_t baud;
    nvs_string(h, "wifi_ssid", s->wifi_ssid, sizeof s->wifi_ssid);
    nvs_string(h, "wifi_pass", s->wifi_pass, sizeof s->wifi_pass);
    nvs_string(h, "broker", s->broker, sizeof s->broker);
    nvs_string(h, "mqtt_user", s->mqtt_user, sizeof s->mqtt_user);
    nvs_string(h, "mqtt_pass", s->mqtt_pass, sizeof s->mqtt_pass);
    nvs_string(h, "device", s->device, sizeof s->device);
    nvs_string(h, "prefix", s->prefix, sizeof s->prefix);
    s->mqtt_ca = nvs_pem(h, "mqtt_ca");
    s->mqtt_cert = nvs_pem(h, "mqtt_cert");
    s->mqtt_key = nvs_pem(h, "mqtt_key");
    err = nvs_get_u32(h, "baud", &baud);
    if (err == ESP_OK && baud >= 9600u && baud <= 2000000u) s->baud = baud;
    else if (err == ESP_OK) ESP_LOGE(TAG, "NVS key %s/baud = %u is outside 9600..2000000; keeping %u", SE_NVS_NAMESPACE,
                                     (unsigned)baud, (unsigned)s->baud);
    nvs_close(h);
  } else if (err != ESP_ERR_NVS_NOT_FOUND) {
    ESP_LOGE(TAG, "cannot open NVS namespace %s (%s); using the menuconfig values", SE_NVS_NAMESPACE,
             esp_err_to_name(err));
  }

  if (s->device[0] == 0) {
    uint8_t mac[6] = {0};
    esp_read_mac(mac, ESP_MAC_WIFI_STA); /* esp_mac.h in ESP-IDF v5 */
    snprintf(s->device, sizeof s->device, "%s-%02x%02x%02x", CONFIG_IDF_TARGET, mac[3], mac[4], mac[5]);
  }
}
