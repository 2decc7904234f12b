/* SqueezeEdge host emulator: the device protocol over MQTT with libmosquitto (see mqtt.h). */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700
#include "mqtt.h"

#include <ctype.h>
#include <errno.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "se_mqtt_topics.h"

#define SE_MQTT_KEEPALIVE 15
#define SE_MQTT_BACKOFF_MIN 1  /* seconds; doubles up to the maximum */
#define SE_MQTT_BACKOFF_MAX 30

static void set_err(char *err, int cap, const char *fmt, const char *arg) {
  if (err && cap > 0) snprintf(err, (size_t)cap, fmt, arg);
}

/* Copy src[0..n) into dst (cap bytes), decoding %XX; -1 if it does not fit or is malformed. */
static int pct_decode(char *dst, int cap, const char *src, size_t n) {
  int o = 0;
  size_t i;
  for (i = 0; i < n; ++i) {
    int c = (unsigned char)src[i];
    if (c == '%') {
      char hex[3];
      if (i + 2 >= n) return -1;
      if (!isxdigit((unsigned char)src[i + 1]) || !isxdigit((unsigned char)src[i + 2])) return -1;
      hex[0] = src[i + 1]; hex[1] = src[i + 2]; hex[2] = 0;
      c = (int)strtol(hex, NULL, 16);
      i += 2;
    }
    if (o + 1 >= cap) return -1;
    dst[o++] = (char)c;
  }
  dst[o] = 0;
  return 0;
}

int se_mqtt_parse_url(const char *url, se_mqtt_config_t *cfg, char *err, int err_cap) {
  const char *p = url, *at, *hostp, *colon, *end;
  size_t hlen;
  int tls = 0;
  if (strncmp(p, "mqtt://", 7) == 0) p += 7;
  else if (strncmp(p, "tcp://", 6) == 0) p += 6;
  else if (strncmp(p, "mqtts://", 8) == 0) { p += 8; tls = 1; }
  else if (strncmp(p, "ssl://", 6) == 0) { p += 6; tls = 1; }
  else if (strstr(p, "://")) { set_err(err, err_cap, "%s: use mqtt://host[:port] or mqtts://host[:port] (TLS)", url); return -1; }
  end = p + strcspn(p, "/?#");
  at = NULL;
  for (hostp = p; hostp < end; ++hostp) if (*hostp == '@') at = hostp; /* the last '@' */
  if (at) {
    const char *sep = memchr(p, ':', (size_t)(at - p));
    size_t ulen = sep ? (size_t)(sep - p) : (size_t)(at - p);
    if (pct_decode(cfg->username, (int)sizeof cfg->username, p, ulen) < 0 ||
        (sep && pct_decode(cfg->password, (int)sizeof cfg->password, sep + 1, (size_t)(at - sep - 1)) < 0)) {
      set_err(err, err_cap, "%s: bad user name or password in the broker URL", "broker");
      return -1;
    }
    if (sep && at > sep + 1) cfg->url_had_password = 1;
    hostp = at + 1;
  } else {
    hostp = p;
  }
  colon = NULL;
  if (*hostp == '[') { /* [v6]:port */
    const char *rb = memchr(hostp, ']', (size_t)(end - hostp));
    if (!rb) { set_err(err, err_cap, "%s: bad IPv6 address", url); return -1; }
    hlen = (size_t)(rb - hostp - 1);
    if (hlen == 0 || hlen >= sizeof cfg->host) { set_err(err, err_cap, "%s: bad host", url); return -1; }
    memcpy(cfg->host, hostp + 1, hlen);
    cfg->host[hlen] = 0;
    colon = (rb + 1 < end && rb[1] == ':') ? rb + 1 : NULL;
  } else {
    colon = memchr(hostp, ':', (size_t)(end - hostp));
    hlen = (size_t)((colon ? colon : end) - hostp);
    if (hlen == 0 || hlen >= sizeof cfg->host) { set_err(err, err_cap, "%s: no broker host", url); return -1; }
    memcpy(cfg->host, hostp, hlen);
    cfg->host[hlen] = 0;
  }
  cfg->tls = tls;
  cfg->port = tls ? 8883 : 1883;
  if (colon) {
    char *e;
    long v = strtol(colon + 1, &e, 10);
    if (e != end || v < 1 || v > 65535) { set_err(err, err_cap, "%s: the port must be 1..65535", url); return -1; }
    cfg->port = (int)v;
  }
  cfg->have_broker = 1;
  return 0;
}

