/* SqueezeEdge ESP32 app: Wi-Fi station (see wifi_sta.h). The sequence follows ESP-IDF's
 * examples/wifi/getting_started/station and the Wi-Fi driver guide:
 * https://docs.espressif.com/projects/esp-idf/en/v5.2/esp32/api-guides/wifi.html */
#include "wifi_sta.h"

#include <string.h>

#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_timer.h"
#include "esp_wifi.h"

#define SE_WIFI_BACKOFF_MIN_MS 1000u
#define SE_WIFI_BACKOFF_MAX_MS 30000u

static const char *TAG = "se_wifi";
static char ssid_shown[33];
static wifi_sta_up_fn up_cb;
static esp_timer_handle_t retry_timer;
static uint32_t backoff_ms = SE_WIFI_BACKOFF_MIN_MS;

static void retry(void *arg) {
  (void)arg;
  esp_wifi_connect(); /* the outcome arrives as CONNECTED/GOT_IP or another DISCONNECTED */
}

/* Runs in the default event loop task: no blocking here, the retry waits in an esp_timer. */
static void on_event(void *arg, esp_event_base_t base, int32_t id, void *data) {
  (void)arg;
  if (base == WIFI_EVENT && id == WIFI_EVENT_STA_START) {
    esp_wifi_connect();
  } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
    const wifi_event_sta_disconnected_t *d = (const wifi_event_sta_disconnected_t *)data;
    ESP_LOGW(TAG, "not connected to \"%s\" (reason %d); retrying in %u s", ssid_shown, d ? (int)d->reason : -1,
             (unsigned)(backoff_ms / 1000u));
    esp_timer_stop(retry_timer); /* ESP_ERR_INVALID_STATE when it was not running: fine */
    esp_timer_start_once(retry_timer, (uint64_t)backoff_ms * 1000u);
    backoff_ms = backoff_ms * 2u > SE_WIFI_BACKOFF_MAX_MS ? SE_WIFI_BACKOFF_MAX_MS : backoff_ms * 2u;
  } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
    const ip_event_got_ip_t *e = (const ip_event_got_ip_t *)data;
    ESP_LOGI(TAG, "connected to \"%s\", address " IPSTR, ssid_shown, IP2STR(&e->ip_info.ip));
    backoff_ms = SE_WIFI_BACKOFF_MIN_MS;
    if (up_cb) up_cb();
  }
}

esp_err_t wifi_sta_start(const char *ssid, const char *pass, wifi_sta_up_fn on_up) {
  wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
  wifi_config_t wc;
  const esp_timer_create_args_t timer_args = {.callback = retry, .arg = NULL, .name = "se_wifi_retry"};
  size_t n;
  esp_err_t err;

  up_cb = on_up;
  n = strlen(ssid);
  if (n == 0 || n > sizeof wc.sta.ssid) {
    ESP_LOGE(TAG, "the Wi-Fi SSID must be 1..32 bytes (menuconfig SE_WIFI_SSID or NVS key wifi_ssid)");
    return ESP_ERR_INVALID_ARG;
  }
  if (strlen(pass) > sizeof wc.sta.password) {
    ESP_LOGE(TAG, "the Wi-Fi password is longer than 64 bytes (menuconfig SE_WIFI_PASSWORD or NVS key wifi_pass)");
    return ESP_ERR_INVALID_ARG;
  }
  memcpy(ssid_shown, ssid, n);
  ssid_shown[n] = 0;

  ESP_ERROR_CHECK(esp_netif_init());
  ESP_ERROR_CHECK(esp_event_loop_create_default());
  esp_netif_create_default_wifi_sta(); /* aborts itself on failure (documented) */
  ESP_ERROR_CHECK(esp_timer_create(&timer_args, &retry_timer));
  err = esp_wifi_init(&init);
  if (err != ESP_OK) {
    ESP_LOGE(TAG, "cannot start the Wi-Fi driver (%s)", esp_err_to_name(err));
    return err;
  }
  /* The settings live in our NVS namespace; the driver need not keep a second copy in flash. */
  esp_wifi_set_storage(WIFI_STORAGE_RAM);
  ESP_ERROR_CHECK(esp_event_handler_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_event, NULL));
  ESP_ERROR_CHECK(esp_event_handler_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_event, NULL));

  memset(&wc, 0, sizeof wc);
  memcpy(wc.sta.ssid, ssid, n); /* 32 bytes, NUL-terminated only when shorter */
  memcpy(wc.sta.password, pass, strlen(pass));
  /* WPA2 or better when a password is given (WPA3 networks are accepted too); open otherwise */
  wc.sta.threshold.authmode = pass[0] ? WIFI_AUTH_WPA2_PSK : WIFI_AUTH_OPEN;
  ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_STA));
  ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_STA, &wc));
  ESP_ERROR_CHECK(esp_wifi_start()); /* → WIFI_EVENT_STA_START → esp_wifi_connect() */
  ESP_LOGI(TAG, "joining \"%s\"", ssid_shown);
  return ESP_OK;
}
