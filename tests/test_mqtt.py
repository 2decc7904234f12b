"""The host emulator over MQTT, end to end with real brokers: mosquitto (started here on a free
port; a missing mosquitto fails with the apt-get line to run) and the in-process amqtt broker. Answers equal the
integer reference; retained status with a last will; Home Assistant discovery; a broker restart
loses no QoS 1 request."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

import fw_support as fw
import squeezeedge.mqtt as mqtt_mod
from squeezeedge.cli import mqtt as mqtt_cli
from squeezeedge import emulator as emulator_mod
from squeezeedge.classify import classify_line
from squeezeedge.net import free_port
from squeezeedge.models.engine import DEFAULT_MODEL, ReferenceEngine
from squeezeedge.models.model_file import IntModel


@pytest.fixture(scope="module", autouse=True)
def libmosquitto_dev():
    assert Path("/usr/include/mosquitto.h").exists(), \
        "libmosquitto-dev is not installed (the MQTT emulator needs it): apt-get install -y libmosquitto-dev"


N_SENTENCES = 120


class Mosquitto:
    """A mosquitto broker on 127.0.0.1:port with persistence in a temp directory."""

    def __init__(self, persistence: bool = True):
        self.port = free_port()
        # not under pytest's 0700 tmp tree: mosquitto started as root drops to the mosquitto user
        tmp = self.dir = Path(tempfile.mkdtemp(prefix="se-mosquitto-"))
        self.dir.chmod(0o777)
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             f"persistence {'true' if persistence else 'false'}\nset_tcp_nodelay true\n"
                             f"persistence_location {tmp}/\nautosave_interval 1\n")
        self.proc: subprocess.Popen | None = None
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "Mosquitto":
        self.proc = subprocess.Popen([shutil.which("mosquitto"), "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                assert self.proc.poll() is None, "mosquitto exited at start"
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:  # SIGTERM: mosquitto saves its sessions to the persistence file
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory):
    _mosquitto_binary()
    b = Mosquitto().start()
    yield b
    b.remove()


@pytest.fixture(scope="module")
def amqtt_broker():
    b = mqtt_mod.start_local_broker()
    yield b
    b.stop()


@pytest.fixture(scope="module", params=["mosquitto", "amqtt"])
def broker_url(request):
    return request.getfixturevalue("mosquitto" if request.param == "mosquitto" else "amqtt_broker").url


@pytest.fixture(scope="module")
def ref():
    return ReferenceEngine(IntModel.load(DEFAULT_MODEL))


def sentences() -> list[str]:
    texts = fw.held_out_texts()
    step = max(1, len(texts) // N_SENTENCES)
    return texts[::step][:N_SENTENCES]


class Collector:
    """A paho client that records every message of some topics."""

    def __init__(self, url: str, topics: list[str], client_id: str = "", clean: bool = True):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        addr = mqtt_mod.parse_broker_url(url)
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or f"t-{os.getpid()}-{id(self)}",
                                  clean_session=clean)
        self.subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def _on_message(self, c, u, m):
        with self.lock:
            self.messages.append((m.topic, bytes(m.payload), bool(m.retain)))

    def wait_for(self, pred, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                hits = [m for m in self.messages if pred(m)]
            if hits:
                return hits
            time.sleep(0.02)
        return []

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_answers_equal_reference(broker_url, ref):
    texts = sentences()
    assert len(texts) >= 100
    device = "eq" + str(abs(hash(broker_url)) % 10000)
    engine = mqtt_mod.MqttEngine(mqtt_mod.MqttTransport(broker_url, device), "device",
                                 emulator=emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, broker_url, device))
    try:
        rtts = []
        for text in texts:
            data = text.encode()
            t0 = time.perf_counter()
            got = classify_line(engine, data)
            rtts.append(time.perf_counter() - t0)
            assert got == classify_line(ref, data), text
        # protocol extras over MQTT: a device command, a plain-text payload and an error answer
        assert engine.info()["device"] == "host-emulator"
        assert engine.transport.classify_json(b"   ")["code"] == "empty"
        print(f"\n{broker_url}: MQTT round trip median {1000 * statistics.median(rtts):.2f} ms over {len(rtts)} requests")
    finally:
        engine.close()


def test_names_pushed_over_mqtt_are_used(broker_url):
    """`squeezeedge names push --broker`: the home's names reach the device over MQTT."""
    from squeezeedge.models.entities import home_names
    from squeezeedge.names import push_names

    names = home_names("all")
    named = ReferenceEngine(IntModel.load(DEFAULT_MODEL), names)
    device = "nm" + str(abs(hash(broker_url)) % 10000)
    engine = mqtt_mod.MqttEngine(mqtt_mod.MqttTransport(broker_url, device), "device",
                                 emulator=emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, broker_url, device))
    try:
        assert push_names(engine.transport, names) == len(named.encoder.gazetteer)
        for text in sentences()[:40]:
            assert classify_line(engine, text.encode()) == classify_line(named, text.encode()), text
    finally:
        engine.close()


