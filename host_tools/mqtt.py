"""The device protocol over MQTT (firmware/ports/host/mqtt.c speaks the device side).

Topics, for a device id ``ID`` (1..64 of ``A-Za-z0-9_-``), as defined once in ``mqtt_topics``::

    squeezeedge/ID/cmd      requests, QoS 1: one payload = one request line (JSON or plain text)
    squeezeedge/ID/result   answers, QoS 1: one JSON response line per request
    squeezeedge/ID/status   retained "online" / "offline" (the device's last will)
    homeassistant/sensor/squeezeedge_ID/intent/config   retained Home Assistant discovery

Library::

    broker = start_local_broker()                  # in-process amqtt on 127.0.0.1:<free port>
    with MqttTransport(broker.url, "kitchen") as t:  # a transport.Transport: request/command/classify_json
        print(t.classify_json(b"turn on the light"))
    broker.stop()

``engines.open_mqtt_engine`` gives a classify engine over this transport (with ``broker=None``
it starts a local broker and an MQTT host emulator too, and stops both on ``close()``).
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import socket
import threading
import time
import uuid

from . import mqtt_topics
from .broker import BrokerSettings, MqttError, default_broker, parse_broker_url, resolve
from .mqtt_topics import DEVICE_RE, OFFLINE, ONLINE, discovery_config
from .net import free_port
from .transport import DEFAULT_TIMEOUT, DeviceEngine, Transport, seconds

CONNECT_TIMEOUT = 5.0


# ---- topics and URLs ----

def topics(device: str, allow_wildcard: bool = False) -> dict[str, str]:
    """The topics of ``device`` (``+``, with ``allow_wildcard``: of every device, for subscriptions;
    the discovery topic then is no valid filter): ``mqtt_topics.topics`` of a checked id."""
    check_device(device, allow_wildcard)
    return mqtt_topics.topics(device)


def check_device(device: str, allow_wildcard: bool = False) -> str:
    if allow_wildcard and device == "+":
        return device
    if not device or not DEVICE_RE.match(device):
        raise MqttError(f"device id {device!r}: use 1..64 characters of A-Z a-z 0-9 _ -")
    return device


# ---- an in-process broker (amqtt) ----

class LocalBroker:
    """An amqtt broker on 127.0.0.1 in a background thread with its own event loop."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> "LocalBroker":
        import logging

        from amqtt.broker import Broker

        for name in ("amqtt", "transitions"):  # amqtt logs every connection at INFO
            logging.getLogger(name).setLevel(logging.WARNING)
        # ... and an MQTT 5 CONNECT (the tools try 5 first, then 3.1.1) as a warning
        logging.getLogger("amqtt.broker").setLevel(logging.ERROR)
        config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                  "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}
        started = threading.Event()
        failure: list[BaseException] = []

        def run():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._broker = Broker(config, loop=loop)
                loop.run_until_complete(self._broker.start())
            except BaseException as e:  # noqa: BLE001 - reported to the caller
                failure.append(e)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        if not started.wait(timeout) or failure:
            raise MqttError(f"cannot start the local MQTT broker on 127.0.0.1:{self.port}: "
                            f"{failure[0] if failure else 'timeout'}")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Shut the broker down; bounded (2 x ``timeout``), so Ctrl-C always ends the program."""
        loop, broker = self._loop, self._broker
        if loop is None or self._thread is None or not self._thread.is_alive():
            return
        if broker is not None:
            try:
                asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(timeout)
            except Exception:  # noqa: BLE001 - stopping must not raise
                pass
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout)

    def __enter__(self) -> "LocalBroker":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_local_broker(port: int | None = None) -> LocalBroker:
    """Start an in-process amqtt broker on 127.0.0.1 (a free port by default); ``.url``, ``.stop()``."""
    return LocalBroker(port).start()


def default_local_port() -> int | None:
    """The default broker's port (``default_broker()``: where `mqtt send` looks without --broker) when
    that broker would be on this machine and its port is free; else None (take any free port)."""
    addr = parse_broker_url(default_broker())
    if addr.host not in ("127.0.0.1", "localhost"):
        return None
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", addr.port))
        except OSError:
            return None
    return addr.port


# ---- a paho client ----

# How long the broker keeps a request for a device that is away (MQTT 5 message expiry): a
# command is an action for now, so one queued longer than its sender waits for the answer is
# dropped instead of running late ("turn on the oven" an hour after it was said).
def request_expiry(timeout: float) -> int:
    return max(1, int(timeout + 0.999))


def new_client(settings: BrokerSettings, client_id: str, mqtt5: bool = True, clean: bool = True):
    """A paho client set up for ``settings`` (TLS, credentials), not yet connected. MQTT 5 when
    ``mqtt5`` (message expiry); 3.1.1 otherwise (the in-process amqtt broker speaks only that)."""
    import ssl

    import paho.mqtt.client as mqtt

    if mqtt5:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    else:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    if settings.tls:
        client.tls_set(ca_certs=settings.cafile, certfile=settings.certfile, keyfile=settings.keyfile,
                       cert_reqs=ssl.CERT_REQUIRED)
        client.tls_insecure_set(not settings.check_hostname)
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    return client


def connect_properties(mqtt5: bool, clean: bool):
    """MQTT 5 CONNECT properties: a persistent session (clean=False) must say how long it lives."""
    if not mqtt5 or clean:
        return None
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0xFFFFFFFF  # as 3.1.1's clean_session=False: until the broker forgets it
    return props


def start_connect(client, settings: BrokerSettings, mqtt5: bool, clean: bool = True, keepalive: int = 30) -> None:
    """``client.connect`` (TCP and the TLS handshake) or MqttError saying in one sentence what failed."""
    try:
        if mqtt5:
            client.connect(settings.host, settings.port, keepalive=keepalive, clean_start=clean,
                           properties=connect_properties(mqtt5, clean))
        else:
            client.connect(settings.host, settings.port, keepalive=keepalive)
    except (OSError, ValueError) as e:
        raise connect_error(settings, e) from None
    sock = client.socket()
    if sock is not None:  # one small request at a time: no Nagle delay
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def connect_error(settings: BrokerSettings, e: BaseException) -> MqttError:
    """What a failed connect means, in words a user can act on (TLS failures especially)."""
    import ssl

    url = settings.url
    if isinstance(e, ssl.SSLCertVerificationError):
        why = e.verify_message or str(e)
        if "mismatch" in why:
            return MqttError(f"{url}: TLS refused: the broker's certificate is not valid for the host name "
                             f"{settings.host!r}; connect by a name the certificate lists (or, on a network you trust, "
                             "--tls-insecure-no-hostname-check)")
        return MqttError(f"{url}: TLS refused: the broker's certificate is not signed by a trusted CA ({why}); "
                         "pass --cafile with the CA certificate that signed it")
    if isinstance(e, ssl.SSLError):
        return MqttError(f"{url}: TLS handshake failed ({e.reason or e}); is it a TLS port, and are --cafile, "
                         "--certfile and --keyfile the right files?")
    if settings.tls and isinstance(e, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return MqttError(f"{url}: the broker closed the connection during the TLS handshake; "
                         f"is port {settings.port} a plain MQTT port? (then use mqtt://)")
    reason = e.strerror if isinstance(e, OSError) and e.strerror else e
    return MqttError(f"{url}: cannot reach the MQTT broker ({reason}); "
                     "is it running? (`squeezeedge emulate --mqtt` starts one)")


def closed_before_connack(settings: BrokerSettings) -> MqttError:
    """The broker dropped us without a CONNACK: on a TLS port that is what a plain CONNECT gets."""
    if settings.tls:
        return MqttError(f"{settings.url}: the broker closed the connection without accepting it; "
                         "check its log (a client certificate may be required: --certfile/--keyfile)")
    return MqttError(f"{settings.url}: the broker closed the connection without answering: "
                     f"if port {settings.port} is a TLS port, use mqtts:// (and --cafile)")


def refused(settings: BrokerSettings, reason_code) -> MqttError:
    return MqttError(f"{settings.url}: the broker refused the connection: {reason_code} (check the user name and "
                     "password: --credentials, $SQUEEZEEDGE_MQTT_USERNAME/PASSWORD or --ask-password)")


def unsupported_protocol(reason_code) -> bool:
    return getattr(reason_code, "value", None) in (1, 132)  # 3.1.1 CONNACK 1 / MQTT 5 reason 0x84


MQTT5_PROBE_SECONDS = 2.0
_PROTOCOL_SPOKEN: dict[str, bool] = {}  # broker URL → speaks MQTT 5; learnt at the first connect


def connect_client(broker: "str | BrokerSettings | None", client_id: str = "", timeout: float = CONNECT_TIMEOUT,
                   on_message=None, clean_session: bool = True):
    """A connected paho client (network loop running; ``.se_mqtt5`` says if it speaks MQTT 5) or
    MqttError with one clear sentence. Tries MQTT 5 first, 3.1.1 if the broker does not speak 5.
    ``clean_session=False``: a persistent session (MQTT 5: clean start off, no session expiry)."""
    settings = resolve(broker)
    client_id = client_id or f"se-tool-{uuid.uuid4().hex[:12]}"
    known = _PROTOCOL_SPOKEN.get(settings.url)
    for mqtt5 in (True, False) if known is None else (known,):
        client = new_client(settings, client_id, mqtt5, clean=clean_session)
        done = threading.Event()
        result: list = []

        def on_connect(c, userdata, flags, reason_code, properties, result=result, done=done):
            result.append(reason_code)
            done.set()

        def on_disconnect(c, userdata, flags, reason_code, properties, done=done):
            done.set()

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        if on_message is not None:
            client.on_message = on_message
        start_connect(client, settings, mqtt5, clean=clean_session)
        client.loop_start()
        # a 3.1.1-only broker (amqtt) may neither answer nor hang up on an MQTT 5 CONNECT that
        # carries properties (a persistent session's expiry): give that try a short wait
        if not done.wait(min(timeout, MQTT5_PROBE_SECONDS) if mqtt5 and known is None else timeout):
            client.loop_stop()
            if mqtt5 and known is None:
                client.disconnect()
                continue
            raise MqttError(f"{settings.url}: the broker did not accept the connection within {seconds(timeout)}")
        if not result:
            client.loop_stop()
            if mqtt5:  # some 3.1.1-only brokers hang up on an MQTT 5 CONNECT instead of answering
                continue
            raise closed_before_connack(settings)
        if result[0].is_failure:
            client.disconnect()
            client.loop_stop()
            if mqtt5 and unsupported_protocol(result[0]):
                continue
            raise refused(settings, result[0])
        client.on_disconnect = None
        client.se_mqtt5 = mqtt5
        _PROTOCOL_SPOKEN[settings.url] = mqtt5
        return client
    raise MqttError(f"{settings.url}: the broker speaks neither MQTT 5 nor 3.1.1")


def publish_request(client, topic: str, payload: bytes, expiry: int | None):
    """QoS 1 request; with MQTT 5 it carries a message expiry so a broker never delivers it late."""
    props = None
    if expiry and getattr(client, "se_mqtt5", False):
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.PUBLISH)
        props.MessageExpiryInterval = expiry
    return client.publish(topic, payload, qos=1, properties=props)


class MqttTransport(Transport):
    """The line protocol over MQTT: every line written is published on the device's cmd topic
    (QoS 1); every result message is a line read. ``request``/``command``/``classify_json``
    are the base class's; request ids are unique per client because the result topic is shared.

    Across a broker restart nothing is lost on our side: the session is persistent (answers the
    broker holds for us while we reconnect are kept, on a broker with persistence), paho sends
    requests published while disconnected after it reconnects, and the subscription is renewed
    on every connect (a broker without persistence forgets it). What the broker itself dropped
    cannot come back: ``print_answers`` reports those requests as lost, by id. ``close()`` ends
    the session, so the broker keeps nothing of ours."""

    ordered = False  # the result topic is shared: an answer without id may be another client's
    lost_means_error = True

    def __init__(self, broker: "str | BrokerSettings | None", device: str, timeout: float = CONNECT_TIMEOUT,
                 expiry: int | None = request_expiry(DEFAULT_TIMEOUT)):
        super().__init__()
        self.device = check_device(device)
        self.topics = topics(device)
        self.settings = resolve(broker)
        self.url = self.settings.url
        self.expiry = expiry  # seconds a request may wait at the broker (MQTT 5); None: no expiry
        prefix = uuid.uuid4().hex[:10]
        self._client_id = f"se-tool-{prefix}"
        self._ids = (f"{prefix}-{n}" for n in itertools.count(1))
        self._inbox: queue.Queue[bytes] = queue.Queue()
        subscribed = threading.Event()

        def on_message(c, userdata, msg):
            if msg.topic == self.topics["result"]:
                self._inbox.put(bytes(msg.payload).replace(b"\n", b" ") + b"\n")

        def on_reconnect(c, userdata, flags, reason_code, properties):
            if not reason_code.is_failure:
                c.subscribe(self.topics["result"], qos=1)
                self.connected_since = time.monotonic()

        self.client = connect_client(self.settings, client_id=self._client_id, on_message=on_message,
                                     timeout=timeout, clean_session=False)
        self.client.on_connect = on_reconnect
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.subscribe(self.topics["result"], qos=1)
        if not subscribed.wait(timeout):
            self.close()
            raise MqttError(f"{self.url}: the broker did not confirm the subscription to {self.topics['result']}")

    def _write(self, data: bytes) -> None:
        import paho.mqtt.client as mqtt

        payload = data[:-1] if data.endswith(b"\n") else data
        info = publish_request(self.client, self.topics["cmd"], payload, self.expiry)
        # NO_CONN: paho keeps the QoS 1 message and sends it when it has reconnected
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise MqttError(f"{self.url}: publish failed (rc {info.rc}); the broker went away")

    def _read(self, timeout: float) -> bytes:
        try:
            first = self._inbox.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return b""
        parts = [first]
        while True:
            try:
                parts.append(self._inbox.get_nowait())
            except queue.Empty:
                return b"".join(parts)

    def no_answer(self, timeout: float) -> MqttError:
        return MqttError(f"no answer from device {self.device!r} via {self.url} within {seconds(timeout)}: is it "
                         f"online? (`squeezeedge mqtt listen --device {self.device}` shows its status)")

    def status(self, timeout: float = 1.0) -> str | None:
        """The device's retained status ("online"/"offline"), None if it never announced itself."""
        return retained(self.settings, self.topics["status"], timeout)

    def close(self) -> None:
        try:
            self.client.disconnect()
            self.client.loop_stop()
        except Exception:  # noqa: BLE001 - closing must not raise
            pass
        try:  # a clean connect with our client id ends the persistent session at the broker
            ender = connect_client(self.settings, client_id=self._client_id, timeout=2.0)
            ender.disconnect()
            ender.loop_stop()
        except Exception:  # noqa: BLE001 - the broker may be gone; its sessions then go with it
            pass