int se_mqtt_valid_device(const char *d) {
  size_t i, n = strlen(d);
  if (n == 0 || n > SE_MQTT_DEVICE_MAX) return 0;
  for (i = 0; i < n; ++i)
    if (!(isalnum((unsigned char)d[i]) || d[i] == '_' || d[i] == '-')) return 0;
  return 1;
}

static char *trim(char *s) {
  char *e;
  while (*s == ' ' || *s == '\t') ++s;
  e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) *--e = 0;
  return s;
}

/* A TOML basic string ("...", with \" and \\) is unquoted in place; a bare value is kept. */
static int unquote(char *v) {
  size_t n = strlen(v);
  char *o = v, *i;
  if (n < 2 || v[0] != '"') return 0;
  if (v[n - 1] != '"') return -1;
  v[n - 1] = 0;
  for (i = v + 1; *i; ++i) {
    if (*i == '\\') {
      ++i;
      if (*i != '"' && *i != '\\') return -1;
    }
    *o++ = *i;
  }
  *o = 0;
  return 0;
}

static void set_path(char *dst, size_t cap, const char *v) {
  if (!dst[0]) snprintf(dst, cap, "%s", v);
}

int se_mqtt_read_config(const char *path, se_mqtt_config_t *cfg, char *err, int err_cap) {
  char line[1024];
  struct stat st;
  FILE *f = fopen(path, "r");
  int group_readable;
  if (!f) { set_err(err, err_cap, "%s: cannot open the config file", path); return -1; }
  group_readable = fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0;
  while (fgets(line, sizeof line, f)) {
    char *k, *v, *eq;
    k = trim(line);
    if (*k == 0 || *k == '#') continue;
    eq = strchr(k, '=');
    if (!eq) { fclose(f); set_err(err, err_cap, "%s: expected key=value lines", path); return -1; }
    *eq = 0;
    k = trim(k);
    v = trim(eq + 1);
    if (unquote(v) < 0) { fclose(f); set_err(err, err_cap, "%s: a quoted value must end with \" (escapes: \\\" \\\\)", path); return -1; }
    if (strcmp(k, "password") == 0 && group_readable) {
      fclose(f);
      snprintf(err, (size_t)err_cap, "%s holds a password but other users can read it; run `chmod 600 %s`", path, path);
      return -1;
    }
    if (strcmp(k, "broker") == 0) {
      se_mqtt_config_t t;
      memset(&t, 0, sizeof t);
      if (se_mqtt_parse_url(v, &t, err, err_cap) < 0) { fclose(f); return -1; }
      if (!cfg->have_broker) { memcpy(cfg->host, t.host, sizeof t.host); cfg->port = t.port; cfg->tls = t.tls; cfg->have_broker = 1; }
      if (!cfg->username[0] && t.username[0]) memcpy(cfg->username, t.username, sizeof t.username);
      if (!cfg->password[0] && t.password[0]) memcpy(cfg->password, t.password, sizeof t.password);
    } else if (strcmp(k, "device") == 0) {
      if (!cfg->device[0]) snprintf(cfg->device, sizeof cfg->device, "%s", v);
    } else if (strcmp(k, "username") == 0) {
      if (!cfg->username[0]) snprintf(cfg->username, sizeof cfg->username, "%s", v);
    } else if (strcmp(k, "password") == 0) {
      if (!cfg->password[0]) snprintf(cfg->password, sizeof cfg->password, "%s", v);
    } else if (strcmp(k, "cafile") == 0) {
      set_path(cfg->cafile, sizeof cfg->cafile, v);
    } else if (strcmp(k, "certfile") == 0) {
      set_path(cfg->certfile, sizeof cfg->certfile, v);
    } else if (strcmp(k, "keyfile") == 0) {
      set_path(cfg->keyfile, sizeof cfg->keyfile, v);
    } else if (strcmp(k, "tls_insecure_no_hostname_check") == 0) {
      if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) cfg->tls_insecure = 1;
    } else {
      fclose(f);
      set_err(err, err_cap, "unknown key '%s' in the config file (use broker, device, username, password, cafile, "
                            "certfile, keyfile, tls_insecure_no_hostname_check)", k);
      return -1;
    }
  }
  fclose(f);
  return 0;
}

