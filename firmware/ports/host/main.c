/* SqueezeEdge host emulator: the firmware core and the generated model package, serving the
 * line protocol (firmware/PROTOCOL.md) on stdin/stdout, a TCP socket or a pseudo-terminal.
 *
 *   se_emulator [--init FILE] --stdio | --tcp PORT [--host ADDR] [--idle-timeout SECONDS] | --pty
 *   se_emulator [--init FILE] --broker mqtt[s]://host[:port] --device ID [--config FILE]
 *               [--cafile FILE] [--certfile FILE] [--keyfile FILE] [--tls-insecure-no-hostname-check]   (MQTT=1 builds)
 *
 * --tcp serves up to 64 clients at once; one with no traffic for --idle-timeout seconds (default
 * 120; 0: never) is closed.
 * When it is ready it prints one line on stderr: "SE_READY stdio", "SE_READY tcp HOST:PORT",
 * "SE_READY pty /dev/pts/N" or "SE_READY mqtt HOST:PORT DEVICE". SIGINT/SIGTERM stop it.
 * --config FILE holds key=value lines (broker, device, username, password, cafile, certfile,
 * keyfile, tls_insecure_no_hostname_check); options given on the command line win over the file.
 * Credentials come from that file (mode 0600) or from SQUEEZEEDGE_MQTT_USERNAME/PASSWORD, never
 * from argv, where `ps` shows them to every user (a URL user:pass@ still works, with a warning).
 * --init FILE: each line of FILE is handled as if received before serving (the host tools send the
 * home's names this way: {"cmd":"names_add",...} lines). Its answers are dropped, except that an
 * error answer is printed on stderr and the emulator exits with status 2 before SE_READY. */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef SE_LINE_MAX
#define SE_LINE_MAX 4096
#endif
#define SE_OUT_MAX (8 * SE_LINE_MAX)
#define SE_FIRMWARE_VERSION "0.1.0"

#include "se_device.h"
#ifdef SE_WITH_MQTT
#include "mqtt.h"
#endif

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static uint32_t clock_us(void *ctx) {
  struct timespec ts;
  (void)ctx;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint32_t)((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}

/* Write everything, waiting at most ~2 s for a peer that does not read; then drop the rest. */
static void write_fd(void *ctx, const uint8_t *data, int32_t len) {
  int fd = *(int *)ctx;
  int waited = 0;
  while (len > 0) {
    ssize_t n = write(fd, data, (size_t)len);
    if (n > 0) { data += n; len -= (int32_t)n; continue; }
    if (n < 0 && errno == EINTR) { if (stop_requested) return; continue; }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd pfd;
      pfd.fd = fd; pfd.events = POLLOUT; pfd.revents = 0;
      if (waited >= 2000) return;
      poll(&pfd, 1, 100);
      waited += 100;
      continue;
    }
    return; /* EPIPE, ECONNRESET, ...: the peer is gone */
  }
}

static int out_fd = 1;
static se_device_t dev;

static void setup(void) {
  if (se_device_init(&dev, "host-emulator", SE_FIRMWARE_VERSION, write_fd, &out_fd, clock_us) != SE_STATUS_OK) {
    fprintf(stderr, "se_emulator: protocol init failed\n");
    exit(2);
  }
}

/* Serve one connection/stream until EOF or error. Returns 1 on EOF, 0 on error. */
static int serve(int in_fd, int eof_flushes) {
  uint8_t buf[1024];
  for (;;) {
    ssize_t n;
    if (stop_requested) return 0;
    n = read(in_fd, buf, sizeof buf);
    if (n > 0) { se_protocol_feed(&dev.proto, buf, (int32_t)n); continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      struct pollfd pfd;
      pfd.fd = in_fd; pfd.events = POLLIN; pfd.revents = 0;
      poll(&pfd, 1, 200);
      continue;
    }
    if (n == 0 && eof_flushes) se_protocol_flush(&dev.proto);
    else se_protocol_reset_line(&dev.proto);
    return n == 0;
  }
}

static int run_stdio(void) {
  out_fd = 1;
  fprintf(stderr, "SE_READY stdio\n");
  serve(0, 1);
  return 0;
}

/* ---- TCP: many clients at once ----
 * One poll loop serves every client: each has its own partial line (se_line_t) and its own
 * answer buffer, so an idle client, a slow reader or one that leaves mid-line delays nobody else.
 * A client's bytes are handed to the protocol one line at a time and only while its answer buffer
 * has room for a whole answer; a client that stops reading therefore stops being read (TCP flow
 * control pushes back on it) instead of stalling the device. A client with no traffic either way
 * for idle_timeout_ms is closed, so forgotten connections cannot hold every slot. */
