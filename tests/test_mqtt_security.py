"""MQTT a home can trust, against real mosquitto brokers configured here and the real emulator binary:

- TLS with a CA made in this test: the emulator, `mqtt send`, `names push`, `classify --engine
  device` and the bridge connect and answer; a wrong CA, a wrong host name and plain MQTT to the
  TLS port are each refused with one sentence; a listener that requires client certificates
  takes --certfile/--keyfile.
- With the files `squeezeedge mqtt acl` writes: a device cannot publish on another device's
  topics, cannot send commands or names, cannot forge results or status; anonymous clients are
  refused; a retained command is not run at reconnect; a request that expired at the broker
  (MQTT 5) is never run; the bridge forwards nothing older than its bound.
- Secrets: never on a command line (/proc/PID/cmdline of the tools and the emulator), never in
  what the tools print, credentials files that others can read are refused.

Needs mosquitto, mosquitto_passwd and openssl (the Makefile's APT_PACKAGES): missing ones fail.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from squeezeedge import bridge as bridge_mod
from squeezeedge import mqtt as mqtt_mod
from squeezeedge import emulator as emulator_mod
from squeezeedge.broker import broker_settings
from squeezeedge.emulator import build_emulator, prepare_package, start_emulator
from squeezeedge.models.engine import DEFAULT_MODEL
from squeezeedge.net import free_port
from test_mqtt import Mosquitto

PASSWORD_IN_URL = "Url-Pa55word-NOT-for-logs"


def need(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} is missing: apt-get install {'openssl' if tool == 'openssl' else 'mosquitto'} " \
                 "(listed in the Makefile's APT_PACKAGES)"
    return path


def squeezeedge(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "squeezeedge", *args], capture_output=True, text=True,
                          timeout=timeout)


# ---- a CA, a broker certificate for "localhost" only, a client certificate, and a stranger CA ----

def openssl(*args: str, cwd: Path) -> None:
    subprocess.run([need("openssl"), *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> Path:
    for name, cn in (("ca", "SqueezeEdge test CA"), ("other-ca", "Somebody else's CA")):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt",
                "-days", "2", "-subj", f"/CN={cn}", cwd=d)
    (d / "server.ext").write_text("subjectAltName=DNS:localhost\n")  # not 127.0.0.1: the wrong-name case
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, cn in (("server", "localhost"), ("client", "kitchen-client")):
        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={cn}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    for f in d.iterdir():
        f.chmod(0o644)  # test keys: mosquitto started as root reads them as the mosquitto user
    return d


class ConfiguredMosquitto(Mosquitto):
    """mosquitto with a configuration written by the test (listeners, TLS, password file, ACL)."""

    def __init__(self, conf: str):
        super().__init__()
        self.conf.write_text(conf.format(port=self.port, dir=self.dir) + f"persistence true\n"
                             f"persistence_location {self.dir}/\nautosave_interval 1\nset_tcp_nodelay true\n")


@pytest.fixture(scope="module")
def pki():
    d = Path(tempfile.mkdtemp(prefix="se-pki-"))
    d.chmod(0o755)
    yield make_pki(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_broker(pki):
    """A TLS listener (any client) and a second one that requires a client certificate."""
    need("mosquitto")
    b = ConfiguredMosquitto(
        "per_listener_settings false\nallow_anonymous true\n"
        "listener {port} 127.0.0.1\n"
        f"cafile {pki}/ca.crt\ncertfile {pki}/server.crt\nkeyfile {pki}/server.key\n")
    b.client_cert_port = free_port()
    b.conf.write_text(b.conf.read_text() + f"listener {b.client_cert_port} 127.0.0.1\ncafile {pki}/ca.crt\n"
                      f"certfile {pki}/server.crt\nkeyfile {pki}/server.key\nrequire_certificate true\n")
    b.start()
    b.tls_url = f"mqtts://localhost:{b.port}"
    yield b
    b.remove()


@pytest.fixture(scope="module")
def tls_device(tls_broker, pki):
    settings = broker_settings(tls_broker.tls_url, cafile=str(pki / "ca.crt"))
    emu = emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, settings, "tlsdev")
    yield emu
    emu.stop()


def tls_args(broker, pki) -> list[str]:
    return ["--broker", broker.tls_url, "--cafile", str(pki / "ca.crt")]


def test_over_tls_the_emulator_and_the_tools_answer(tls_broker, tls_device, pki, tmp_path):
    sent = squeezeedge("mqtt", "send", "turn off the kitchen lights", "--device", "tlsdev", *tls_args(tls_broker, pki))
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["text"] == "turn off the kitchen lights"

    names = tmp_path / "home.json"
    assert squeezeedge("names", "example", "-o", str(names)).returncode == 0
    pushed = squeezeedge("names", "push", str(names), "--device", "tlsdev", *tls_args(tls_broker, pki))
    assert pushed.returncode == 0, pushed.stderr
    assert "the device now knows" in pushed.stdout

    classified = squeezeedge("classify", "--engine", "device", "--device", "tlsdev", *tls_args(tls_broker, pki),
                             "turn on the light")
    assert classified.returncode == 0, classified.stderr
    assert "intent" in json.loads(classified.stdout)


def test_over_tls_the_bridge_answers(tls_broker, pki):
    serial = start_emulator(DEFAULT_MODEL, "tcp:0")
    settings = broker_settings(tls_broker.tls_url, cafile=str(pki / "ca.crt"))
    try:
        with bridge_mod.Bridge(serial.url, settings, "tlsbridge"), \
                mqtt_mod.MqttTransport(settings, "tlsbridge") as t:
            assert t.classify_json(b"turn on the light")["text"] == "turn on the light"
    finally:
        serial.stop()


def test_a_client_certificate_is_sent_when_the_broker_requires_one(tls_broker, pki):
    url = f"mqtts://localhost:{tls_broker.client_cert_port}"
    with_cert = broker_settings(url, cafile=str(pki / "ca.crt"), certfile=str(pki / "client.crt"),
                                keyfile=str(pki / "client.key"))
    mqtt_mod.connect_client(with_cert).disconnect()
    with pytest.raises(mqtt_mod.MqttError):
        mqtt_mod.connect_client(broker_settings(url, cafile=str(pki / "ca.crt")))
    emu = emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, with_cert, "certdev")  # the emulator too
    try:
        with mqtt_mod.MqttTransport(with_cert, "certdev") as t:
            assert "error" not in t.command("ping")
    finally:
        emu.stop()


REFUSALS = {
    "wrong CA": (lambda b, pki: ["--broker", b.tls_url, "--cafile", str(pki / "other-ca.crt")],
                 "TLS refused: the broker's certificate is not signed by a trusted CA"),
    "wrong host name": (lambda b, pki: ["--broker", f"mqtts://127.0.0.1:{b.port}", "--cafile", str(pki / "ca.crt")],
                        "TLS refused: the broker's certificate is not valid for the host name '127.0.0.1'"),
    "plain MQTT to the TLS port": (lambda b, pki: ["--broker", f"mqtt://localhost:{b.port}"],
                                   "the broker closed the connection without answering: if port "),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_tls_problems_are_refused_in_one_sentence(tls_broker, tls_device, pki, case):
    args, sentence = REFUSALS[case]
    r = squeezeedge("mqtt", "send", "turn on the light", "--device", "tlsdev", *args(tls_broker, pki))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and sentence in r.stderr, r.stderr


EMULATOR_REFUSALS = {
    "wrong CA": (lambda b, pki: ["--broker", b.tls_url, "--cafile", str(pki / "other-ca.crt")],
                 "TLS refused: the broker's certificate is not signed by a trusted CA; pass --cafile"),
    "wrong host name": (lambda b, pki: ["--broker", f"mqtts://127.0.0.1:{b.port}", "--cafile", str(pki / "ca.crt")],
                        "TLS refused: the broker's certificate is not valid for this host name"),
    "plain MQTT to the TLS port": (lambda b, pki: ["--broker", f"mqtt://localhost:{b.port}"],
                                   "closed the connection without answering: if it is a TLS port, use mqtts://"),
}


@pytest.fixture(scope="module")
def emulator_binary():
    return build_emulator(prepare_package(DEFAULT_MODEL), mqtt=True)


@pytest.mark.parametrize("case", EMULATOR_REFUSALS)
def test_the_emulator_says_what_is_wrong_with_tls(tls_broker, pki, emulator_binary, case):
    args, sentence = EMULATOR_REFUSALS[case]
    proc = subprocess.Popen([str(emulator_binary), *args(tls_broker, pki), "--device", "refused"],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # it keeps retrying; the first line says why
        assert sentence in line, line
    finally:
        proc.kill()
        proc.wait()


# ---- the locked-down broker: `squeezeedge mqtt acl` ----

@pytest.fixture(scope="module")
def acl_dir():
    need("mosquitto")
    d = Path(tempfile.mkdtemp(prefix="se-acl-"))
    d.chmod(0o755)
    r = squeezeedge("mqtt", "acl", "--device", "kitchen", "--device", "hall", "--device", "board", "--controller", "hass",
                    "-o", str(d))
    assert r.returncode == 0, r.stderr
    for user in ("kitchen", "hall", "board", "hass"):
        assert (d / "credentials" / f"{user}.toml").stat().st_mode & 0o777 == 0o600
    yield d
    shutil.rmtree(d, ignore_errors=True)


def creds(acl_dir: Path, user: str) -> str:
    return str(acl_dir / "credentials" / f"{user}.toml")


def password(acl_dir: Path, user: str) -> str:
    from squeezeedge.broker import read_credentials_file

    return read_credentials_file(creds(acl_dir, user))[1]


@pytest.fixture(scope="module")
def locked_broker(acl_dir):
    b = ConfiguredMosquitto("listener {port} 127.0.0.1\n" + (acl_dir / "mosquitto.conf").read_text())
    b.start()
    yield b
    b.remove()


def as_user(broker, acl_dir, user):
    return broker_settings(broker.url, credentials=creds(acl_dir, user))


class Watch:
    """A client (with some user's rights) that records the messages of some topics."""

    def __init__(self, settings, topics: list[str]):
        self.box: queue.Queue = queue.Queue()
        self.seen: list[tuple[str, bytes, bool]] = []
        self.client = mqtt_mod.connect_client(settings, on_message=lambda c, u, m: self.box.put(
            (m.topic, bytes(m.payload), bool(m.retain))))
        subscribed = queue.Queue()
        self.client.on_subscribe = lambda *a: subscribed.put(1)
        self.client.subscribe([(t, 1) for t in topics])
        subscribed.get(timeout=10)

    def until(self, pred, timeout: float = 15.0):
        """Collect until a message matching pred arrives; returns every message seen so far."""
        while True:
            m = self.box.get(timeout=timeout)
            self.seen.append(m)
            if pred(m):
                return self.seen

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def publish(settings, topic: str, payload: bytes, retain: bool = False) -> None:
    c = mqtt_mod.connect_client(settings)
    try:
        c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)  # the broker has handled it
    finally:
        c.disconnect()
        c.loop_stop()