def test_status_will_and_discovery(mosquitto):
    device = "willtest"
    t = mqtt_mod.topics(device)
    watch = Collector(mosquitto.url, [t["status"], t["discovery"]])
    emu = emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, mosquitto.url, device)
    try:
        assert mqtt_mod.retained(mosquitto.url, t["status"], 5) == "online"
        config = json.loads(mqtt_mod.retained(mosquitto.url, t["discovery"], 5))
        assert config["state_topic"] == t["result"] and config["json_attributes_topic"] == t["result"]
        assert config["availability_topic"] == t["status"]
        assert config["value_template"] == "{{ value_json.intent }}"
        assert config["unique_id"] == f"squeezeedge_{device}_intent"
        assert config["device"]["identifiers"] == [f"squeezeedge_{device}"]
        assert {"name", "model", "sw_version"} <= set(config["device"])
        emu.proc.send_signal(signal.SIGKILL)  # no goodbye: the broker publishes the last will
        emu.proc.wait(10)
        assert watch.wait_for(lambda m: m[0] == t["status"] and m[1] == b"offline")
        assert mqtt_mod.retained(mosquitto.url, t["status"], 5) == "offline"
    finally:
        emu.stop()
        watch.close()


def test_a_retained_request_is_never_run_by_a_device_that_subscribes_later(mosquitto):
    """The broker replays a retained request to every new subscription: the device must not run
    an old command again at each (re)connect."""
    dev = f"ret{os.getpid()}"
    t = mqtt_mod.topics(dev)
    col = Collector(mosquitto.url, [t["result"]])
    col.client.publish(t["cmd"], b'{"id":"old","text":"turn on the light"}', qos=1, retain=True).wait_for_publish(10)
    emu = emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, mosquitto.url, dev)
    try:
        col.client.publish(t["cmd"], b'{"id":"new","cmd":"ping"}', qos=1).wait_for_publish(10)
        assert col.wait_for(lambda m: b'"new"' in m[1])
        time.sleep(0.3)
        assert [json.loads(m[1])["id"] for m in col.messages] == ["new"]
    finally:
        col.client.publish(t["cmd"], b"", qos=1, retain=True).wait_for_publish(10)  # clear it
        col.close()
        emu.stop()


def test_clean_stop_says_offline(amqtt_broker):
    device = "cleanstop"
    t = mqtt_mod.topics(device)
    emu = emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, amqtt_broker.url, device)
    try:
        assert mqtt_mod.retained(amqtt_broker.url, t["status"], 5) == "online"
    finally:
        assert emu.stop() == 0
    assert mqtt_mod.retained(amqtt_broker.url, t["status"], 5) == "offline"


