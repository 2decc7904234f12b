/* SqueezeEdge ESP32 app: MQTT (see mqtt_link.h). ESP-IDF v5 esp-mqtt API:
 * https://docs.espressif.com/projects/esp-idf/en/v5.2/esp32/api-reference/protocols/mqtt.html
 * (esp_mqtt_client_config_t with nested broker/credentials/session/network/task/buffer). */
#include "mqtt_link.h"

#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "esp_crt_bundle.h"
#include "esp_log.h"
#include "esp_timer.h"
#include "mqtt_client.h"
#include "sdkconfig.h"
#include "se_mqtt_topics.h"

#define SE_MQTT_KEEPALIVE 15 /* seconds, as the host emulator */
#define SE_MQTT_BACKOFF_MIN_MS 1000u
#define SE_MQTT_BACKOFF_MAX_MS 30000u
/* The event handler runs the classifier in esp-mqtt's task: the ~1.8 KB (rv32) classify chain on
 * top of esp-mqtt's own frames and a log line. */
#define SE_MQTT_TASK_STACK 8192
/* One request line up to SE_LINE_MAX plus topic and header arrives in one piece; longer payloads
 * come in several MQTT_EVENT_DATA pieces and are reassembled below. */
#define SE_MQTT_BUFFER (SE_LINE_MAX + 512)

static const char *TAG = "se_mqtt";

/* settings_valid_prefix/_device bound the prefix and the id, so every topic fits SE_MQTT_TOPIC_CAP */
static char t_cmd[SE_MQTT_TOPIC_CAP], t_result[SE_MQTT_TOPIC_CAP], t_status[SE_MQTT_TOPIC_CAP];
static char t_discovery[SE_MQTT_TOPIC_CAP];
static char client_id[SE_MQTT_TOPIC_CAP];
static char discovery[2048];
static int discovery_len;
static char broker_shown[256];
static const char *device_id;

static esp_mqtt_client_handle_t client;
static esp_timer_handle_t retry_timer;
static volatile int retry_armed;
static uint32_t backoff_ms = SE_MQTT_BACKOFF_MIN_MS;
static int started, ready_logged;

/* One incoming request, possibly in pieces: its first SE_LINE_MAX bytes, its last two. */
static uint8_t rx[SE_LINE_MAX];
static int32_t rx_kept, rx_total, rx_seen;
static uint8_t rx_tail[2];
static int rx_active;

/* Home Assistant discovery (se_mqtt_topics.h, as the host emulator's). Device id and prefix are
 * validated ([A-Za-z0-9_/-]) and model and version are constants: no JSON escaping needed. */
static int build_discovery(const char *d) {
  int n = snprintf(discovery, sizeof discovery, SE_MQTT_DISCOVERY,
                   SE_MQTT_DISCOVERY_ARGS(d, t_result, t_status, "SqueezeEdge " CONFIG_IDF_TARGET, SE_FIRMWARE_VERSION));
  if (n < 0 || n >= (int)sizeof discovery) return -1;
  discovery_len = n;
  return 0;
}

/* The broker URI for log lines, without the user:password@ it may carry. */
static void show_broker(const char *uri) {
  const char *sep = strstr(uri, "://");
  const char *host = sep ? sep + 3 : uri;
  const char *at = strrchr(host, '@');
  if (at) snprintf(broker_shown, sizeof broker_shown, "%.*s%s", (int)(host - uri), uri, at + 1);
  else snprintf(broker_shown, sizeof broker_shown, "%s", uri);
}

static void publish_answer(void *ctx, const uint8_t *data, int32_t len) {
  (void)ctx;
  /* QoS 1, not retained, as the host. Called from the MQTT event handler, which the API allows
   * (mqtt_client.h: publish/subscribe "could be executed from a user task or from a MQTT event
   * callback"). len > 0 always: 0 would make esp-mqtt take strlen(data). */
  if (esp_mqtt_client_publish(client, t_result, (const char *)data, (int)len, 1, 0) < 0)
    ESP_LOGW(TAG, "an answer could not be queued (outbox full?)");
}

static void arm_retry(void) {
  if (retry_armed) return; /* ERROR and DISCONNECTED may both report one failed attempt */
  retry_armed = 1;
  ESP_LOGW(TAG, "not connected to %s; retrying in %u s", broker_shown, (unsigned)(backoff_ms / 1000u));
  esp_timer_start_once(retry_timer, (uint64_t)backoff_ms * 1000u);
  backoff_ms = backoff_ms * 2u > SE_MQTT_BACKOFF_MAX_MS ? SE_MQTT_BACKOFF_MAX_MS : backoff_ms * 2u;
}

static void retry(void *arg) {
  (void)arg;
  retry_armed = 0;
  /* ESP_FAIL unless the client is waiting to reconnect (esp-mqtt's MQTT_STATE_WAIT_RECONNECT);
   * then a connection attempt is already under way and its outcome arrives as an event. */
  esp_mqtt_client_reconnect(client);
}