def ids(messages) -> list:
    out = []
    for topic, payload, _ in messages:
        try:
            out.append(json.loads(payload).get("id"))
        except (ValueError, AttributeError):
            out.append(payload.decode(errors="replace"))
    return out


@pytest.fixture(scope="module")
def home(locked_broker, acl_dir):
    emus = {d: emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, as_user(locked_broker, acl_dir, d), d)
            for d in ("kitchen", "hall")}
    yield emus
    for e in emus.values():
        e.stop()


def test_anonymous_and_wrong_passwords_are_refused(locked_broker):
    with pytest.raises(mqtt_mod.MqttError, match="refused the connection"):
        mqtt_mod.connect_client(locked_broker.url)
    r = squeezeedge("mqtt", "send", "x", "--device", "hall", "--broker",
                    f"mqtt://hass:{PASSWORD_IN_URL}@127.0.0.1:{locked_broker.port}")
    assert r.returncode == 2 and "refused the connection" in r.stderr
    assert "carries a password" in r.stderr  # a password in a URL works, with a warning...
    assert PASSWORD_IN_URL not in r.stdout + r.stderr  # ... and is never printed


def test_the_controller_commands_every_device(locked_broker, acl_dir, home):
    for device in home:
        r = squeezeedge("mqtt", "send", "turn on the light", "--device", device, "--broker", locked_broker.url,
                        "--credentials", creds(acl_dir, "hass"))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["text"] == "turn on the light"