def test_broker_restart_loses_no_request(ref):
    _mosquitto_binary()
    broker = Mosquitto().start()
    device = "restart"
    t = mqtt_mod.topics(device)
    emu = emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, broker.url, device)
    tester = None
    try:
        tester = Collector(broker.url, [t["result"]], client_id="se-test-restart", clean=False)
        tester.client.publish(t["cmd"], json.dumps({"id": "warmup", "text": "turn on the light"}), qos=1)
        assert tester.wait_for(lambda m: b'"warmup"' in m[1])
        tester.close()
        # Freeze the emulator so that it certainly is away while the requests are published,
        # restart the broker (sessions persist), publish, then let the emulator reconnect.
        os.kill(emu.proc.pid, signal.SIGSTOP)
        broker.stop()
        broker.start()
        tester = Collector(broker.url, [t["result"]], client_id="se-test-restart", clean=False)
        texts = sentences()[:30]
        for i, text in enumerate(texts):
            assert tester.client.publish(t["cmd"], json.dumps({"id": i, "text": text}), qos=1).rc == 0
        os.kill(emu.proc.pid, signal.SIGCONT)
        want = set(range(len(texts)))

        def answered():
            with tester.lock:
                return {json.loads(m[1]).get("id") for m in tester.messages}

        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not want <= answered():
            time.sleep(0.05)
        time.sleep(0.5)  # time for a duplicate to show up
        with tester.lock:
            replies = [json.loads(m[1]) for m in tester.messages]
        ids = [r.get("id") for r in replies]
        assert sorted(ids) == sorted(want), f"{emu.stderr_lines} missing {want - set(ids)}, duplicates {len(ids) - len(set(ids))}"
        for r in replies:
            rid = r.pop("id")
            r.pop("time_us")
            assert r == classify_line(ref, texts[rid].encode())
        assert any("reconnected" in line for line in emu.stderr_lines)
        assert mqtt_mod.retained(broker.url, t["status"], 5) == "online"
    finally:
        if emu.alive():
            os.kill(emu.proc.pid, signal.SIGCONT)
        emu.stop()
        if tester:
            tester.close()
        broker.remove()


def test_cli_send_listen_and_errors(amqtt_broker, capsys):
    device = "clitest"
    emu = emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, amqtt_broker.url, device)
    try:
        import argparse

        parser = argparse.ArgumentParser()
        mqtt_cli.add_parser(parser.add_subparsers())
        args = parser.parse_args(["mqtt", "send", "turn off the kitchen lights", "--device", device,
                                  "--broker", amqtt_broker.url])
        assert args.func(args) == 0
        reply = json.loads(capsys.readouterr().out)
        assert reply["text"] == "turn off the kitchen lights" and "intent" in reply
        args = parser.parse_args(["mqtt", "listen", "--device", device, "--broker", amqtt_broker.url,
                                  "--count", "1", "--timeout", "5"])
        assert args.func(args) == 0  # the retained status
        line = json.loads(capsys.readouterr().out)
        assert line == {"topic": f"squeezeedge/{device}/status", "payload": "online", "retained": True}
        # an unreachable broker: one clear line, exit status 2
        args = parser.parse_args(["mqtt", "send", "x", "--device", device, "--broker", f"mqtt://127.0.0.1:{free_port()}"])
        assert args.func(args) == 2
        err = capsys.readouterr().err.strip()
        assert "cannot reach the MQTT broker" in err and "\n" not in err
    finally:
        emu.stop()


def test_broker_urls_and_credentials(tmp_path):
    a = mqtt_mod.parse_broker_url("mqtt://us%40r:p%3Ass@example.org:1884")
    assert (a.host, a.port, a.username, a.password) == ("example.org", 1884, "us@r", "p:ss")
    assert mqtt_mod.parse_broker_url("localhost").port == 1883
    tls = mqtt_mod.parse_broker_url("mqtts://broker.lan")
    assert (tls.tls, tls.port, tls.url) == (True, 8883, "mqtts://broker.lan:8883")
    for bad in ("ws://h:8883", "mqtt://:1883", "mqtt://h:99999"):
        with pytest.raises(mqtt_mod.MqttError):
            mqtt_mod.parse_broker_url(bad)
    with pytest.raises(mqtt_mod.MqttError):
        mqtt_mod.topics("a/b")
    args, conf = emulator_mod.emulator_mqtt_args("mqtt://u:secret@127.0.0.1:1", "dev")
    try:
        assert "secret" not in " ".join(args)  # credentials go in a private file, not argv
        assert oct(os.stat(conf).st_mode & 0o777) == "0o600"
        assert Path(conf).read_text() == 'username = "u"\npassword = "secret"\n'
    finally:
        os.unlink(conf)


