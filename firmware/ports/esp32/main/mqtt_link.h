/* SqueezeEdge ESP32 app: the line protocol over MQTT (esp-mqtt), exactly as the host emulator
 * (firmware/ports/host/mqtt.c, firmware/PROTOCOL.md "Over MQTT"), for a device id ID and
 * a topic prefix P ("squeezeedge" unless configured); topics, client id and discovery payload
 * from se_mqtt_topics.h (generated from host_tools/mqtt_topics.py):
 *
 *   requests   P/ID/cmd     (subscribed with QoS 1; one payload = one request line)
 *   answers    P/ID/result  (QoS 1, not retained; one JSON response line, no newline)
 *   status     P/ID/status  (retained "online" on connect, QoS 1; the last will: retained "offline")
 *   discovery  homeassistant/sensor/squeezeedge_ID/intent/config (retained, QoS 1)
 *
 * Persistent session (clean_session = false, client id "squeezeedge-ID", keepalive 15 s), so
 * QoS 1 requests the broker queued while the device was away are answered after it reconnects;
 * reconnects back off from 1 s, doubling to 30 s. */
#ifndef SE_ESP32_MQTT_LINK_H
#define SE_ESP32_MQTT_LINK_H

#include "esp_err.h"
#include "settings.h"

/* Build the topics, the discovery payload and the client from s (device and prefix valid). */
esp_err_t mqtt_link_init(const se_settings_t *s);

/* The network is up (an IP address was obtained): connect the first time, later reconnect now
 * instead of waiting out the backoff. Safe to call from the event loop task. */
void mqtt_link_network_up(void);

#endif /* SE_ESP32_MQTT_LINK_H */