static void on_data(const esp_mqtt_event_t *e) {
  int32_t i;
  if (e->current_data_offset == 0) { /* the first piece: the only one with the topic */
    /* a retained request is an old one the broker replays at every subscription: never run it */
    rx_active = !e->retain && e->topic_len == (int)strlen(t_cmd) && memcmp(e->topic, t_cmd, (size_t)e->topic_len) == 0;
    rx_kept = rx_seen = 0;
    rx_total = e->total_data_len;
    rx_tail[0] = rx_tail[1] = 0;
  }
  if (!rx_active) return;
  for (i = 0; i < e->data_len; ++i) {
    uint8_t b = (uint8_t)e->data[i];
    if (rx_kept < SE_LINE_MAX) rx[rx_kept++] = b;
    rx_tail[0] = rx_tail[1];
    rx_tail[1] = b;
  }
  rx_seen += e->data_len;
  if (rx_seen >= rx_total) {
    rx_active = 0;
    engine_handle_message(rx, rx_kept, rx_total, rx_tail, publish_answer, NULL);
  }
}

static void on_event(void *arg, esp_event_base_t base, int32_t id, void *data) {
  esp_mqtt_event_handle_t e = (esp_mqtt_event_handle_t)data;
  (void)arg; (void)base;
  switch ((esp_mqtt_event_id_t)id) {
    case MQTT_EVENT_CONNECTED:
      /* the host's order: subscribe, "online", discovery */
      backoff_ms = SE_MQTT_BACKOFF_MIN_MS;
      esp_mqtt_client_subscribe(client, (const char *)t_cmd, 1);
      esp_mqtt_client_publish(client, t_status, SE_MQTT_ONLINE, (int)strlen(SE_MQTT_ONLINE), 1, 1);
      esp_mqtt_client_publish(client, t_discovery, discovery, discovery_len, 1, 1);
      if (ready_logged) ESP_LOGI(TAG, "reconnected to %s", broker_shown);
      break;
    case MQTT_EVENT_SUBSCRIBED:
      if (!ready_logged) { /* requests published from now on reach us */
        ready_logged = 1;
        ESP_LOGI(TAG, "SE_READY mqtt %s %s", broker_shown, device_id);
      }
      break;
    case MQTT_EVENT_DISCONNECTED:
      rx_active = 0;
      arm_retry();
      break;
    case MQTT_EVENT_DATA:
      on_data(e);
      break;
    case MQTT_EVENT_ERROR:
      if (e->error_handle && e->error_handle->error_type == MQTT_ERROR_TYPE_CONNECTION_REFUSED)
        ESP_LOGE(TAG, "%s refused the connection (CONNACK code %d; 4 and 5: check the user name and password)",
                 broker_shown, (int)e->error_handle->connect_return_code);
      else if (e->error_handle && e->error_handle->error_type == MQTT_ERROR_TYPE_TCP_TRANSPORT &&
               e->error_handle->esp_tls_last_esp_err != 0)
        ESP_LOGW(TAG, "TLS to %s failed (%s, certificate verify flags 0x%x): check the CA (NVS mqtt_ca) and that the "
                      "URI's host is a name the broker's certificate lists", broker_shown,
                 esp_err_to_name(e->error_handle->esp_tls_last_esp_err), (unsigned)e->error_handle->esp_tls_cert_verify_flags);
      else if (e->error_handle && e->error_handle->error_type == MQTT_ERROR_TYPE_TCP_TRANSPORT)
        ESP_LOGW(TAG, "cannot reach %s (socket errno %d)", broker_shown, e->error_handle->esp_transport_sock_errno);
      break;
    default:
      break;
  }
}

/* mqtts://: esp-tls verifies the broker's certificate against a CA and, unless told not to, its
 * host name. Without a CA it refuses to connect, so say so at boot rather than retry forever.
 * The CA: NVS key mqtt_ca (a home broker's own CA), else ESP-IDF's certificate bundle (public CAs). */
static int tls_settings(const se_settings_t *s, esp_mqtt_client_config_t *cfg) {
  if (s->mqtt_ca) {
    cfg->broker.verification.certificate = s->mqtt_ca; /* PEM, NUL-terminated: length 0 */
  } else {
#if CONFIG_SE_MQTT_TLS_CERT_BUNDLE
    cfg->broker.verification.crt_bundle_attach = esp_crt_bundle_attach;
#else
    ESP_LOGE(TAG, "%s is mqtts:// but no CA is configured: store the broker's CA as NVS key mqtt_ca (README.md, "
                  "\"TLS\") or enable SE_MQTT_TLS_CERT_BUNDLE for a broker with a public certificate; no MQTT",
             broker_shown);
    return 0;
#endif
  }
#if CONFIG_SE_MQTT_TLS_INSECURE_NO_HOSTNAME_CHECK
  cfg->broker.verification.skip_cert_common_name_check = true;
  ESP_LOGW(TAG, "SE_MQTT_TLS_INSECURE_NO_HOSTNAME_CHECK: the broker's certificate is NOT checked against the host "
                "name of %s; any server with a certificate from that CA can pose as the broker", broker_shown);
#endif
  if (s->mqtt_cert && s->mqtt_key) {
    cfg->credentials.authentication.certificate = s->mqtt_cert;
    cfg->credentials.authentication.key = s->mqtt_key;
  } else if (s->mqtt_cert || s->mqtt_key) {
    ESP_LOGE(TAG, "a client certificate needs both NVS keys mqtt_cert and mqtt_key; connecting without one");
  }
  return 1;
}

