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
# "127.0.0.1"), port (1883), username, password, wifi_ssid, wifi_password (only where
# network.WLAN exists), names (the names file, default "names.json"), keepalive (15 s).
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

VERSION = "0.1.0"       # as SE_FIRMWARE_VERSION of the C firmware
PROTOCOL = 1
MAX_LINE = 4096         # the longest request line (the host emulator's)
MAX_TEXT = 512          # the longest command (the classify contract)
MAX_ID = 64
MAX_KIND = 40
BACKOFF_MIN, BACKOFF_MAX = 1, 30   # seconds between reconnects: doubles, as the C firmware
CONFIG_KEYS = ("device", "broker", "port", "username", "password", "wifi_ssid", "wifi_password",
               "names", "keepalive")


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
    cfg.setdefault("port", 1883)
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
        result = add_name(kind.encode(), name.encode())
        if isinstance(result, tuple):
            print("names: %s %r refused: %s" % (kind, name, result[1]))
    print("names: %d from %s" % (se.names(), path))


def add_name(kind, text):
    """names_add as the protocol does it: the count, or (code, message) of the refusal."""
    if len(kind) > MAX_KIND:
        return "unknown_kind", "unknown kind: use area, floor, name or name:<domain>"
    if utf8_error(text) is not None:
        return "bad_name", "name is not valid UTF-8"
    try:
        return se.names_add(kind, text)
    except ValueError as e:
        msg = str(e)
        if msg.startswith("unknown kind"):
            return "unknown_kind", msg
        if msg.startswith("this model was trained"):
            return "names_unsupported", msg
        return "bad_name", msg
    except RuntimeError as e:
        if not str(e).startswith("the names table is full"):
            return "internal", "adding the name failed"
        info = se.info()
        return "names_full", ("the names table is full (%d names, %d tokens): send names_clear first, then fewer "
                              "or shorter names" % (info["names_max"], info["names_tokens_max"]))


# ---- JSON: UTF-8 as Python's decode(errors="replace"), strings, numbers ----

def _utf8_seq(b, i):
    """(length of the valid UTF-8 sequence at b[i], or 0; bytes the bad one spans: its maximal subpart)."""
    c = b[i]
    if c < 0x80:
        return 1, 1
    if 0xC2 <= c <= 0xDF:
        need, lo, hi = 1, 0x80, 0xBF
    elif c == 0xE0:
        need, lo, hi = 2, 0xA0, 0xBF
    elif c == 0xED:
        need, lo, hi = 2, 0x80, 0x9F
    elif 0xE1 <= c <= 0xEF:
        need, lo, hi = 2, 0x80, 0xBF
    elif c == 0xF0:
        need, lo, hi = 3, 0x90, 0xBF
    elif 0xF1 <= c <= 0xF3:
        need, lo, hi = 3, 0x80, 0xBF
    elif c == 0xF4:
        need, lo, hi = 3, 0x80, 0x8F
    else:
        return 0, 1
    j = i + 1
    while j <= i + need and j < len(b) and lo <= b[j] <= hi:
        j += 1
        lo, hi = 0x80, 0xBF
    return (j - i, j - i) if j == i + need + 1 else (0, j - i)


def utf8_error(b):
    """Offset of the first byte that is not strict UTF-8, or None."""
    if not b or max(b) < 0x80:
        return None
    i = 0
    while i < len(b):
        ok, span = _utf8_seq(b, i)
        if not ok:
            return i
        i += span
    return None


def utf8_replace(b):
    """b as text; each ill-formed part becomes U+FFFD exactly as Python's errors="replace"."""
    if utf8_error(b) is None:
        return b.decode()
    out, i = [], 0
    while i < len(b):
        ok, span = _utf8_seq(b, i)
        out.append(b[i:i + span].decode() if ok else "\ufffd")
        i += span
    return "".join(out)


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def jstr(s):
    """A JSON string, escaped as the C firmware does (control bytes and U+2028/9 as \\u escapes)."""
    out = []
    for ch in s:
        e = _ESCAPES.get(ch)
        if e is None and (ch < " " or ch == "\x7f"):
            e = "\\u%04x" % ord(ch)
        out.append(e or ch)
    return '"' + "".join(out) + '"'


