# SqueezeEdge on MicroPython: a voice-command device on MQTT, answering like the C firmware.
#
# Copy to the board, next to squeezeedge.mpy and squeezeedge.bin (or on a firmware with the
# squeezeedge user C module):  main.py  config.json  names.json (optional)
#
#   squeezeedge/<device>/cmd     requests (QoS 1): plain text, {"id": .., "text": ..}, /info,
#                                {"cmd": "names_add", "kind": .., "text": ..}, ...
#   squeezeedge/<device>/result  one JSON answer per request (QoS 1), as firmware/PROTOCOL.md
#   squeezeedge/<device>/status  retained "online"; "offline" on Ctrl-C and as the last will
#   homeassistant/sensor/squeezeedge_<device>/intent/config   Home Assistant discovery (retained)
#
# config.json keys: device (required: 1..64 of A-Z a-z 0-9 _ -), broker (host, default
# "127.0.0.1"), port (1883; 8883 with tls), username, password, wifi_ssid, wifi_password (only
# where network.WLAN exists), names (the names file, default "names.json"), keepalive (15 s),
# tls (true: TLS where the port has the ssl module), cafile (the CA that signed the broker's
# certificate, PEM or DER; required with tls), certfile and keyfile (a client certificate).
# See README.md next to this file.

import json
import socket
import struct
import sys
import time

import squeezeedge as se
from umqtt.simple import MQTTClient, MQTTException

try:
    import select
except ImportError:
    import uselect as select

VERSION = se.info()["version"]  # the firmware version the module reports, as /version does
BACKOFF_MIN, BACKOFF_MAX = 1, 30   # seconds between reconnects: doubles, as the C firmware
CONFIG_KEYS = ("device", "broker", "port", "username", "password", "wifi_ssid", "wifi_password",
               "names", "keepalive", "tls", "cafile", "certfile", "keyfile")


# ---- settings ----

def load_config(path="config.json"):
    try:
        with open(path) as f:
            cfg = json.load(f)
    except OSError:
        raise SystemExit("no %s: write one with at least {\"device\": \"kitchen\", \"broker\": \"HOST\"}" % path)
    except ValueError:
        raise SystemExit("%s is not valid JSON" % path)
    for key in cfg:
        if key not in CONFIG_KEYS:
            raise SystemExit("unknown key %r in %s (use %s)" % (key, path, ", ".join(CONFIG_KEYS)))
    device = cfg.get("device", "")
    if not (0 < len(device) <= 64 and all(c.isalpha() or c.isdigit() or c in "_-" for c in device)
            and all(ord(c) < 128 for c in device)):
        raise SystemExit("config: device must be 1..64 characters of A-Z a-z 0-9 _ -")
    cfg.setdefault("broker", "127.0.0.1")
    cfg.setdefault("port", 8883 if cfg.get("tls") else 1883)
    cfg.setdefault("keepalive", 15)
    return cfg


def topics(device):
    return {"cmd": "squeezeedge/%s/cmd" % device, "result": "squeezeedge/%s/result" % device,
            "status": "squeezeedge/%s/status" % device,
            "discovery": "homeassistant/sensor/squeezeedge_%s/intent/config" % device}


def model_name():
    return "SqueezeEdge MicroPython " + sys.platform


def discovery_config(device, t):
    """Byte for byte what the C firmware publishes (firmware/ports/host/mqtt.c)."""
    d = device
    return ('{"name":"Intent","unique_id":"squeezeedge_%s_intent","object_id":"squeezeedge_%s_intent",'
            '"state_topic":"%s","value_template":"{{ value_json.intent }}",'
            '"json_attributes_topic":"%s","availability_topic":"%s",'
            '"payload_available":"online","payload_not_available":"offline",'
            '"icon":"mdi:microphone-message",'
            '"device":{"identifiers":["squeezeedge_%s"],"name":"SqueezeEdge %s",'
            '"manufacturer":"SqueezeEdge","model":"%s","sw_version":"%s"}}'
            % (d, d, t["result"], t["result"], t["status"], d, d, model_name(), VERSION))


# ---- Wi-Fi (boards with network.WLAN; the unix port uses the host's network) ----

