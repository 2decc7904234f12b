"""A serial board on MQTT: ``squeezeedge bridge --port URL [--device ID] [--broker URL]``.

A board with no network (a UART, USB CDC, QEMU's socket, the host emulator's TCP port) shows up
on the broker exactly like the MQTT host emulator (firmware/PROTOCOL.md "Over MQTT"; the topics
and the discovery payload are ``mqtt_topics``'s)::

    squeezeedge/ID/cmd      requests, QoS 1: each payload is forwarded as one request line
    squeezeedge/ID/result   the board's answer line, QoS 1
    squeezeedge/ID/status   retained online/offline; the last will is offline
    homeassistant/sensor/squeezeedge_ID/intent/config   retained discovery (mqtt_topics.discovery_config)

Library::

    b = Bridge("socket://127.0.0.1:5555", "mqtt://127.0.0.1:1883", "kitchen").start()
    ...
    b.stop()

Requests are forwarded one at a time in arrival order. The session is persistent (client id
``squeezeedge-ID``, clean_session=False), so QoS 1 requests published while the bridge is away
are answered when it is back. A lost serial link publishes ``offline``, is retried with backoff
(1 s doubling to 30 s) and resynchronised; the request in flight is retried once on the new link.
"""

from __future__ import annotations

import json
import queue
import re
import sys
import threading
import time

from .classify import MAX_TEXT_BYTES, check_line
from .models.gazetteer import NamesError
from .broker import BrokerSettings, mask, resolve
from .mqtt import (CONNECT_TIMEOUT, MqttError, check_device, closed_before_connack, new_client, publish_presence,
                   refused, start_connect, topics, unsupported_protocol)
from .mqtt_topics import OFFLINE
from .names import push_names
from .transport import BAUDRATE, DEFAULT_TIMEOUT, Transport, TransportError, open_transport

BACKOFF_MIN, BACKOFF_MAX = 1.0, 30.0
PING_INTERVAL = 5.0  # an idle link is checked this often, so a dead board turns "offline"
MIN_MAX_LINE = 514  # every port takes at least this (PROTOCOL.md); `info` tells the real one
# A request waits in the bridge while the serial link is down. Forwarded later than this, it
# would act on a situation that is gone ("turn on the oven" said an hour ago): it is answered
# with an "expired" error instead. MQTT 5's message expiry, when the sender set one, is tighter.
MAX_REQUEST_AGE = 30.0


def request_id(payload: bytes) -> dict:
    """{"id": ...} of a JSON request whose id can be read, else {} (answers carry it back)."""
    if payload[:1] == b"{":
        try:
            obj = json.loads(payload)
            if isinstance(obj, dict) and "id" in obj and not isinstance(obj["id"], (dict, list)):
                return {"id": obj["id"]}
        except ValueError:
            pass
    return {}


def default_device(port_url: str) -> str:
    """A device id from a port URL: /dev/ttyACM0 -> ttyACM0, socket://127.0.0.1:5555 -> 127_0_0_1_5555."""
    tail = port_url.split("://", 1)[-1].rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_-]", "_", tail)[:64] or "board"


def local_error(payload: bytes, max_line: int) -> dict | None:
    """The protocol's error answer for a payload the bridge must not forward (a newline inside
    it, or longer than the board takes), or None to forward it. JSON requests keep their id
    when it can be read, so clients can match the answer."""
    is_json = payload[:1] == b"{"
    rid = request_id(payload)
    if b"\n" in payload:
        if is_json:
            return {**rid, "error": "a request cannot contain a newline byte; write it as \\n inside a JSON string",
                    "code": "bad_request"}
        # plain text: what the device would answer for that command, without sending it
        text = payload[:MAX_TEXT_BYTES].decode("utf-8", "replace")
        problem = check_line(payload)
        if problem is not None:
            code = "too_long" if len(payload) > MAX_TEXT_BYTES else "invalid_utf8"
            return {"text": text, "error": problem, "code": code}
        return {"text": text, "error": "a command cannot contain a newline byte; send it inside a JSON request",
                "code": "bad_request"}
    if is_json:
        if len(payload) > max_line:
            return {**rid, "error": f"request line too long: {len(payload)} bytes, the limit is {max_line}",
                    "code": "line_too_long"}
        return None
    if len(payload) > MAX_TEXT_BYTES:  # the device's own answer, exactly (text echo: the first 512 bytes)
        return {"text": payload[:MAX_TEXT_BYTES].decode("utf-8", "replace"), "error": check_line(payload),
                "code": "too_long"}
    return None