esp_err_t mqtt_link_init(const se_settings_t *s) {
  esp_mqtt_client_config_t cfg;
  const esp_timer_create_args_t timer_args = {.callback = retry, .arg = NULL, .name = "se_mqtt_retry"};
  esp_err_t err;

  device_id = s->device;
  snprintf(t_cmd, sizeof t_cmd, SE_MQTT_TOPIC_CMD, SE_MQTT_TOPIC_CMD_ARGS(s->prefix, s->device));
  snprintf(t_result, sizeof t_result, SE_MQTT_TOPIC_RESULT, SE_MQTT_TOPIC_RESULT_ARGS(s->prefix, s->device));
  snprintf(t_status, sizeof t_status, SE_MQTT_TOPIC_STATUS, SE_MQTT_TOPIC_STATUS_ARGS(s->prefix, s->device));
  snprintf(t_discovery, sizeof t_discovery, SE_MQTT_TOPIC_DISCOVERY, SE_MQTT_TOPIC_DISCOVERY_ARGS(s->prefix, s->device));
  snprintf(client_id, sizeof client_id, SE_MQTT_CLIENT_ID, SE_MQTT_CLIENT_ID_ARGS(s->prefix, s->device));
  if (build_discovery(s->device) < 0) return ESP_ERR_INVALID_SIZE;
  show_broker(s->broker);

  memset(&cfg, 0, sizeof cfg);
  cfg.broker.address.uri = s->broker;
  cfg.credentials.client_id = client_id;
  cfg.credentials.username = s->mqtt_user[0] ? s->mqtt_user : NULL;
  cfg.credentials.authentication.password = s->mqtt_pass[0] ? s->mqtt_pass : NULL;
  if (strncmp(s->broker, "mqtts://", 8) == 0 && !tls_settings(s, &cfg)) return ESP_ERR_INVALID_ARG;
  cfg.session.last_will.topic = t_status;
  cfg.session.last_will.msg = SE_MQTT_OFFLINE;
  cfg.session.last_will.msg_len = (int)strlen(SE_MQTT_OFFLINE);
  cfg.session.last_will.qos = 1;
  cfg.session.last_will.retain = 1;
  cfg.session.disable_clean_session = true; /* persistent session: queued QoS 1 requests survive */
  cfg.session.keepalive = SE_MQTT_KEEPALIVE;
  /* esp-mqtt retries at a fixed interval; the backoff is ours: it calls
   * esp_mqtt_client_reconnect, which requires auto reconnect to be off. */
  cfg.network.disable_auto_reconnect = true;
  cfg.task.stack_size = SE_MQTT_TASK_STACK;
  cfg.buffer.size = SE_MQTT_BUFFER;

  err = esp_timer_create(&timer_args, &retry_timer);
  if (err != ESP_OK) return err;
  client = esp_mqtt_client_init(&cfg);
  if (client == NULL) {
    ESP_LOGE(TAG, "cannot set up MQTT for broker %s: use mqtt://host[:port] or mqtts://host[:port] (menuconfig "
                  "SE_MQTT_BROKER_URI or NVS key broker)",
             broker_shown);
    return ESP_ERR_INVALID_ARG;
  }
  /* the official examples pass ESP_EVENT_ANY_ID cast to the enum */
  err = esp_mqtt_client_register_event(client, (esp_mqtt_event_id_t)ESP_EVENT_ANY_ID, on_event, NULL);
  if (err != ESP_OK) return err;
  ESP_LOGI(TAG, "device %s: requests on %s, answers on %s", s->device, t_cmd, t_result);
  return ESP_OK;
}

void mqtt_link_network_up(void) {
  if (client == NULL) return;
  if (!started) {
    esp_err_t err = esp_mqtt_client_start(client);
    if (err != ESP_OK) ESP_LOGE(TAG, "cannot start the MQTT client (%s)", esp_err_to_name(err));
    else started = 1;
    return;
  }
  /* back on the network: try now rather than at the end of the backoff */
  backoff_ms = SE_MQTT_BACKOFF_MIN_MS;
  if (retry_armed) {
    esp_timer_stop(retry_timer);
    retry_armed = 0;
  }
  esp_mqtt_client_reconnect(client);
}