def wifi_connect(cfg, timeout_s=30):
    try:
        import network
    except ImportError:
        return
    if not hasattr(network, "WLAN") or not cfg.get("wifi_ssid"):
        return
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        print("wifi: connecting to", cfg["wifi_ssid"])
        wlan.connect(cfg["wifi_ssid"], cfg.get("wifi_password", ""))
        start = time.ticks_ms()
        while not wlan.isconnected():
            if time.ticks_diff(time.ticks_ms(), start) > timeout_s * 1000:
                raise OSError("wifi: no connection to %s within %d s" % (cfg["wifi_ssid"], timeout_s))
            time.sleep_ms(200)
    print("wifi: connected,", wlan.ifconfig()[0])


# ---- the home's names ----

def name_entries(path):
    """(kind, name) pairs of a names file ({"area": [...], "floor": [...], "name": {"light": [...]}},
    as `squeezeedge names example` writes), in the file's order: the first of two equal names wins."""
    with open(path) as f:
        raw = f.read()
    home = json.loads(raw)
    names = home.get("name", {})
    if isinstance(names, list):
        names = {"": names}
    entries = [("area", n) for n in home.get("area", [])] + [("floor", n) for n in home.get("floor", [])]
    # MicroPython's dict does not keep the file's order of the domains: find it in the text
    for domain in sorted(names, key=lambda d: raw.find('"%s"' % d)):
        kind = "name" if domain in ("", "name") else "name:" + domain
        entries += [(kind, n) for n in names[domain]]
    for kind, n in entries:
        if not isinstance(n, str):
            raise TypeError(kind)
    return entries


def load_names(path):
    try:
        entries = name_entries(path)
    except OSError:
        print("names: no %s, running without the home's names" % path)
        return
    except (ValueError, AttributeError, TypeError):
        raise SystemExit("names: %s must be {\"area\": [...], \"floor\": [...], \"name\": {\"light\": [...]}}" % path)
    se.names_clear()
    for kind, name in entries:
        try:
            se.names_add(kind, name)
        except (ValueError, RuntimeError) as e:
            print("names: %s %r refused: %s" % (kind, name, e))
    print("names: %d from %s" % (se.names(), path))


# ---- the request handler ----

def handle(payload):
    """One MQTT request payload → its JSON answer (bytes). squeezeedge.handle runs the C
    firmware's own line protocol (firmware/core/se_protocol.c): the same answers, the same
    errors, the same /info, /stats and names commands as every C device."""
    try:
        return se.handle(payload)
    except Exception as e:  # a request must never stop the device
        return json.dumps({"error": "%s: %s" % (type(e).__name__, e), "code": "internal"}).encode()


# ---- MQTT ----

class Client(MQTTClient):
    """umqtt.simple's client with three changes for a device that answers requests: the callback
    also gets the retain flag (a retained request must not run again at every reconnect); a
    publish goes out in one write, on a socket without Nagle's delay (small answers, fast); and
    packet ids wrap at 65535."""

    def nodelay(self):
        try:  # IPPROTO_TCP, TCP_NODELAY: the same numbers on Linux and lwIP; not every port has them
            self.sock.setsockopt(getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "TCP_NODELAY", 1), 1)
        except (OSError, AttributeError):
            pass

    def publish(self, topic, msg, retain=False, qos=0):
        topic = topic.encode() if isinstance(topic, str) else topic
        body = struct.pack("!H", len(topic)) + topic
        if qos:
            self.pid = self.pid % 65535 + 1
            pid = struct.pack("!H", self.pid)
            body += pid
        body += msg
        head, n = bytearray([0x30 | qos << 1 | retain]), len(body)
        while True:  # the remaining length, 7 bits a byte
            head.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                break
        self.sock.write(head + body)
        while qos == 1:  # wait for this message's PUBACK; requests arriving meanwhile are queued
            if self.wait_msg() == 0x40 and self.sock.read(3)[1:] == pid:
                return

    def wait_msg(self):
        res = self.sock.read(1)
        self.sock.setblocking(True)
        if res is None:
            return None
        if res == b"":
            raise OSError(-1)
        if res == b"\xd0":  # PINGRESP
            self.sock.read(1)
            return None
        op = res[0]
        if op & 0xF0 != 0x30:
            return op
        sz = self._recv_len()
        topic_len = self.sock.read(2)
        topic_len = (topic_len[0] << 8) | topic_len[1]
        topic = self.sock.read(topic_len)
        sz -= topic_len + 2
        if op & 6:
            pid = self.sock.read(2)
            sz -= 2
        msg = self.sock.read(sz) if sz else b""
        self.cb(topic, msg, op & 1)
        if op & 6 == 2:
            self.sock.write(b"\x40\x02" + pid)  # PUBACK
        return op


