/* SqueezeEdge ESP32 app (ESP-IDF v5.x; ESP32, ESP32-S3, ESP32-C3): the firmware core and the
 * model package serving the line protocol (firmware/PROTOCOL.md) on UART0 and, when Wi-Fi and a
 * broker are configured, over MQTT with the host emulator's topics. This file only wires the
 * pieces: settings (menuconfig + NVS) → engine (classifier + protocol) → UART0, Wi-Fi, MQTT. */
#include <string.h>

#include "engine.h"
#include "esp_log.h"
#include "mqtt_link.h"
#include "nvs_flash.h"
#include "sdkconfig.h"
#include "settings.h"
#include "uart_link.h"
#include "wifi_sta.h"

#ifdef CONFIG_SE_UART_LOGS
#define SE_LOGS_ON_UART 1
#else
#define SE_LOGS_ON_UART 0
#endif

static const char *TAG = "squeezeedge";
static se_settings_t settings; /* the strings stay referenced by the MQTT and Wi-Fi modules */

static void nvs_init(void) {
  esp_err_t err = nvs_flash_init();
  if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
    /* The partition cannot be used as it is (full, or written by a newer NVS format): the Wi-Fi
     * driver needs NVS, so erase it, as ESP-IDF's examples do, and say that settings were lost. */
    ESP_LOGW(TAG, "the NVS partition was unusable (%s) and is erased: stored settings are gone, write them again",
             esp_err_to_name(err));
    ESP_ERROR_CHECK(nvs_flash_erase());
    err = nvs_flash_init();
  }
  ESP_ERROR_CHECK(err);
}

void app_main(void) {
  int mqtt_ok;
  nvs_init();
  settings_load(&settings);

  if (engine_init(CONFIG_IDF_TARGET) != ESP_OK) {
    ESP_LOGE(TAG, "the classifier could not be set up (out of memory?); nothing will answer");
    return;
  }
  if (uart_link_start(settings.baud, SE_LOGS_ON_UART) != ESP_OK)
    ESP_LOGE(TAG, "no protocol on UART0; MQTT may still work");

  if (settings.wifi_ssid[0] == 0) {
    ESP_LOGW(TAG, "no Wi-Fi network set (menuconfig SE_WIFI_SSID or NVS key wifi_ssid): serial only");
    return;
  }
  mqtt_ok = 0;
  if (settings.broker[0] == 0) {
    ESP_LOGW(TAG, "no MQTT broker set (menuconfig SE_MQTT_BROKER_URI or NVS key broker): serial only");
  } else if (!settings_valid_device(settings.device)) {
    ESP_LOGE(TAG, "device id \"%s\" is not 1..64 of A-Z a-z 0-9 _ - (SE_DEVICE_ID / NVS key device): no MQTT",
             settings.device);
  } else if (!settings_valid_prefix(settings.prefix)) {
    ESP_LOGE(TAG, "topic prefix \"%s\" is not 1..63 of A-Z a-z 0-9 _ - / (SE_TOPIC_PREFIX / NVS key prefix): no MQTT",
             settings.prefix);
  } else {
    mqtt_ok = mqtt_link_init(&settings) == ESP_OK;
  }
  if (!mqtt_ok) return; /* Wi-Fi alone would serve nothing */
  wifi_sta_start(settings.wifi_ssid, settings.wifi_pass, mqtt_link_network_up);
}