def test_credentials_from_url_and_config_file(tmp_path):
    """A broker that wants a password: the tools take it from the URL, the emulator from its
    --config file (broker, device, username, password) or, via the tools, a private temp file."""
    _mosquitto_binary()
    assert shutil.which("mosquitto_passwd"), "mosquitto_passwd is missing: apt-get install -y mosquitto"
    broker = Mosquitto()
    pw = broker.dir / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "se", "s3cr:t@"], check=True, capture_output=True)
    pw.chmod(0o644)
    broker.conf.write_text(broker.conf.read_text().replace("allow_anonymous true", f"allow_anonymous false\npassword_file {pw}"))
    broker.start()
    good = f"mqtt://se:s3cr%3At%40@127.0.0.1:{broker.port}"
    emu = proc = None
    try:
        with pytest.raises(mqtt_mod.MqttError, match="refused"):
            mqtt_mod.connect_client(f"mqtt://se:wrong@127.0.0.1:{broker.port}")
        emu = emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, good, "authurl")
        with mqtt_mod.MqttTransport(good, "authurl") as t:
            assert t.classify_json(b"turn on the light")["text"] == "turn on the light"
        emu.stop()
        from squeezeedge.emulator import build_emulator, prepare_package

        binary = build_emulator(prepare_package(DEFAULT_MODEL), mqtt=True)
        conf = tmp_path / "device.conf"
        conf.write_text(f"# test device\nbroker = mqtt://127.0.0.1:{broker.port}\ndevice = authconf\n"
                        "username = se\npassword = s3cr:t@\n")
        conf.chmod(0o600)  # the emulator refuses a password file that others can read
        from squeezeedge.emulator import Emulator

        emu = Emulator(binary, "mqtt", args=["--config", str(conf)]).start()
        with mqtt_mod.MqttTransport(good, "authconf") as t:
            assert "error" not in t.command("ping")
            assert "intent" in t.classify_json(b"turn off the fan")
        emu.stop()
        conf.write_text(conf.read_text().replace("password = s3cr:t@", "password = nope"))
        proc = subprocess.Popen([str(binary), "--config", str(conf)], stderr=subprocess.PIPE, text=True)
        line = proc.stderr.readline()
        assert "refused the connection" in line and "nope" not in line, line
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        if emu is not None:
            emu.stop()
        broker.remove()


def test_emulate_cli_with_local_broker():
    """`squeezeedge emulate --mqtt --device ID`: an in-process broker, its URL printed, the emulator on it."""
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "squeezeedge", "emulate", "--mqtt", "--device", "clidev"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("MQTT broker (in-process amqtt) listening on mqtt://127.0.0.1:"), first
        url = first.split()[-1]
        assert "clidev" in proc.stdout.readline()
        with mqtt_mod.MqttTransport(url, "clidev") as t:
            assert t.classify_json(b"turn on the light")["text"] == "turn on the light"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0  # emulator and broker stop within bounded timeouts (a loaded CI box is slow)


# ---- issue 15: a broker restart under load; streaming stdin ----

N_LOAD = 2000


def _mosquitto_binary() -> str:
    path = shutil.which("mosquitto")
    assert path, "the mosquitto binary is missing: apt-get install -y mosquitto"
    return path