int se_mqtt_read_env(se_mqtt_config_t *cfg, char *err, int err_cap) {
  const char *u = getenv("SQUEEZEEDGE_MQTT_USERNAME"), *pw = getenv("SQUEEZEEDGE_MQTT_PASSWORD");
  if (cfg->username[0]) return 0; /* the config file (or a URL) already said who we are */
  if (pw && *pw && !(u && *u)) {
    set_err(err, err_cap, "%s is set but SQUEEZEEDGE_MQTT_USERNAME is not; set both", "SQUEEZEEDGE_MQTT_PASSWORD");
    return -1;
  }
  if (u && *u) snprintf(cfg->username, sizeof cfg->username, "%s", u);
  if (pw && *pw) snprintf(cfg->password, sizeof cfg->password, "%s", pw);
  return 0;
}

/* ---- the MQTT device ---- */

typedef struct {
  se_protocol_t *proto;
  const se_mqtt_config_t *cfg;
  const char *fw_version, *model_name;
  char t_cmd[SE_MQTT_TOPIC_CAP], t_result[SE_MQTT_TOPIC_CAP], t_status[SE_MQTT_TOPIC_CAP], t_discovery[SE_MQTT_TOPIC_CAP];
  char discovery[2048];
  int discovery_len;
  char *resp;
  int32_t resp_len, resp_cap;
  int ready_printed;
  volatile int connected;
  volatile int offline_mid, offline_done;
} mqtt_ctx_t;

static void collect(void *c, const uint8_t *data, int32_t len) {
  mqtt_ctx_t *x = (mqtt_ctx_t *)c;
  if (x->resp_len + len > x->resp_cap) len = x->resp_cap - x->resp_len;
  memcpy(x->resp + x->resp_len, data, (size_t)len);
  x->resp_len += len;
}

/* The retained discovery payload (se_mqtt_topics.h); 0, or -1 when it does not fit. */
static int build_discovery(mqtt_ctx_t *x) {
  /* the device id is validated ([A-Za-z0-9_-]) and model and version are constants: no JSON escaping needed */
  int n = snprintf(x->discovery, sizeof x->discovery, SE_MQTT_DISCOVERY,
                   SE_MQTT_DISCOVERY_ARGS(x->cfg->device, x->t_result, x->t_status, x->model_name, x->fw_version));
  if (n < 0 || n >= (int)sizeof x->discovery) return -1;
  x->discovery_len = n;
  return 0;
}

/* One sentence for a failed TLS connection, from what libmosquitto logs: a failed handshake is
 * reported only there, without a disconnect callback. A host-name mismatch is logged by
 * libmosquitto itself just before OpenSSL's generic "certificate verify failed". */
#define SE_TLS_WRONG_NAME "TLS refused: the broker's certificate is not valid for this host name; connect by a name " \
                          "it lists (or, on a network you trust, --tls-insecure-no-hostname-check)"
