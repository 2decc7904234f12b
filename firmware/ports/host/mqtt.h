/* SqueezeEdge host emulator: the device protocol over MQTT (libmosquitto). The topics, client id
 * and discovery payload come from se_mqtt_topics.h (generated from host_tools/mqtt_topics.py):
 *
 *   requests   squeezeedge/<device>/cmd     (QoS 1; one payload = one request line)
 *   answers    squeezeedge/<device>/result  (QoS 1; one JSON response line, no newline)
 *   status     squeezeedge/<device>/status  (retained "online"; the last will sets "offline")
 *   discovery  homeassistant/sensor/squeezeedge_<device>/intent/config (retained)
 *
 * The session is persistent (clean_session=false, client id "squeezeedge-<device>"), so QoS 1
 * requests the broker queued while the emulator was away are answered after it reconnects.
 *
 * TLS: an mqtts:// broker (port 8883 by default) is verified against cafile (default: the
 * system's CAs) and its host name (tls_insecure_no_hostname_check turns that off, loudly).
 * Credentials never come from the command line: a config file (mode 0600 when it holds a
 * password) or SQUEEZEEDGE_MQTT_USERNAME / SQUEEZEEDGE_MQTT_PASSWORD. */
#ifndef SE_HOST_MQTT_H
#define SE_HOST_MQTT_H

#include <signal.h>

#include "se_mqtt_topics.h"
#include "se_protocol.h"

typedef struct {
  char host[256];
  int port;
  char username[128];
  char password[128];
  char device[SE_MQTT_DEVICE_MAX + 1];
  int have_broker;
  int tls;                 /* mqtts:// */
  int tls_insecure;        /* no host name check (still checked against the CA) */
  char cafile[512], certfile[512], keyfile[512];
  int url_had_password;    /* a password came in a URL: warn (ps shows argv) */
} se_mqtt_config_t;

/* Parse "mqtt[s]://[user:pass@]host[:port]" (or "host[:port]") into cfg; user and password may be
 * %-encoded. Returns 0, or -1 with a message in err. */
int se_mqtt_parse_url(const char *url, se_mqtt_config_t *cfg, char *err, int err_cap);
/* Read a key=value file (broker, device, username, password, cafile, certfile, keyfile,
 * tls_insecure_no_hostname_check; '#' starts a comment; a value may be a TOML "string", so the
 * host tools' credentials file works as it is). Fields already set in cfg are kept (command-line
 * options win over the file). A file holding a password must not be readable by group/others. */
int se_mqtt_read_config(const char *path, se_mqtt_config_t *cfg, char *err, int err_cap);
/* Fill username/password from SQUEEZEEDGE_MQTT_USERNAME / SQUEEZEEDGE_MQTT_PASSWORD when unset. */
int se_mqtt_read_env(se_mqtt_config_t *cfg, char *err, int err_cap);
/* A device id usable in topics and Home Assistant ids: 1..SE_MQTT_DEVICE_MAX of [A-Za-z0-9_-]. */
int se_mqtt_valid_device(const char *device);
/* Serve the protocol over MQTT until *stop becomes nonzero. Returns the process exit code. */
int se_mqtt_run(se_protocol_t *proto, const se_mqtt_config_t *cfg, volatile sig_atomic_t *stop,
                const char *firmware_version, const char *model_name);

#endif /* SE_HOST_MQTT_H */