def test_a_device_cannot_command_rename_or_impersonate_another(locked_broker, acl_dir, home, tmp_path):
    hass, kitchen = as_user(locked_broker, acl_dir, "hass"), as_user(locked_broker, acl_dir, "kitchen")
    hall = mqtt_mod.topics("hall")
    names = tmp_path / "home.json"
    assert squeezeedge("names", "example", "-o", str(names)).returncode == 0
    pushed = squeezeedge("names", "push", str(names), "--device", "hall", "--broker", locked_broker.url,
                         "--credentials", creds(acl_dir, "hass"))
    assert pushed.returncode == 0, pushed.stderr
    watch = Watch(hass, [hall["result"], hall["status"]])
    try:
        watch.until(lambda m: m[0] == hall["status"] and m[1] == b"online")  # the retained status
        # the kitchen device (a valid user) tries hall's request, result, status and discovery topics
        publish(kitchen, hall["cmd"], b'{"id":"forged-cmd","text":"unlock the front door"}')
        publish(kitchen, hall["cmd"], b'{"id":"forged-names","cmd":"names_clear"}')
        publish(kitchen, hall["result"], b'{"id":"forged-result","intent":"HassTurnOn"}')
        publish(kitchen, hall["status"], b"offline", retain=True)
        publish(kitchen, hall["discovery"], b'{"name":"forged-discovery"}', retain=True)
        # then the controller asks: the broker handled the forgeries first, and dropped them
        with mqtt_mod.MqttTransport(hass, "hall") as t:
            count = t.command("names")["names"]
            assert count > 0  # names_clear never reached the device
            publish(hass, hall["cmd"], b'{"id":"probe","cmd":"ping"}')
            seen = watch.until(lambda m: b'"probe"' in m[1])
        assert not any(b"forged" in m[1] for m in seen), ids(seen)
        assert b"offline" not in [m[1] for m in seen if m[0] == hall["status"]]
        assert mqtt_mod.retained(hass, hall["status"], 5) == "online"
        assert "forged" not in mqtt_mod.retained(hass, hall["discovery"], 5)  # still the device's own
    finally:
        watch.close()


