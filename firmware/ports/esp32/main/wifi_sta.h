/* SqueezeEdge ESP32 app: Wi-Fi station that keeps reconnecting (backoff 1 s doubling to 30 s). */
#ifndef SE_ESP32_WIFI_STA_H
#define SE_ESP32_WIFI_STA_H

#include "esp_err.h"

typedef void (*wifi_sta_up_fn)(void);

/* Initialise the network stack and the default event loop, and join `ssid` (an empty `pass`
 * joins an open network). on_up (may be NULL) runs in the event loop task each time an IPv4
 * address is obtained. Returns at once; the connection is made in the background. */
esp_err_t wifi_sta_start(const char *ssid, const char *pass, wifi_sta_up_fn on_up);

#endif /* SE_ESP32_WIFI_STA_H */