#define SE_TLS_WRONG_CA "TLS refused: the broker's certificate is not signed by a trusted CA; pass --cafile with " \
                        "the CA certificate that signed it"
#define SE_TLS_PLAIN_PORT "TLS handshake failed: the broker hung up; is this a plain MQTT port? (then use mqtt://)"

static void on_log(struct mosquitto *m, void *c, int level, const char *text) {
  static const char *last_said;
  static int wrong_name;
  mqtt_ctx_t *x = (mqtt_ctx_t *)c;
  const char *said = NULL;
  (void)m;
  if (level != MOSQ_LOG_ERR) return;
  if (strstr(text, "host name verification failed")) { wrong_name = 1; return; }
  if (!strstr(text, "OpenSSL")) return;
  if (strstr(text, "certificate verify failed")) said = wrong_name ? SE_TLS_WRONG_NAME : SE_TLS_WRONG_CA;
  else if (strstr(text, "wrong version number") || strstr(text, "packet length too long") || strstr(text, "unexpected eof"))
    said = SE_TLS_PLAIN_PORT;
  wrong_name = 0;
  if (said == last_said && said) return; /* the same failure at every retry: say it once */
  last_said = said;
  if (said) fprintf(stderr, "se_emulator: mqtt: %s:%d: %s; retrying\n", x->cfg->host, x->cfg->port, said);
  else fprintf(stderr, "se_emulator: mqtt: %s:%d: TLS handshake failed (%s); retrying\n", x->cfg->host, x->cfg->port, text);
}

static void on_connect(struct mosquitto *m, void *c, int rc) {
  mqtt_ctx_t *x = (mqtt_ctx_t *)c;
  if (rc != 0) {
    fprintf(stderr, "se_emulator: mqtt: %s:%d refused the connection: %s; retrying\n", x->cfg->host, x->cfg->port,
            mosquitto_connack_string(rc));
    return;
  }
  x->connected = 1;
  mosquitto_subscribe(m, NULL, x->t_cmd, 1);
  mosquitto_publish(m, NULL, x->t_status, (int)strlen(SE_MQTT_ONLINE), SE_MQTT_ONLINE, 1, true);
  mosquitto_publish(m, NULL, x->t_discovery, x->discovery_len, x->discovery, 1, true);
  if (x->ready_printed) fprintf(stderr, "se_emulator: mqtt: reconnected to %s:%d\n", x->cfg->host, x->cfg->port);
}

static void on_subscribe(struct mosquitto *m, void *c, int mid, int qos_count, const int *granted) {
  mqtt_ctx_t *x = (mqtt_ctx_t *)c;
  (void)m; (void)mid;
  if (qos_count < 1 || granted[0] > 2) {
    fprintf(stderr, "se_emulator: mqtt: the broker refused the subscription to %s\n", x->t_cmd);
    return;
  }
  if (!x->ready_printed) { /* requests published from now on reach us */
    x->ready_printed = 1;
    fprintf(stderr, "SE_READY mqtt %s:%d %s\n", x->cfg->host, x->cfg->port, x->cfg->device);
  }
}

static void on_disconnect(struct mosquitto *m, void *c, int rc) {
  mqtt_ctx_t *x = (mqtt_ctx_t *)c;
  (void)m;
  if (rc != 0 && !x->connected && !x->cfg->tls)
    fprintf(stderr, "se_emulator: mqtt: %s:%d closed the connection without answering: if it is a TLS port, use "
                    "mqtts:// (and --cafile); retrying\n", x->cfg->host, x->cfg->port);
  else if (rc != 0) fprintf(stderr, "se_emulator: mqtt: lost the connection to %s:%d; reconnecting\n", x->cfg->host, x->cfg->port);
  x->connected = 0;
}