#ifndef SE_TCP_CLIENTS
#define SE_TCP_CLIENTS 64
#endif
#define SE_TCP_BACKLOG 128
#define SE_TCP_OUT (2 * SE_OUT_MAX) /* pending answers + room for the next whole answer */
#define SE_TCP_READ 1024

typedef struct {
  int fd; /* -1: a free slot */
  int eof; /* the client closed its side: finish its pending lines and answers, then close */
  se_line_t line;
  uint8_t line_buf[SE_LINE_MAX];
  uint8_t in[SE_TCP_READ];
  int32_t in_off, in_len; /* read from the socket, not yet handed to the protocol */
  uint8_t out[SE_TCP_OUT];
  int32_t out_off, out_len;
  int64_t active_ms;
} tcp_client_t;

static tcp_client_t tcp_clients[SE_TCP_CLIENTS];
static int64_t idle_timeout_ms = 120000;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The protocol's write callback for a TCP client: queue the answer (the caller made room). */
static void tcp_queue(void *ctx, const uint8_t *data, int32_t len) {
  tcp_client_t *c = (tcp_client_t *)ctx;
  if (c->out_off > 0) {
    memmove(c->out, c->out + c->out_off, (size_t)c->out_len);
    c->out_off = 0;
  }
  if (len > SE_TCP_OUT - c->out_len) return; /* cannot happen: tcp_feed leaves room for a whole answer */
  memcpy(c->out + c->out_len, data, (size_t)len);
  c->out_len += len;
}

static void tcp_close(tcp_client_t *c) {
  close(c->fd);
  c->fd = -1;
}

/* Send what the socket takes now; 0 when the peer is gone. */
static int tcp_flush(tcp_client_t *c, int64_t now) {
  while (c->out_len > 0) {
    ssize_t n = send(c->fd, c->out + c->out_off, (size_t)c->out_len, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_off += (int32_t)n;
      c->out_len -= (int32_t)n;
      c->active_ms = now;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  c->out_off = 0;
  return 1;
}

/* Hand read bytes to the protocol, a line at a time, while a whole answer still fits. */
static void tcp_feed(tcp_client_t *c) {
  dev.proto.write_ctx = c;
  while (c->in_off < c->in_len && SE_TCP_OUT - c->out_len >= SE_OUT_MAX)
    c->in_off += se_protocol_feed_line(&dev.proto, &c->line, c->in + c->in_off, c->in_len - c->in_off);
  if (c->in_off == c->in_len) c->in_off = c->in_len = 0;
}

/* Read what the client sent; 0 when it is gone for good (error), 1 otherwise (EOF sets c->eof). */
static int tcp_read(tcp_client_t *c, int64_t now) {
  ssize_t n = recv(c->fd, c->in, sizeof c->in, 0);
  if (n > 0) {
    c->in_off = 0;
    c->in_len = (int32_t)n;
    c->active_ms = now;
    return 1;
  }
  if (n == 0) {
    c->eof = 1; /* a line cut off by the disconnect is not answered (PROTOCOL.md) */
    se_line_reset(&c->line);
    return 1;
  }
  return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
}

static void tcp_accept(int s, int64_t now) {
  int one = 1, i;
  for (i = 0; i < SE_TCP_CLIENTS; ++i) {
    tcp_client_t *c = &tcp_clients[i];
    int fd;
    if (c->fd >= 0) continue;
    fd = accept(s, NULL, NULL);
    if (fd < 0) return; /* EAGAIN: nobody else waiting */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    c->fd = fd;
    c->eof = 0;
    se_line_init(&c->line, c->line_buf, SE_LINE_MAX);
    c->in_off = c->in_len = c->out_off = c->out_len = 0;
    c->active_ms = now;
  }
}

static int run_tcp(const char *host, int port) {
  static struct pollfd pfd[SE_TCP_CLIENTS + 1];
  static int slot[SE_TCP_CLIENTS + 1];
  struct sockaddr_in addr;
  socklen_t alen = sizeof addr;
  int one = 1, i;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) { perror("se_emulator: socket"); return 1; }
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) { fprintf(stderr, "se_emulator: bad address %s\n", host); return 1; }
  if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
    fprintf(stderr, "se_emulator: cannot listen on %s:%d: %s\n", host, port, strerror(errno));
    return 1;
  }
  if (listen(s, SE_TCP_BACKLOG) < 0 || getsockname(s, (struct sockaddr *)&addr, &alen) < 0) {
    perror("se_emulator: listen");
    return 1;
  }
  fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
  for (i = 0; i < SE_TCP_CLIENTS; ++i) tcp_clients[i].fd = -1;
  dev.proto.write = tcp_queue;
  fprintf(stderr, "SE_READY tcp %s:%d\n", host, ntohs(addr.sin_port));
  while (!stop_requested) {
    int n = 0, k, free_slots = 0;
    int64_t now;
    for (i = 0; i < SE_TCP_CLIENTS; ++i) {
      tcp_client_t *c = &tcp_clients[i];
      short ev = 0;
      if (c->fd < 0) { free_slots++; continue; }
      if (!c->eof && c->in_len == 0) ev |= POLLIN;
      if (c->out_len > 0) ev |= POLLOUT;
      pfd[n].fd = c->fd; pfd[n].events = ev; pfd[n].revents = 0; slot[n++] = i;
    }
    if (free_slots) { pfd[n].fd = s; pfd[n].events = POLLIN; pfd[n].revents = 0; slot[n++] = -1; }
    if (poll(pfd, (nfds_t)n, 200) < 0 && errno != EINTR) { perror("se_emulator: poll"); return 1; }
    now = now_ms();
    for (k = 0; k < n; ++k) {
      tcp_client_t *c;
      if (slot[k] < 0) {
        if (pfd[k].revents & POLLIN) tcp_accept(s, now);
        continue;
      }
      c = &tcp_clients[slot[k]];
      if ((pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) && !c->eof && c->in_len == 0 && !tcp_read(c, now)) {
        tcp_close(c);
        continue;
      }
      tcp_feed(c);
      if (!tcp_flush(c, now)) { tcp_close(c); continue; }
      if (c->eof && c->in_len == 0 && c->out_len == 0) { tcp_close(c); continue; }
      if (idle_timeout_ms > 0 && now - c->active_ms > idle_timeout_ms) tcp_close(c);
    }
  }
  for (i = 0; i < SE_TCP_CLIENTS; ++i) if (tcp_clients[i].fd >= 0) tcp_close(&tcp_clients[i]);
  close(s);
  return 0;
}