def q4(q):
    """q / 10000 with four decimals, as se_jw_q4: 0.9731, 1.0000."""
    return "%s%d.%04d" % ("-" if q < 0 else "", abs(q) // 10000, abs(q) % 10000)


# ---- the request parser (one flat JSON object; firmware/core/se_json.c, same refusals) ----

class BadJson(Exception):
    pass


_ESC = {34: 34, 92: 92, 47: 47, 98: 8, 102: 12, 110: 10, 114: 13, 116: 9}
_HEX = b"0123456789abcdefABCDEF"


def _ws(s, i):
    while i < len(s) and s[i] in b" \t\r\n":
        i += 1
    return i


def _hex4(s, i):
    if len(s) - i < 4 or any(c not in _HEX for c in s[i:i + 4]):
        return -1, i
    return int(s[i:i + 4], 16), i + 4


def _string(s, i):
    """The string at s[i] == '"' unescaped to bytes, and the index after it."""
    out = bytearray()
    i += 1
    while True:
        if i >= len(s):
            raise BadJson("unterminated string")
        b = s[i]
        i += 1
        if b == 34:
            return bytes(out), i
        if b < 0x20:
            raise BadJson("control byte in string")
        if b != 92:
            out.append(b)
            continue
        if i >= len(s):
            raise BadJson("unterminated string")
        e = s[i]
        i += 1
        if e in _ESC:
            out.append(_ESC[e])
            continue
        if e != 117:  # not \u
            raise BadJson("bad escape")
        cp, i = _hex4(s, i)
        if cp < 0:
            raise BadJson("bad \\u escape")
        if 0xD800 <= cp <= 0xDBFF:
            if len(s) - i < 6 or s[i:i + 2] != b"\\u":
                raise BadJson("lone surrogate")
            lo, i = _hex4(s, i + 2)
            if not 0xDC00 <= lo <= 0xDFFF:
                raise BadJson("lone surrogate")
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
        elif 0xDC00 <= cp <= 0xDFFF:
            raise BadJson("lone surrogate")
        out.extend(chr(cp).encode())


def _digits(s, i):
    j = i
    while j < len(s) and 48 <= s[j] <= 57:
        j += 1
    return j


def _scalar(s, i):
    """Skip one scalar (string, number, true, false, null); nested values are refused."""
    if i >= len(s):
        raise BadJson("missing value")
    b = s[i]
    if b == 34:
        return _string(s, i)[1]
    if b == 45 or 48 <= b <= 57:
        j = i + 1 if b == 45 else i
        k = j + 1 if j < len(s) and s[j] == 48 else _digits(s, j)
        if k == j:
            raise BadJson("bad number")
        for mark, signs in ((b".", b""), (b"eE", b"+-")):
            if k < len(s) and s[k] in mark:
                k += 1
                if signs and k < len(s) and s[k] in signs:
                    k += 1
                j, k = k, _digits(s, k)
                if k == j:
                    raise BadJson("bad number")
        return k
    for word in (b"true", b"false", b"null"):
        if s[i:i + len(word)] == word:
            return i + len(word)
    raise BadJson("nested values are not supported" if b in b"{[" else "bad value")


def parse_request(s):
    """{"id": <scalar>, "text": "..", "cmd": "..", "kind": ".."} → a dict of the raw id (bytes)
    and the unescaped text, cmd and kind (bytes); other keys are ignored."""
    req = {}
    i = _ws(s, 0)
    if i >= len(s) or s[i] != 123:
        raise BadJson("expected an object")
    i = _ws(s, i + 1)
    if i < len(s) and s[i] == 125:
        i += 1
    else:
        while True:
            i = _ws(s, i)
            if i >= len(s) or s[i] != 34:
                raise BadJson("expected a key")
            start = i + 1
            i = _string(s, i)[1]
            key = s[start:i - 1]  # keys are matched as written
            i = _ws(s, i)
            if i >= len(s) or s[i] != 58:
                raise BadJson("expected ':'")
            i = _ws(s, i + 1)
            if key in (b"text", b"kind") and i < len(s) and s[i] == 34:
                req[key.decode()], i = _string(s, i)
            elif key == b"cmd" and i < len(s) and s[i] == 34:
                try:
                    cmd, i = _string(s, i)
                except BadJson:
                    raise BadJson("unknown command")
                if len(cmd) > 15:
                    raise BadJson("unknown command")
                req["cmd"] = cmd.split(b"\0")[0]
            else:
                start = i
                i = _scalar(s, i)
                if key == b"id":
                    if i - start > MAX_ID:
                        raise BadJson("id too long")
                    if utf8_error(s[start:i]) is not None:
                        raise BadJson("id is not valid UTF-8")
                    req["id"] = s[start:i]
                elif key in (b"text", b"cmd", b"kind"):
                    raise BadJson("text, cmd and kind must be strings")
            i = _ws(s, i)
            if i < len(s) and s[i] == 44:
                i += 1
                continue
            if i < len(s) and s[i] == 125:
                i += 1
                break
            raise BadJson("expected ',' or '}'")
    if _ws(s, i) != len(s):
        raise BadJson("trailing bytes after the object")
    return req


# ---- the request handler: one request line in, one JSON answer out ----

stats = {"lines": 0, "classified": 0, "errors": 0, "protocol_errors": 0, "overflows": 0, "bytes_in": 0,
         "time_us_last": 0, "time_us_max": 0, "time_us_total": 0}
COMMANDS = ("info", "version", "stats", "ping")


def reply(req, members):
    """{"id": <the request's id, as written>, members...} (members: already JSON text)."""
    head = '"id":' + req["id"].decode() + "," if req and "id" in req else ""
    return ("{" + head + members + "}").encode()


def error(req, code, message):
    stats["protocol_errors"] += 1
    return reply(req, '"error":%s,"code":"%s"' % (jstr(message), code))


def classify(req, text, total):
    """Classify text (total: the length of the whole command when the line was cut)."""
    head = '"text":' + jstr(utf8_replace(text[:MAX_TEXT])) + ","
    try:
        if total > MAX_TEXT:
            raise ValueError("command too long: %d bytes, the limit is %d" % (total, MAX_TEXT))
        t0 = time.ticks_us()
        answer = se.classify(text)
        dt = time.ticks_diff(time.ticks_us(), t0)
    except (ValueError, RuntimeError) as e:
        msg = str(e)
        code = "too_long" if msg.startswith("command too long") else "invalid_utf8" if msg.startswith(
            "command is not valid") else "empty" if msg.startswith("empty") else "model" if msg.startswith(
            "inference failed") else "internal"
        stats["errors"] += 1
        return reply(req, head + '"error":%s,"code":"%s"' % (jstr(msg), code))
    slots = ",".join(jstr(k) + ":" + jstr(v) for k, v in answer["slots"].items())
    intent = answer["intent"]
    stats["classified"] += 1
    stats["time_us_last"] = dt
    stats["time_us_max"] = max(stats["time_us_max"], dt)
    stats["time_us_total"] += dt
    return reply(req, head + '"intent":%s,"confidence":%s,"slots":{%s},"time_us":%d' % (
        "null" if intent is None else jstr(intent), q4(int(answer["confidence"] * 10000 + 0.5)), slots, dt))


def command(req, cmd):
    """info, version, stats, ping, names, names_clear; None for anything else."""
    if cmd == "version":
        return reply(req, '"version":%s,"protocol":%d' % (jstr(VERSION), PROTOCOL))
    if cmd == "ping":
        return reply(req, '"pong":true')
    if cmd == "stats":
        s = dict(stats)
        s["time_us_mean"] = s.pop("time_us_total") // s["classified"] if s["classified"] else 0
        keys = ("lines", "classified", "errors", "protocol_errors", "overflows", "bytes_in", "time_us_last",
                "time_us_max", "time_us_mean")
        return reply(req, ",".join('"%s":%d' % (k, s[k]) for k in keys))
    if cmd == "info":
        i = se.info()
        return reply(req, '"device":%s,"version":%s,"protocol":%d,"max_line":%d,"max_text":%d,"vocab_size":%d,'
                     '"max_len":%d,"intents":%d,"slots":%d,"oos_threshold":%s,"oos_threshold_no_names":%s,'
                     '"arena_bytes":%d,"names":%d' % (
                         jstr("micropython-" + sys.platform), jstr(VERSION), PROTOCOL, MAX_LINE, MAX_TEXT,
                         i["vocab_size"], i["max_len"], i["intents"] + 1,  # + 1: the C counts "no intent" too
                         i["slots"], q4(i["oos_threshold"]), q4(i["oos_threshold_no_names"]), i["arena_bytes"],
                         se.names()))
    if cmd == "names_clear":
        se.names_clear()
        return reply(req, '"names":0')
    if cmd == "names":
        i = se.info()
        tokens = ',"name_tokens":%d' % i["name_tokens"] if "name_tokens" in i else ""
        return reply(req, '"names":%d,"names_max":%d%s,"name_tokens_max":%d' % (
            se.names(), i["names_max"], tokens, i["names_tokens_max"]))
    return None


def handle(payload):
    """One MQTT request payload → its JSON answer (bytes): the C firmware's se_protocol.c."""
    stats["bytes_in"] += len(payload)
    stats["lines"] += 1
    line = payload[:-1] if payload.endswith(b"\n") else payload  # a trailing \n or \r\n is allowed
    line = line[:-1] if line.endswith(b"\r") else line
    overflow = len(line) > MAX_LINE
    if line.startswith(b"{"):
        if overflow:
            stats["overflows"] += 1
            return error(None, "line_too_long", "request line longer than the device's line buffer")
        try:
            req = parse_request(line)
        except BadJson as e:
            return error(None, "bad_json", str(e))
        if "cmd" in req:
            cmd = req["cmd"].decode() if utf8_error(req["cmd"]) is None else ""
            if cmd == "names_add":
                if "kind" not in req or "text" not in req:
                    return error(req, "bad_request", 'names_add needs "kind" (area, floor, name or '
                                 'name:<domain>) and "text" (the name)')
                result = add_name(req["kind"], req["text"])
                return error(req, *result) if isinstance(result, tuple) else reply(req, '"names":%d' % result)
            return command(req, cmd) or error(
                req, "unknown_command", "unknown command; use info, version, stats, ping, names, names_add or names_clear")
        if "text" not in req:
            return error(req, "bad_request", 'a request needs "text" or "cmd"')
        return classify(req, req["text"], len(req["text"]))
    if line.startswith(b"/") and not overflow and 1 < len(line) <= 16 and b"\0" not in line:
        answer = command(None, line[1:].decode()) if utf8_error(line) is None else None
        if answer is not None:
            return answer
    if overflow:
        stats["overflows"] += 1
    return classify(None, line[:MAX_LINE], len(line))


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


def connect(cfg, t, inbox):
    """Connect (persistent session, last will "offline"), subscribe, say online, announce."""
    client = Client("squeezeedge-" + cfg["device"], cfg["broker"], cfg["port"], cfg.get("username"),
                    cfg.get("password") or "", keepalive=cfg["keepalive"])
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
            try:
                answer = handle(payload)
            except Exception as e:  # a request must never stop the device
                answer = error(None, "internal", "%s: %s" % (type(e).__name__, e))
            client.publish(t["result"], answer, qos=1)
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