static pthread_mutex_t offline_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_publish(struct mosquitto *m, void *c, int mid) {
  mqtt_ctx_t *x = (mqtt_ctx_t *)c;
  (void)m;
  pthread_mutex_lock(&offline_lock);
  if (mid == x->offline_mid) x->offline_done = 1;
  pthread_mutex_unlock(&offline_lock);
}

static void on_message(struct mosquitto *m, void *c, const struct mosquitto_message *msg) {
  mqtt_ctx_t *x = (mqtt_ctx_t *)c;
  se_protocol_t *p = x->proto;
  const uint8_t *data = (const uint8_t *)msg->payload;
  int32_t len = msg->payloadlen;
  /* A retained request is one published earlier that the broker hands to every new subscription:
   * running it again at each reconnect would repeat an old command. (One published while we are
   * subscribed arrives with the retain flag cleared, and runs once.) */
  if (strcmp(msg->topic, x->t_cmd) != 0 || msg->retain) return;
  p->stats.bytes_in += (uint64_t)len;
  /* a payload is one request line; a trailing "\n" or "\r\n" is allowed */
  if (len > 0 && data[len - 1] == '\n') --len;
  if (len > 0 && data[len - 1] == '\r') --len;
  x->resp_len = 0;
  if (len > p->line_cap) se_protocol_handle_line(p, data, p->line_cap, len, 1);
  else se_protocol_handle_line(p, data, len, len, 0);
  if (x->resp_len > 0 && x->resp[x->resp_len - 1] == '\n') --x->resp_len;
  if (x->resp_len > 0) mosquitto_publish(m, NULL, x->t_result, x->resp_len, x->resp, 1, false);
}