static int run_pty(void) {
  struct termios t;
  int slave, m = posix_openpt(O_RDWR | O_NOCTTY);
  const char *name;
  if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || (name = ptsname(m)) == NULL) {
    perror("se_emulator: pty");
    return 1;
  }
  /* Keep the slave open ourselves: clients may come and go without the master seeing EIO. */
  slave = open(name, O_RDWR | O_NOCTTY);
  if (slave < 0 || tcgetattr(slave, &t) < 0) { perror("se_emulator: pty slave"); return 1; }
  cfmakeraw(&t);
  tcsetattr(slave, TCSANOW, &t);
  fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
  out_fd = m;
  fprintf(stderr, "SE_READY pty %s\n", name);
  while (!stop_requested) {
    if (serve(m, 0) == 0 && !stop_requested) {
      struct pollfd pfd;
      pfd.fd = m; pfd.events = POLLIN; pfd.revents = 0;
      poll(&pfd, 1, 100);
    }
  }
  close(slave);
  close(m);
  return 0;
}

/* --init: answers are checked, not sent. An error answer has the key "error" (an id string that
 * merely contains the word has its quotes escaped, so it cannot look like the key). */
static int init_failed = 0;
static void init_write(void *ctx, const uint8_t *data, int32_t len) {
  (void)ctx;
  if (init_failed) return;
  {
    int32_t i;
    for (i = 0; i + 8 <= len; ++i) {
      if (memcmp(data + i, "\"error\":", 8) == 0 && (i == 0 || data[i - 1] != '\\')) {
        init_failed = 1;
        fwrite(data, 1, (size_t)len, stderr);
        return;
      }
    }
  }
}

static int run_init(const char *path) {
  uint8_t buf[1024];
  size_t n;
  FILE *f = fopen(path, "rb");
  se_write_fn saved = dev.proto.write;
  if (!f) {
    fprintf(stderr, "se_emulator: cannot read --init file %s: %s\n", path, strerror(errno));
    return 0;
  }
  dev.proto.write = init_write;
  while (!init_failed && (n = fread(buf, 1, sizeof buf, f)) > 0) se_protocol_feed(&dev.proto, buf, (int32_t)n);
  if (!init_failed) se_protocol_flush(&dev.proto);
  fclose(f);
  se_protocol_reset_line(&dev.proto);
  dev.proto.write = saved;
  return !init_failed;
}

static void usage(void) {
  fprintf(stderr, "usage: se_emulator [--init FILE] --stdio | --tcp PORT [--host ADDR] [--idle-timeout SECONDS] | --pty\n"
                  "       se_emulator [--init FILE] --broker mqtt[s]://host[:port] --device ID [--config FILE]\n"
                  "                   [--cafile FILE] [--certfile FILE] [--keyfile FILE] [--tls-insecure-no-hostname-check]\n"
                  "MQTT: mqtts:// is TLS (port 8883 by default), verified against --cafile (default: the system's CAs)\n"
                  "and the broker's host name. The user name and password come from --config FILE (username = \"...\",\n"
                  "password = \"...\"; the file must be chmod 600) or from $SQUEEZEEDGE_MQTT_USERNAME and\n"
                  "$SQUEEZEEDGE_MQTT_PASSWORD; never put them on the command line (`ps` shows it to every user).\n");
}