class Bridge:
    """Forward ``squeezeedge/<device>/cmd`` to the board at ``port_url``, answers to ``.../result``."""

    def __init__(self, port_url: str, broker: "str | BrokerSettings", device: str | None = None, baudrate: int = BAUDRATE,
                 timeout: float = DEFAULT_TIMEOUT, log=None, names=None, max_request_age: float = MAX_REQUEST_AGE):
        self.port_url = port_url
        self.broker = resolve(broker)
        self.max_request_age = max_request_age
        self.device = check_device(device or default_device(port_url))
        self.topics = topics(self.device)
        self.baudrate = baudrate
        self.timeout = timeout
        self.log = log or (lambda msg: print(f"bridge: {mask(msg)}", file=sys.stderr, flush=True))
        self.model = "SqueezeEdge board (serial bridge)"
        self.sw_version = "unknown"
        self.max_line = MIN_MAX_LINE
        self.forwarded = 0
        self.expired = 0
        # The home's names (HomeNames) the board must know. It keeps them in RAM, so a reset
        # empties its table: each link check compares the board's count and sends them again.
        self.names = names
        self._names_count: int | None = None
        self._transport: Transport | None = None
        self._inbox: queue.Queue = queue.Queue()  # (payload, deadline on time.monotonic()) or None
        self._stop = threading.Event()
        self._mqtt_up = threading.Event()
        self._subscribed = threading.Event()
        self._worker: threading.Thread | None = None
        self._client = None
        self._lock = threading.Lock()  # status publishing vs. (re)connect callbacks

    # ---- serial side ----
    def _open_serial(self) -> None:
        t = open_transport(self.port_url, self.baudrate)
        try:
            t.resync()
            try:
                info = t.command("info", self.timeout)
            except TransportError:
                raise TransportError(f"{self.port_url}: no answer to `info`; is the board running the SqueezeEdge "
                                     "firmware, at this port and baud rate?") from None
            self.model = f"{info.get('device', 'board')} (serial bridge)"
            self.sw_version = str(info.get("version", "unknown"))
            self.max_line = int(info.get("max_line", MIN_MAX_LINE))
            self._sync_names(t)
        except BaseException:
            t.close()
            raise
        self._transport = t

    def _sync_names(self, t: Transport) -> None:
        """Send the home's names if the board does not hold them (first contact, or it was reset)."""
        if self.names is None:
            return
        if self._names_count is None or t.command("names", self.timeout).get("names") != self._names_count:
            self._names_count = push_names(t, self.names)
            self.log(f"told the board the home's names ({self._names_count})")

    def _drop_serial(self, why: str) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            self.log(f"serial link {self.port_url} lost ({why}); device {self.device!r} is offline, retrying")
            self._announce()

    @property
    def serial_up(self) -> bool:
        return self._transport is not None

    # ---- MQTT side ----
    def _announce(self) -> None:
        """Status = online when both links are up; discovery with the board's model/version."""
        with self._lock:
            if self._client is not None and self._mqtt_up.is_set():
                publish_presence(self._client, self.device, self.serial_up, self.model, self.sw_version)

    def _connect_mqtt(self) -> None:
        """MQTT 5 (message expiry), or 3.1.1 when the broker speaks only that (the in-process amqtt)."""
        for mqtt5 in (True, False):
            why = self._try_connect(mqtt5)
            if why is None:
                return
            # a broker that only speaks 3.1.1 says so (mosquitto) or, given a will, hangs up (amqtt)
            if not (mqtt5 and (unsupported_protocol(why) or isinstance(why, MqttError) and "closed" in str(why))):
                break
        if isinstance(why, MqttError):
            raise why
        raise refused(self.broker, why) if why is not None else MqttError(
            f"{self.broker.url}: the broker did not accept the connection and subscription within {CONNECT_TIMEOUT:g} s")

    def _try_connect(self, mqtt5: bool):
        """None when connected and subscribed; else the CONNACK reason code or an MqttError."""
        c = new_client(self.broker, f"squeezeedge-{self.device}", mqtt5, clean=False)
        c.will_set(self.topics["status"], OFFLINE, qos=1, retain=True)
        c.reconnect_delay_set(int(BACKOFF_MIN), int(BACKOFF_MAX))
        refusals: list = []
        dropped = threading.Event()

        def on_connect(client, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                refusals.append(reason_code)
                if not unsupported_protocol(reason_code):
                    self.log(f"{self.broker.url} refused the connection: {reason_code}")
                return
            reconnect = self._client is not None and self._subscribed.is_set()
            self._mqtt_up.set()
            client.subscribe(self.topics["cmd"], qos=1)
            self._announce()
            if reconnect:
                self.log(f"reconnected to {self.broker.url}")

        def on_disconnect(client, userdata, flags, reason_code, properties):
            self._mqtt_up.clear()
            dropped.set()
            if not self._stop.is_set() and self._subscribed.is_set():
                self.log(f"lost the connection to {self.broker.url} ({reason_code}); reconnecting")

        def on_message(client, userdata, msg):
            # a retained request is an old one the broker replays at every subscription: never run it
            if msg.topic == self.topics["cmd"] and not msg.retain:
                self._inbox.put((bytes(msg.payload), self._deadline(msg)))

        c.on_connect = on_connect
        c.on_disconnect = on_disconnect
        c.on_message = on_message
        c.on_subscribe = lambda *a: self._subscribed.set()
        start_connect(c, self.broker, mqtt5, clean=False)
        self._client = c
        c.loop_start()
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while not self._subscribed.is_set() and not refusals and not dropped.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._subscribed.is_set():
            return None
        c.disconnect()
        c.loop_stop()
        self._client = None
        if refusals:
            return refusals[0]
        if dropped.is_set():
            return closed_before_connack(self.broker)
        return MqttError(f"{self.broker.url}: the broker did not accept the connection and subscription "
                         f"within {CONNECT_TIMEOUT:g} s")

    def _deadline(self, msg) -> float:
        """When a request received now goes stale: the bridge's bound, or the sender's MQTT 5 expiry."""
        age = self.max_request_age
        expiry = getattr(getattr(msg, "properties", None), "MessageExpiryInterval", None)
        if expiry is not None:
            age = min(age, float(expiry))
        return time.monotonic() + age

    def _publish_result(self, line: bytes) -> None:
        self._client.publish(self.topics["result"], line, qos=1)

    # ---- forwarding ----
    def _exchange(self, line: bytes) -> bytes:
        """Write one request line, return the board's next JSON answer line (noise is skipped)."""
        t = self._transport
        # the board drops one \r before the newline: keep a \r that ends the payload
        t.write_line(line + b"\r" if line.endswith(b"\r") else line)
        deadline = time.monotonic() + self.timeout
        while True:
            answer = t.read_line(max(0.0, deadline - time.monotonic()), budget=self.timeout)
            try:
                if isinstance(json.loads(answer), dict):
                    return answer
            except ValueError:
                continue

    def _handle(self, payload: bytes, deadline: float) -> None:
        # as the emulator (firmware/ports/host/mqtt.c on_message): a trailing \n, then a trailing \r, is dropped
        if payload.endswith(b"\n"):
            payload = payload[:-1]
        if payload.endswith(b"\r"):
            payload = payload[:-1]
        error = local_error(payload, self.max_line)
        if error is not None:
            self._publish_result(json.dumps(error, ensure_ascii=False).encode("utf-8"))
            return
        for attempt in range(2):
            self._wait_serial()
            if self._stop.is_set():
                self._inbox.put((payload, deadline))  # not answered: not lost either (well, until exit)
                return
            if time.monotonic() > deadline:
                self.expired += 1
                self._publish_result(json.dumps(
                    {**request_id(payload), "error": "request expired: it waited longer than "
                     f"{self.max_request_age:g} s (or its MQTT message expiry) for the board; not forwarded",
                     "code": "expired"}).encode("utf-8"))
                return
            try:
                answer = self._exchange(payload)
            except TransportError as e:
                self._drop_serial(str(e))
                continue
            self.forwarded += 1
            self._publish_result(answer)
            return
        self._publish_result(json.dumps({"error": f"the board at {self.port_url} did not answer; request dropped",
                                         "code": "device_unavailable"}).encode("utf-8"))

    def _wait_serial(self) -> None:
        """Until the serial link is up (or stop): reconnect with backoff, resync, announce."""
        delay = BACKOFF_MIN
        while self._transport is None and not self._stop.is_set():
            try:
                self._open_serial()
                self.log(f"serial link {self.port_url} is back")
                self._announce()
                return
            except TransportError as e:
                self.log(f"{e}; retrying in {delay:g} s")
                self._stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    def _check_link(self) -> None:
        """Is the board still there, and does it still hold the home's names?"""
        self._last_check = time.monotonic()
        if self._transport is None or self._stop.is_set():
            return
        try:
            if self.names is None:
                self._transport.command("ping", min(self.timeout, 5.0))
            else:  # the names count answers for the link as well
                self._sync_names(self._transport)
        except TransportError as e:
            self._drop_serial(str(e))
        except NamesError as e:  # accepted at start, refused now: another firmware?
            self.log(f"{e}; no longer sending the home's names")
            self.names = None

    def _run(self) -> None:
        self._last_check = time.monotonic()
        while not self._stop.is_set():
            self._wait_serial()
            try:
                payload = self._inbox.get(timeout=PING_INTERVAL)
            except queue.Empty:
                self._check_link()
                continue
            if payload is None:
                break
            self._handle(*payload)
            if time.monotonic() - self._last_check > PING_INTERVAL:  # busy links are checked too
                self._check_link()

    # ---- life cycle ----
    def start(self) -> "Bridge":
        """Open the port (one clear TransportError if it cannot), connect the broker (MqttError),
        announce ``online`` + discovery and start forwarding."""
        self._open_serial()
        try:
            self._connect_mqtt()
        except BaseException:
            self._transport.close()
            self._transport = None
            raise
        self._worker = threading.Thread(target=self._run, name=f"bridge-{self.device}", daemon=True)
        self._worker.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the request in flight, say ``offline`` (retained), disconnect, close the port."""
        self._stop.set()
        self._inbox.put(None)
        if self._worker is not None:
            self._worker.join(timeout + self.timeout)
        c = self._client
        if c is not None:
            try:
                if self._mqtt_up.is_set():
                    info = c.publish(self.topics["status"], OFFLINE, qos=1, retain=True)
                    info.wait_for_publish(timeout)
                c.disconnect()
            except Exception:  # noqa: BLE001 - stopping must not raise
                pass
            c.loop_stop()
            self._client = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def run_forever(self) -> None:
        """start(), then serve_forever()."""
        self.start()
        self.serve_forever()

    def serve_forever(self) -> None:
        """Serve (the threads start() began do the work) until Ctrl-C or SIGTERM (KeyboardInterrupt,
        as the CLI raises it for both); then stop()."""
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> "Bridge":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