def tls_context(cfg):
    """An ssl.SSLContext that verifies the broker against cfg["cafile"] and its host name (umqtt
    passes server_hostname=broker to wrap_socket), or None without "tls"."""
    if not cfg.get("tls"):
        return None
    try:
        import ssl
    except ImportError:
        raise SystemExit("config: tls needs the ssl module, which this MicroPython port lacks")
    if not cfg.get("cafile"):
        raise SystemExit("config: tls needs cafile, the CA that signed the broker's certificate")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    with open(cfg["cafile"], "rb") as f:
        ctx.load_verify_locations(cadata=f.read())
    if cfg.get("certfile"):
        ctx.load_cert_chain(cfg["certfile"], cfg.get("keyfile") or cfg["certfile"])
    return ctx


def connect(cfg, t, inbox):
    """Connect (persistent session, last will "offline"), subscribe, say online, announce."""
    client = Client("squeezeedge-" + cfg["device"], cfg["broker"], cfg["port"], cfg.get("username"),
                    cfg.get("password") or "", keepalive=cfg["keepalive"], ssl=tls_context(cfg))
    cmd = t["cmd"].encode()

    def on_message(topic, msg, retained):
        # the handler only queues: answering inside the callback would nest QoS 1 handshakes
        if topic == cmd and not retained:
            inbox.append(msg)

    client.set_callback(on_message)
    client.set_last_will(t["status"], "offline", retain=True, qos=1)
    client.connect(clean_session=False, timeout=10)  # queued QoS 1 requests survive a reconnect
    client.sock.settimeout(None)
    client.nodelay()
    client.subscribe(t["cmd"], qos=1)
    client.publish(t["status"], b"online", retain=True, qos=1)
    client.publish(t["discovery"], discovery_config(cfg["device"], t).encode(), retain=True, qos=1)
    return client


def serve(client, cfg, t, inbox):
    """Answer requests until the connection breaks (OSError)."""
    poller = select.poll()
    poller.register(client.sock, select.POLLIN)
    keepalive_ms = cfg["keepalive"] * 1000
    last_in = last_ping = time.ticks_ms()
    while True:
        while inbox:
            payload = inbox.pop(0)
            client.publish(t["result"], handle(payload), qos=1)
        if poller.poll(min(1000, keepalive_ms // 2)):
            client.wait_msg()
            last_in = time.ticks_ms()
        now = time.ticks_ms()
        if time.ticks_diff(now, last_ping) >= keepalive_ms // 2:
            client.ping()
            last_ping = now
        if time.ticks_diff(now, last_in) > 2 * keepalive_ms:
            raise OSError("the broker stopped answering")


def why(e):
    if isinstance(e, MQTTException):
        return "the broker refused the connection (CONNACK %s; 4: bad user name or password, 5: not authorized)" % e
    if isinstance(e, OSError) and e.args and e.args[0] == -1:
        return "the broker closed the connection"
    return repr(e)


def main():
    cfg = load_config()
    wifi_connect(cfg)
    load_names(cfg.get("names", "names.json"))
    t = topics(cfg["device"])
    where = "%s:%d" % (cfg["broker"], cfg["port"])
    inbox = []
    backoff = BACKOFF_MIN
    client = None
    try:
        while True:
            try:
                client = connect(cfg, t, inbox)
                print("ready: answering %s on %s" % (t["cmd"], where))
                backoff = BACKOFF_MIN
                serve(client, cfg, t, inbox)
            except (OSError, MQTTException, IndexError, AssertionError) as e:  # umqtt: a broken or refused link
                print("mqtt: %s: %s; reconnecting in %d s" % (where, why(e), backoff))
                if client is not None and client.sock is not None:
                    client.sock.close()
                client = None
                time.sleep(backoff)
                backoff = min(2 * backoff, BACKOFF_MAX)
    except KeyboardInterrupt:  # a clean stop: say "offline" ourselves (the will is for a broken link)
        if client is not None:
            try:
                client.publish(t["status"], b"offline", retain=True, qos=1)
                client.disconnect()
            except OSError:
                pass
        print("stopped")


if __name__ == "__main__":
    main()