def retained(broker: "str | BrokerSettings | None", topic: str, timeout: float = 1.0) -> str | None:
    """The retained message of ``topic`` (decoded), or None if there is none within ``timeout``."""
    box: queue.Queue[bytes] = queue.Queue()
    client = connect_client(broker, on_message=lambda c, u, m: box.put(bytes(m.payload)) if m.retain else None)
    try:
        client.subscribe(topic, qos=1)
        return box.get(timeout=timeout).decode("utf-8", "replace")
    except queue.Empty:
        return None
    finally:
        client.disconnect()
        client.loop_stop()


# ---- an engine for `classify --engine device --broker URL --device ID` ----

class MqttEngine(DeviceEngine):
    """``DeviceEngine`` over an ``MqttTransport``; ``close()`` also stops what it started."""

    def __init__(self, transport: MqttTransport, name: str = "device", emulator=None, broker: LocalBroker | None = None,
                 timeout: float = DEFAULT_TIMEOUT):
        super().__init__(transport, name, emulator=emulator, timeout=timeout)
        self.broker = broker

    def close(self) -> None:
        super().close()
        if self.broker is not None:
            self.broker.stop()


# ---- Home Assistant discovery and presence (shared by the serial bridge) ----

def publish_presence(client, device: str, online: bool, model: str | None = None, sw_version: str | None = None):
    """Publish the retained status (``online``/``offline``) and, given ``model``, the discovery
    config, as the emulator does on connect. Returns the status publish's MQTTMessageInfo."""
    t = topics(device)
    info = client.publish(t["status"], ONLINE if online else OFFLINE, qos=1, retain=True)
    if model is not None:
        client.publish(t["discovery"], discovery_config(device, model, sw_version or "unknown"), qos=1, retain=True)
    return info