def test_a_device_cannot_read_another_devices_requests(locked_broker, acl_dir, home):
    hass, kitchen = as_user(locked_broker, acl_dir, "hass"), as_user(locked_broker, acl_dir, "kitchen")
    spy = Watch(kitchen, [mqtt_mod.topics("hall")["cmd"], mqtt_mod.topics("kitchen")["cmd"]])
    try:
        publish(hass, mqtt_mod.topics("hall")["cmd"], b'{"id":"secret-for-hall","cmd":"ping"}')
        publish(hass, mqtt_mod.topics("kitchen")["cmd"], b'{"id":"for-kitchen","cmd":"ping"}')
        seen = spy.until(lambda m: b"for-kitchen" in m[1])
        assert not any(b"secret-for-hall" in m[1] for m in seen)
    finally:
        spy.close()


def test_a_retained_command_is_not_run_at_reconnect(locked_broker, acl_dir, home):
    hass = as_user(locked_broker, acl_dir, "hass")
    t = mqtt_mod.topics("kitchen")
    watch = Watch(hass, [t["result"]])
    try:
        # published while the device is subscribed: a live request, run once, as it should be
        publish(hass, t["cmd"], b'{"id":"retained-old","text":"turn on the oven"}', retain=True)
        watch.until(lambda m: b"retained-old" in m[1])
        home["kitchen"].stop()
        home["kitchen"] = emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, as_user(locked_broker, acl_dir, "kitchen"),
                                                       "kitchen")
        publish(hass, t["cmd"], b'{"id":"after-reconnect","cmd":"ping"}')
        seen = watch.until(lambda m: b"after-reconnect" in m[1])
        assert ids(seen) == ["retained-old", "after-reconnect"]  # the broker replayed it at the new
        # subscription (retain flag set) and the device did not run it a second time
    finally:
        publish(hass, t["cmd"], b"", retain=True)  # clear it
        watch.close()