def _restart_under_load(persistence: bool) -> tuple[list[dict], list[str], int]:
    """`squeezeedge mqtt send` of N_LOAD QoS 1 requests from a pipe. After the first half is
    answered the device is frozen and the broker restarts; the second half is published while the
    device is away (so it waits at the broker), then the device thaws. Returns the answer lines,
    the texts sent and the exit status."""
    import sys

    _mosquitto_binary()
    broker = Mosquitto(persistence=persistence).start()
    device = f"load{int(persistence)}x{os.getpid()}"
    t = mqtt_mod.topics(device)
    emu = emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, broker.url, device)
    texts = [sentences()[i % N_SENTENCES] for i in range(N_LOAD)]
    proc = subprocess.Popen([sys.executable, "-m", "squeezeedge", "mqtt", "send", "--device", device,
                             "--broker", broker.url, "--timeout", "10"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    spy = None
    try:
        half = N_LOAD // 2
        proc.stdin.write(b"".join(x.encode() + b"\n" for x in texts[:half]))
        proc.stdin.flush()
        deadline = time.monotonic() + 300
        while len(out) < half:
            assert time.monotonic() < deadline and proc.poll() is None, f"mqtt send answered {len(out)} of {half}"
            time.sleep(0.05)
        os.kill(emu.proc.pid, signal.SIGSTOP)  # away: what is published from now on waits at the broker
        broker.stop()
        broker.start()
        spy = Collector(broker.url, [t["cmd"]])
        proc.stdin.write(b"".join(x.encode() + b"\n" for x in texts[half:]))
        proc.stdin.close()
        deadline = time.monotonic() + 120
        while len(spy.messages) < 20:
            assert time.monotonic() < deadline, "mqtt send published nothing after the broker restarted"
            time.sleep(0.05)
        os.kill(emu.proc.pid, signal.SIGCONT)
        status = proc.wait(600)
        reader.join(60)
        return [json.loads(line) for line in out], texts, status
    finally:
        if proc.poll() is None:
            proc.kill()
        if spy is not None:
            spy.close()
        if emu.alive():
            os.kill(emu.proc.pid, signal.SIGCONT)
        emu.stop()
        broker.remove()


def test_broker_restart_with_persistence_loses_none_of_2000_requests():
    answers, texts, status = _restart_under_load(persistence=True)
    print(f"\nwith persistence: {sum('intent' in a for a in answers)} of {len(texts)} answered")
    assert len(answers) == len(texts)
    assert [a.get("code") for a in answers if "error" in a] == [], [a.get("line") for a in answers if "error" in a]
    assert [a["text"] for a in answers] == texts
    assert status == 0


def test_broker_restart_without_persistence_reports_every_lost_request():
    """Messages the broker held die with it; each request left unanswered comes back as an error
    line with code "lost", its id and its input line, and the exit status is not 0."""
    answers, texts, status = _restart_under_load(persistence=False)
    assert len(answers) == len(texts)  # one line per request: its answer or its loss
    lost = [a for a in answers if a.get("code") == "lost"]
    print(f"\nwithout persistence: {len(lost)} of {len(texts)} requests lost, each reported by id")
    assert lost, "the frozen device's queued requests should have died with the broker"
    assert all(a["id"] and a["text"] == texts[a["line"] - 1] for a in lost)
    assert [a["line"] for a in lost] == sorted({a["line"] for a in lost})
    assert [a["text"] for a in answers] == texts
    assert status == 1


def test_mqtt_send_streams_stdin(amqtt_broker):
    import sys

    device = "streamer"
    emu = emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, amqtt_broker.url, device)
    proc = subprocess.Popen([sys.executable, "-m", "squeezeedge", "mqtt", "send", "--device", device,
                             "--broker", amqtt_broker.url], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        for text in ["turn off the kitchen lights", "pause the music"]:
            proc.stdin.write(text.encode() + b"\n")
            proc.stdin.flush()
            box: list[bytes] = []
            reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
            reader.start()
            reader.join(120)
            assert box and json.loads(box[0])["text"] == text, "no answer while stdin stayed open"
        proc.stdin.close()
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        emu.stop()