int se_mqtt_run(se_protocol_t *proto, const se_mqtt_config_t *cfg, volatile sig_atomic_t *stop,
                const char *firmware_version, const char *model_name) {
  static mqtt_ctx_t x;
  char client_id[SE_MQTT_TOPIC_CAP];
  struct mosquitto *m;
  sigset_t block, old;
  int rc, waited;
  memset(&x, 0, sizeof x);
  x.proto = proto;
  x.cfg = cfg;
  x.fw_version = firmware_version;
  x.model_name = model_name;
  x.offline_mid = -1;
  /* the device id is validated (1..SE_MQTT_DEVICE_MAX), so every topic fits SE_MQTT_TOPIC_CAP */
  snprintf(x.t_cmd, sizeof x.t_cmd, SE_MQTT_TOPIC_CMD, SE_MQTT_TOPIC_CMD_ARGS(SE_MQTT_PREFIX, cfg->device));
  snprintf(x.t_result, sizeof x.t_result, SE_MQTT_TOPIC_RESULT, SE_MQTT_TOPIC_RESULT_ARGS(SE_MQTT_PREFIX, cfg->device));
  snprintf(x.t_status, sizeof x.t_status, SE_MQTT_TOPIC_STATUS, SE_MQTT_TOPIC_STATUS_ARGS(SE_MQTT_PREFIX, cfg->device));
  snprintf(x.t_discovery, sizeof x.t_discovery, SE_MQTT_TOPIC_DISCOVERY,
           SE_MQTT_TOPIC_DISCOVERY_ARGS(SE_MQTT_PREFIX, cfg->device));
  snprintf(client_id, sizeof client_id, SE_MQTT_CLIENT_ID, SE_MQTT_CLIENT_ID_ARGS(SE_MQTT_PREFIX, cfg->device));
  if (build_discovery(&x) < 0) {
    fprintf(stderr, "se_emulator: mqtt: the discovery payload does not fit its buffer\n");
    return 1;
  }
  x.resp_cap = proto->out_cap;
  x.resp = malloc((size_t)x.resp_cap);
  if (!x.resp) { fprintf(stderr, "se_emulator: out of memory\n"); return 1; }
  proto->write = collect;
  proto->write_ctx = &x;

  mosquitto_lib_init();
  m = mosquitto_new(client_id, false, &x); /* persistent session: queued QoS 1 requests survive */
  if (!m) { fprintf(stderr, "se_emulator: mqtt: cannot create the client: %s\n", strerror(errno)); return 1; }
  if (cfg->username[0] && mosquitto_username_pw_set(m, cfg->username, cfg->password[0] ? cfg->password : NULL) != MOSQ_ERR_SUCCESS) {
    fprintf(stderr, "se_emulator: mqtt: bad user name or password\n");
    return 1;
  }
  if (cfg->tls) {
    /* verify the broker: against cafile, else the system's CAs; its host name unless told not to */
    if (cfg->cafile[0]) rc = mosquitto_tls_set(m, cfg->cafile, NULL, cfg->certfile[0] ? cfg->certfile : NULL,
                                               cfg->keyfile[0] ? cfg->keyfile : (cfg->certfile[0] ? cfg->certfile : NULL), NULL);
    else {
      rc = mosquitto_int_option(m, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
      if (rc == MOSQ_ERR_SUCCESS && cfg->certfile[0])
        rc = mosquitto_tls_set(m, NULL, "/etc/ssl/certs", cfg->certfile, cfg->keyfile[0] ? cfg->keyfile : cfg->certfile, NULL);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
      fprintf(stderr, "se_emulator: mqtt: TLS setup failed (%s): check --cafile, --certfile and --keyfile\n",
              rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
      return 1;
    }
    mosquitto_tls_insecure_set(m, cfg->tls_insecure ? true : false);
    if (cfg->tls_insecure)
      fprintf(stderr, "se_emulator: WARNING: --tls-insecure-no-hostname-check: the broker's certificate is NOT checked "
                      "against the host name %s; any server with a certificate from that CA can pose as the broker\n",
              cfg->host);
  }
  mosquitto_log_callback_set(m, on_log);
  mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1); /* small answers: no Nagle delay */
  mosquitto_will_set(m, x.t_status, (int)strlen(SE_MQTT_OFFLINE), SE_MQTT_OFFLINE, 1, true);
  mosquitto_reconnect_delay_set(m, SE_MQTT_BACKOFF_MIN, SE_MQTT_BACKOFF_MAX, true);
  mosquitto_connect_callback_set(m, on_connect);
  mosquitto_disconnect_callback_set(m, on_disconnect);
  mosquitto_subscribe_callback_set(m, on_subscribe);
  mosquitto_publish_callback_set(m, on_publish);
  mosquitto_message_callback_set(m, on_message);

  rc = mosquitto_connect_async(m, cfg->host, cfg->port, SE_MQTT_KEEPALIVE);
  if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_TLS) /* TLS: on_log has said why */
    fprintf(stderr, "se_emulator: mqtt: cannot reach %s:%d (%s); retrying with backoff\n", cfg->host, cfg->port,
            rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
  /* the network thread must not take SIGINT/SIGTERM: the main thread sees them and stops it */
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  rc = mosquitto_loop_start(m);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "se_emulator: mqtt: %s\n", mosquitto_strerror(rc)); return 1; }

  while (!*stop) usleep(100000);

  /* a clean stop: say "offline" ourselves (the will is only for a connection that breaks) */
  if (x.connected) {
    int mid = -1;
    pthread_mutex_lock(&offline_lock);
    rc = mosquitto_publish(m, &mid, x.t_status, (int)strlen(SE_MQTT_OFFLINE), SE_MQTT_OFFLINE, 1, true);
    x.offline_mid = mid;
    pthread_mutex_unlock(&offline_lock);
    if (rc == MOSQ_ERR_SUCCESS) {
      for (waited = 0; !x.offline_done && waited < 2000 && x.connected; waited += 20) usleep(20000);
    }
  }
  mosquitto_disconnect(m);
  mosquitto_loop_stop(m, false);
  mosquitto_destroy(m);
  mosquitto_lib_cleanup();
  free(x.resp);
  return 0;
}