def test_an_expired_request_is_never_run(locked_broker, acl_dir, home):
    """MQTT 5 message expiry: a request queued for a device that is away is dropped by the broker
    once its sender stopped waiting; one without expiry is delivered when the device is back."""
    import time

    hass = as_user(locked_broker, acl_dir, "hass")
    t = mqtt_mod.topics("hall")
    watch = Watch(hass, [t["result"]])
    home["hall"].stop()  # its persistent session keeps queueing QoS 1 requests
    try:
        sender = mqtt_mod.connect_client(hass)
        assert sender.se_mqtt5
        mqtt_mod.publish_request(sender, t["cmd"], b'{"id":"stale","text":"turn on the oven"}', 1).wait_for_publish(10)
        mqtt_mod.publish_request(sender, t["cmd"], b'{"id":"kept","cmd":"ping"}', None).wait_for_publish(10)
        sender.disconnect()
        sender.loop_stop()
        time.sleep(2.5)  # the device is away longer than the first request's 1 s expiry
        home["hall"] = emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, as_user(locked_broker, acl_dir, "hall"), "hall")
        publish(hass, t["cmd"], b'{"id":"after","cmd":"ping"}')
        seen = watch.until(lambda m: b'"after"' in m[1])
        assert ids(seen) == ["kept", "after"]
    finally:
        watch.close()


def test_the_bridge_forwards_no_request_older_than_its_bound_nor_a_retained_one(locked_broker, acl_dir):
    """The bridge is the serial board "board" on the broker (it logs in as that device). With a
    bound below zero every request is too old: answered "expired" with its id, never forwarded."""
    hass = as_user(locked_broker, acl_dir, "hass")
    t = mqtt_mod.topics("board")
    watch = Watch(hass, [t["result"]])
    publish(hass, t["cmd"], b'{"id":"retained-old","text":"turn on the oven"}', retain=True)
    serial = start_emulator(DEFAULT_MODEL, "tcp:0")
    try:
        with bridge_mod.Bridge(serial.url, as_user(locked_broker, acl_dir, "board"), "board", max_request_age=-1) as b, \
                mqtt_mod.MqttTransport(hass, "board") as client:
            reply = client.request({"text": "turn on the oven"})
            assert reply["code"] == "expired"  # and it carried the request id: request() matched it by id
            assert b.forwarded == 0 and b.expired == 1
        seen = watch.until(lambda m: b'"expired"' in m[1])
        assert "retained-old" not in ids(seen)  # replayed to the bridge at subscription, and dropped
    finally:
        publish(hass, t["cmd"], b"", retain=True)
        watch.close()
        serial.stop()


# ---- secrets stay out of argv and output ----