int main(int argc, char **argv) {
  struct sigaction sa;
  const char *host = "127.0.0.1";
  const char *broker = NULL, *device = NULL, *config = NULL, *init = NULL;
  const char *cafile = NULL, *certfile = NULL, *keyfile = NULL;
  int i, mode = 0, port = 0, insecure = 0;
  for (i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--stdio") == 0) mode = 1;
    else if (strcmp(argv[i], "--tcp") == 0 && i + 1 < argc) { mode = 2; port = atoi(argv[++i]); }
    else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) host = argv[++i];
    else if (strcmp(argv[i], "--idle-timeout") == 0 && i + 1 < argc) idle_timeout_ms = (int64_t)(atof(argv[++i]) * 1000);
    else if (strcmp(argv[i], "--pty") == 0) mode = 3;
    else if (strcmp(argv[i], "--broker") == 0 && i + 1 < argc) { mode = 4; broker = argv[++i]; }
    else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) device = argv[++i];
    else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) { mode = 4; config = argv[++i]; }
    else if (strcmp(argv[i], "--init") == 0 && i + 1 < argc) init = argv[++i];
    else if (strcmp(argv[i], "--cafile") == 0 && i + 1 < argc) cafile = argv[++i];
    else if (strcmp(argv[i], "--certfile") == 0 && i + 1 < argc) certfile = argv[++i];
    else if (strcmp(argv[i], "--keyfile") == 0 && i + 1 < argc) keyfile = argv[++i];
    else if (strcmp(argv[i], "--tls-insecure-no-hostname-check") == 0) insecure = 1;
    else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) { usage(); return 0; }
    else { usage(); return 2; }
  }
#ifdef SE_WITH_MQTT
  static se_mqtt_config_t mcfg;
  if (mode == 4) {
    char err[256];
    memset(&mcfg, 0, sizeof mcfg);
    if (broker && se_mqtt_parse_url(broker, &mcfg, err, (int)sizeof err) < 0) { fprintf(stderr, "se_emulator: %s\n", err); return 2; }
    if (device) snprintf(mcfg.device, sizeof mcfg.device, "%s", device);
    if (cafile) snprintf(mcfg.cafile, sizeof mcfg.cafile, "%s", cafile);
    if (certfile) snprintf(mcfg.certfile, sizeof mcfg.certfile, "%s", certfile);
    if (keyfile) snprintf(mcfg.keyfile, sizeof mcfg.keyfile, "%s", keyfile);
    mcfg.tls_insecure = insecure;
    if (mcfg.url_had_password)
      fprintf(stderr, "se_emulator: warning: the --broker URL carries a password, which `ps` shows to every user; "
                      "put it in --config FILE (chmod 600) or $SQUEEZEEDGE_MQTT_PASSWORD\n");
    if (config && se_mqtt_read_config(config, &mcfg, err, (int)sizeof err) < 0) { fprintf(stderr, "se_emulator: %s\n", err); return 2; }
    if (se_mqtt_read_env(&mcfg, err, (int)sizeof err) < 0) { fprintf(stderr, "se_emulator: %s\n", err); return 2; }
    if (!mcfg.tls && (mcfg.cafile[0] || mcfg.certfile[0] || mcfg.keyfile[0] || mcfg.tls_insecure)) {
      fprintf(stderr, "se_emulator: TLS options need a TLS broker: use --broker mqtts://host[:port]\n");
      return 2;
    }
    if (!mcfg.have_broker) { fprintf(stderr, "se_emulator: no broker: pass --broker mqtt://host:port or broker= in --config\n"); return 2; }
    if (!se_mqtt_valid_device(mcfg.device)) {
      fprintf(stderr, "se_emulator: the device id must be 1..64 characters of A-Z a-z 0-9 _ - (pass --device ID)\n");
      return 2;
    }
  }
#else
  (void)broker; (void)config; (void)cafile; (void)certfile; (void)keyfile; (void)insecure;
  if (mode == 4 || device) {
    fprintf(stderr, "se_emulator: built without MQTT; rebuild with `make MQTT=1` (needs libmosquitto-dev)\n");
    return 2;
  }
#endif
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: blocking calls return EINTR */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  setup();
  if (init && !run_init(init)) return 2;
  switch (mode) {
    case 1: return run_stdio();
    case 2: return run_tcp(host, port);
    case 3: return run_pty();
#ifdef SE_WITH_MQTT
    case 4: return se_mqtt_run(&dev.proto, &mcfg, &stop_requested, SE_FIRMWARE_VERSION, "SqueezeEdge host emulator");
#endif
    default: usage(); return 2;
  }
}