def cmdlines() -> str:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                out.append((p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return "\n".join(out)


def test_no_password_on_any_command_line(locked_broker, acl_dir, home):
    secret = password(acl_dir, "kitchen")
    assert home["kitchen"].alive()  # an emulator started with the kitchen's credentials
    proc = subprocess.Popen([sys.executable, "-m", "squeezeedge", "mqtt", "listen", "--device", "+", "--broker",
                             locked_broker.url, "--credentials", creds(acl_dir, "hass"), "--count", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline()  # connected, logged in, printing: its credentials are in use
        everything = cmdlines()
        assert str(home["kitchen"].proc.pid) and secret not in everything
        assert password(acl_dir, "hass") not in everything
    finally:
        proc.wait(30)


def test_emulate_takes_credentials_from_the_environment_not_argv(locked_broker, acl_dir):
    env = dict(os.environ, SQUEEZEEDGE_MQTT_USERNAME="kitchen", SQUEEZEEDGE_MQTT_PASSWORD=password(acl_dir, "kitchen"))
    proc = subprocess.Popen([str(build_emulator(prepare_package(DEFAULT_MODEL), mqtt=True)), "--broker",
                             locked_broker.url, "--device", "kitchen"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert line.startswith("SE_READY mqtt"), line
        assert password(acl_dir, "kitchen") not in Path(f"/proc/{proc.pid}/cmdline").read_text(errors="replace")
    finally:
        proc.terminate()
        proc.wait(10)


def test_credentials_files_that_others_can_read_are_refused(locked_broker, acl_dir, tmp_path, emulator_binary):
    leaky = tmp_path / "mqtt.toml"
    leaky.write_text(f'username = "hass"\npassword = "{password(acl_dir, "hass")}"\n')
    leaky.chmod(0o644)
    r = squeezeedge("mqtt", "send", "x", "--device", "hall", "--broker", locked_broker.url, "--credentials", str(leaky))
    assert r.returncode == 2 and f"run `chmod 600 {leaky}`" in r.stderr
    assert password(acl_dir, "hass") not in r.stdout + r.stderr
    proc = subprocess.run([str(emulator_binary), "--broker", locked_broker.url, "--device", "hall", "--config",
                           str(leaky)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and f"run `chmod 600 {leaky}`" in proc.stderr


def test_wrong_credentials_are_not_echoed(locked_broker, acl_dir, tmp_path):
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(f'username = "hass"\npassword = "{PASSWORD_IN_URL}"\n')
    wrong.chmod(0o600)
    names = tmp_path / "home.json"
    assert squeezeedge("names", "example", "-o", str(names)).returncode == 0
    serial = start_emulator(DEFAULT_MODEL, "tcp:0")
    try:
        for args in (["mqtt", "send", "x", "--device", "hall"], ["mqtt", "listen", "--count", "1"],
                     ["names", "push", str(names), "--device", "hall"],
                     ["classify", "--engine", "device", "--device", "hall", "x"],
                     ["bridge", "--port", serial.url, "--device", "board"],
                     ["emulate", "--device", "hall"]):
            r = squeezeedge(*args, "--broker", locked_broker.url, "--credentials", str(wrong))
            assert r.returncode != 0 and "refused the connection" in r.stderr, (args, r.stderr)
            assert PASSWORD_IN_URL not in r.stdout + r.stderr
    finally:
        serial.stop()


def test_emulate_over_tls_with_a_credentials_file(tls_broker, pki, tmp_path):
    """`squeezeedge emulate --broker mqtts://... --cafile --credentials FILE`: the tool and the
    emulator it starts serve over TLS, and the password is on no command line."""
    secret = "Emulate-Secret-4-TLS"
    cred = tmp_path / "device.toml"
    cred.write_text(f'username = "tlsemu"\npassword = "{secret}"\n')
    cred.chmod(0o600)
    proc = subprocess.Popen([sys.executable, "-m", "squeezeedge", "emulate", "--device", "tlsemu",
                             *tls_args(tls_broker, pki), "--credentials", str(cred)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "emulator serving device 'tlsemu' on mqtts://localhost:" in line, line + proc.stderr.read()
        assert secret not in cmdlines()
        sent = squeezeedge("mqtt", "send", "turn on the light", "--device", "tlsemu", *tls_args(tls_broker, pki))
        assert json.loads(sent.stdout)["text"] == "turn on the light", sent.stderr
    finally:
        proc.send_signal(__import__("signal").SIGINT)
        out, err = proc.communicate(timeout=60)
    assert secret not in line + out + err


# ---- where credentials come from (the settings object every tool uses) ----

def private(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def test_credentials_sources_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("SQUEEZEEDGE_MQTT_USERNAME", raising=False)
    monkeypatch.delenv("SQUEEZEEDGE_MQTT_PASSWORD", raising=False)
    assert broker_settings("mqtt://h").username is None  # nothing anywhere: anonymous

    (tmp_path / "config" / "squeezeedge").mkdir(parents=True)
    private(tmp_path / "config" / "squeezeedge" / "mqtt.toml", 'username = "fromhome"\npassword = "p-home"\n')
    assert (broker_settings("mqtt://h").username, broker_settings("mqtt://h").password) == ("fromhome", "p-home")

    monkeypatch.setenv("SQUEEZEEDGE_MQTT_USERNAME", "fromenv")
    monkeypatch.setenv("SQUEEZEEDGE_MQTT_PASSWORD", "p-env")
    assert broker_settings("mqtt://h").username == "fromenv"

    given = private(tmp_path / "given.toml", 'username = "fromfile"\npassword = "p \\"quoted\\""\n')
    s = broker_settings("mqtt://h", credentials=given)
    assert (s.username, s.password) == ("fromfile", 'p "quoted"')

    s = broker_settings("mqtt://fromfile@h", credentials=given)  # the URL names the user, the file has the password
    assert (s.username, s.password) == ("fromfile", 'p "quoted"')

    s = broker_settings("mqtt://fromurl:p-url@h", credentials=given)
    assert (s.username, s.password) == ("fromurl", "p-url")
    assert "carries a password" in capsys.readouterr().err
    assert "p-url" not in repr(s)  # not in a traceback's locals either


def test_ask_password_prompts_without_echo(monkeypatch):
    monkeypatch.delenv("SQUEEZEEDGE_MQTT_USERNAME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")
    asked = []

    def prompt(text, echo):
        asked.append((text, echo))
        return "hass" if echo else "typed-secret"

    s = broker_settings("mqtts://broker.lan", ask_password=True, prompt=prompt)
    assert (s.username, s.password) == ("hass", "typed-secret")
    assert [echo for _, echo in asked] == [True, False]  # the password is not echoed


def test_every_printed_url_and_known_password_is_masked():
    from squeezeedge.broker import MqttError, mask

    broker_settings("mqtt://u:Hunter2-Secret@h")
    assert mask("connect mqtt://u:Hunter2-Secret@h:1883 failed") == "connect mqtt://u:***@h:1883 failed"
    assert "Hunter2-Secret" not in str(MqttError("paho said: bad auth for Hunter2-Secret"))


def test_insecure_hostname_opt_out_is_loud_and_tls_only(capsys):
    from squeezeedge.broker import MqttError

    broker_settings("mqtts://broker.lan", check_hostname=False)
    assert "NOT checked against the host name" in capsys.readouterr().err
    with pytest.raises(MqttError, match="use mqtts://broker.lan:1883"):
        broker_settings("mqtt://broker.lan", check_hostname=False)


def test_password_hashes_are_what_mosquitto_passwd_writes(tmp_path):
    """`mqtt acl` hashes passwords itself (a mosquitto_passwd -b call would put them in its argv);
    with mosquitto_passwd's own salt it must write mosquitto_passwd's own line."""
    import base64

    from squeezeedge.mqtt_acl import password_hash

    plain = tmp_path / "passwd"
    plain.write_text("hass:Sample-Pass-123\n")
    subprocess.run([need("mosquitto_passwd"), "-U", str(plain)], check=True, capture_output=True)  # hashes in place
    user, theirs = plain.read_text().strip().split(":", 1)
    salt = base64.b64decode(theirs.split("$")[3])
    assert (user, password_hash("Sample-Pass-123", salt)) == ("hass", theirs)


def test_the_emulator_warns_about_a_password_on_its_command_line(locked_broker, acl_dir, emulator_binary):
    url = f"mqtt://kitchen:{password(acl_dir, 'kitchen')}@127.0.0.1:{locked_broker.port}"
    proc = subprocess.Popen([str(emulator_binary), "--broker", url, "--device", "kitchen-url"], stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stderr.readline()
        assert "the --broker URL carries a password, which `ps` shows to every user" in line
        assert password(acl_dir, "kitchen") not in line
    finally:
        proc.kill()
        proc.wait()
