"""examples/micropython/main.py, the MicroPython example application, end to end: the real unix
MicroPython runs it (importing the native squeezeedge.mpy for x64, talking umqtt to a real
mosquitto), and the C host emulator serves another device id on the same broker. Both get the
same requests; their answers must be the same JSON (minus the time each measured): held-out
sentences with and without the example home's names, commands, bad input. Also the retained
status with its last will, the Home Assistant discovery config, and that a retained request is
not run again when the app reconnects.

Nothing is skipped: a missing tool fails with what to install."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client  # noqa: F401 - a clear ImportError (not a skip) when paho is missing
import pytest

import fw_support as fw
from squeezeedge import mqtt as mqtt_mod
from squeezeedge import emulator as emulator_mod
from squeezeedge.models.engine import DEFAULT_MODEL
from squeezeedge.names import example_home, push_names
from test_mqtt import Collector, Mosquitto

APP = Path(__file__).resolve().parents[1] / "examples" / "micropython" / "main.py"
N_SENTENCES = 120
MODEL_NAME = "SqueezeEdge MicroPython linux"  # main.py: "SqueezeEdge MicroPython " + sys.platform
VERSION = "0.1.0"


def require_tools() -> None:
    missing = [(what, how) for what, ok, how in [
        ("mosquitto", shutil.which("mosquitto"), "apt-get install mosquitto"),
        ("libmosquitto headers (the C emulator's MQTT build)", Path("/usr/include/mosquitto.h").exists(),
         "apt-get install libmosquitto-dev"),
    ] if not ok]
    if missing:
        pytest.fail("; ".join(f"{w} is missing: {h}" for w, h in missing), pytrace=False)


@pytest.fixture(scope="module")
def broker():
    require_tools()
    b = Mosquitto().start()
    yield b
    b.remove()


@pytest.fixture(scope="module")
def micropython():
    """(the unix micropython binary, its environment with squeezeedge.mpy and umqtt importable)."""
    from squeezeedge.micropython import natmod, ports

    binary = ports.unix()
    env = ports.unix_env(first=[natmod.build_native_module(None, "x64").directory])
    return binary, env


class App:
    """examples/micropython/main.py in the unix MicroPython, with a config.json in its own directory."""

    def __init__(self, micropython, broker: Mosquitto, device: str, workdir: Path, names=None):
        self.binary, self.env = micropython
        self.device = device
        self.dir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.json").write_text(json.dumps({"device": device, "broker": "127.0.0.1", "port": broker.port}))
        if names is not None:
            (workdir / "names.json").write_text(json.dumps(names.to_json(), indent=1))
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "App":
        self.lines = []
        ready = threading.Event()
        self.proc = subprocess.Popen([str(self.binary), str(APP)], cwd=self.dir, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)

        def pump(out):
            for line in out:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("ready:"):
                    ready.set()

        threading.Thread(target=pump, args=(self.proc.stdout,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"the MicroPython app did not get ready: {self.lines[-20:]}", pytrace=False)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(10)


class Peers:
    """One paho client that sends the same requests to devices and collects their answers."""

    def __init__(self, url: str, devices: list[str]):
        self.topics = {d: mqtt_mod.topics(d) for d in devices}
        self.col = Collector(url, [t["result"] for t in self.topics.values()])
        self.col.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one request at a time

    def results(self, device: str) -> list[bytes]:
        with self.col.lock:
            return [m[1] for m in self.col.messages if m[0] == self.topics[device]["result"]]

    def publish(self, device: str, payload: bytes, retain: bool = False) -> None:
        self.col.client.publish(self.topics[device]["cmd"], payload, qos=1, retain=retain).wait_for_publish(10)

    def wait_for(self, device: str, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.results(device)) < count and time.monotonic() < deadline:
            time.sleep(0.002)
        return self.results(device)

    def ask(self, device: str, payload: bytes, timeout: float = 10.0) -> bytes:
        """Send one request; its answer (the device answers in order: the next result message)."""
        n = len(self.results(device))
        self.publish(device, payload)
        deadline = time.monotonic() + timeout
        while len(self.results(device)) <= n:
            assert time.monotonic() < deadline, f"{device}: no answer to {payload[:80]!r}"
            time.sleep(0.002)
        got = self.results(device)
        assert len(got) == n + 1, f"{device}: more than one answer to {payload[:80]!r}"
        return got[n]

    def ask_many(self, device: str, texts: list[str], timeout: float = 60.0) -> list[dict]:
        """All texts at once as {"id": k, "text": ...}; the answers in the texts' order."""
        tag = f"{device}-{time.monotonic_ns()}"
        for k, text in enumerate(texts):
            self.col.client.publish(self.topics[device]["cmd"], json.dumps({"id": f"{tag}-{k}", "text": text}), qos=1)
        deadline = time.monotonic() + timeout
        while True:
            answers = {a["id"]: a for a in map(json.loads, self.results(device)) if str(a.get("id")).startswith(tag)}
            if len(answers) == len(texts) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert len(answers) == len(texts), f"{device} answered {len(answers)} of {len(texts)}"
        return [answers[f"{tag}-{k}"] for k in range(len(texts))]

    def close(self) -> None:
        self.col.close()


def without_time(answer: dict, *more: str) -> dict:
    return {k: v for k, v in answer.items() if k not in ("id", "time_us", *more)}


@pytest.fixture(scope="module")
def devices(broker, micropython, tmp_path_factory):
    """(peers, C device id, MicroPython device id): the emulator and the app (started with the
    example home in names.json) on one broker."""
    c_dev, mp_dev = f"c{os.getpid()}", f"mp{os.getpid()}"
    emu = emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, broker.url, c_dev)
    app = App(micropython, broker, mp_dev, tmp_path_factory.mktemp("app"), names=example_home())
    peers = None
    try:
        app.start()
        peers = Peers(broker.url, [c_dev, mp_dev])
        yield peers, c_dev, mp_dev, app
    finally:
        if peers:
            peers.close()
        app.kill()
        emu.stop()


def test_sentences_answered_like_the_c_emulator_with_and_without_names(devices, broker):
    peers, c_dev, mp_dev, app = devices
    texts = fw.held_out_test_sentences(N_SENTENCES)
    assert len(texts) >= 100
    # the app read names.json at start; the emulator is told the same names over MQTT
    with mqtt_mod.MqttTransport(broker.url, c_dev) as t:
        n_names = push_names(t, example_home())
    assert any(line == f"names: {n_names} from names.json" for line in app.lines), app.lines
    assert json.loads(peers.ask(mp_dev, b"/names"))["names"] == n_names

    named = {}
    for label in ("with names", "without names"):
        c_answers, mp_answers = peers.ask_many(c_dev, texts), peers.ask_many(mp_dev, texts)
        for text, c, m in zip(texts, c_answers, mp_answers):
            assert "error" not in c, c
            assert without_time(m) == without_time(c), f"{label}: {text!r}"
            assert isinstance(m["time_us"], int) and m["time_us"] >= 0
        named[label] = c_answers
        if label == "with names":
            for dev in (c_dev, mp_dev):
                assert json.loads(peers.ask(dev, b'{"id":"clr","cmd":"names_clear"}')) == {"id": "clr", "names": 0}
    changed = sum(without_time(a) != without_time(b) for a, b in zip(named["with names"], named["without names"]))
    assert changed > 0, "the names changed no answer: were they used?"

    # names sent over MQTT reach the app as they reach the emulator (squeezeedge names push)
    for dev in (c_dev, mp_dev):
        with mqtt_mod.MqttTransport(broker.url, dev) as t:
            t0 = time.perf_counter()
            assert push_names(t, example_home()) == n_names
            print(f"\n{dev}: {len(example_home())} names pushed in {time.perf_counter() - t0:.2f} s", end="")
    for text, c, m in zip(texts[:30], peers.ask_many(c_dev, texts[:30]), peers.ask_many(mp_dev, texts[:30])):
        assert without_time(m) == without_time(c), text
    print(f"\n{len(texts)} sentences x 2 (with and without {n_names} names): app == C emulator; "
          f"{changed} answers changed by the names")


# Requests whose answers must be equal, whole (only time_us aside).
SAME_ANSWER = [
    b"", b"   ", b"\n", b"\r\n", b"a" * 600, b"turn on the light\xff", b"\xff\xfe", b"lights \xe2\x82 off",
    b"\xed\xa0\x80 surrogate", b"\xc0\xaf overlong", b"turn on the light\r\n", b"turn off the fan\n",
    b"x" * 5000, b"/nope", b"/", b"/names_add", b"/ping", b"/version", b"/names_clear",
    b'{"id":7,"text":""}', b'{"id":1.50,"text":"turn off the lights"}', b'{"id":-2e+3,"text":"dim the lamp"}',
    b'{"id":true,"cmd":"ping"}', b'{"id":null,"cmd":"version"}', b'{"id":"\\u00e9x","cmd":"ping"}',
    b'{"text":"' + b"b" * 600 + b'"}', b'{"id":3,"text":"' + b"c" * 5000 + b'"}',
    b'{"id":4,"text":"a\\u00e9\\ud83d\\ude00\\u2028\\u0001\\"q\\" \\\\ \\/ \\t"}',
    b'{"id":5,"text":"raw \xff byte"}', b'{"id":6, "text" : "spaces" , "other": [1] }',
    b'{"id":1,"text":"abc}', b'{"id":1,"text":"\\ud800"}', b'{"id":1,"text":"\\udc00x"}', b'{"id":1,"text":"\\x"}',
    b'{"id":1,"text":"\\u12"}', b'{"id":{"a":1}}', b'{"id":[1]}', b'{"text":1}', b'{"cmd":2}', b'{"id":1}',
    b"{}", b"{ }", b'{"id":1,}', b'{"id":1} x', b'{"id":01}', b'{"id":-}', b'{"id":1.}', b'{"id":1e}', b'{"id":nul}',
    b'{"id":"' + b"i" * 70 + b'","cmd":"ping"}', b'{"id":"\xff","cmd":"ping"}', b'{"id":"x","cmd":"nope"}',
    b'{"cmd":"averyveryverylongcommand"}', b'{"cmd":"pi\\ng"}', b'{"id" 1}', b'{1:2}', b'{"a":"b\x01"}',
    b"{" + b" " * 5000 + b"}", b'{"id":8,"cmd":"names_add","kind":"room","text":"x"}',
    b'{"id":9,"cmd":"names_add","kind":"' + b"k" * 41 + b'","text":"x"}',
    b'{"id":10,"cmd":"names_add","kind":"area","text":"!!!"}', b'{"id":11,"cmd":"names_add","kind":"area"}',
    b'{"id":12,"cmd":"names_add","text":"x"}', b'{"id":13,"cmd":"names_add","kind":"area","text":"k\xffy"}',
    b'{"id":14,"cmd":"names_add","kind":"area","text":"' + b"long " * 120 + b'"}',
    b'{"id":15,"cmd":"names_add","kind":"area","text":"sunroom"}', b'{"id":16,"cmd":"names_add","kind":"area","text":"SunRoom"}',
    b'{"id":17,"cmd":"names_add","kind":"name:light","text":"reading lamp"}',
    b'{"id":18,"cmd":"names_add","kind":"name:kettle","text":"tea maker"}',
    b'{"id":19,"text":"turn on the reading lamp in the sunroom"}', b"switch off the tea maker", b"/names_clear",
]


def test_requests_and_bad_input_answered_like_the_c_emulator(devices):
    peers, c_dev, mp_dev, _ = devices
    for dev in (c_dev, mp_dev):
        peers.ask(dev, b'{"cmd":"names_clear"}')
    for payload in SAME_ANSWER:
        c, m = json.loads(peers.ask(c_dev, payload)), json.loads(peers.ask(mp_dev, payload))
        assert without_time(m) == without_time(c) and m.get("id") == c.get("id"), payload[:100]
    # the id is echoed as written, the confidence with four decimals, as the C firmware writes them
    m = peers.ask(mp_dev, b'{"id":1.50,"text":"turn off the lights"}')
    assert m.startswith(b'{"id":1.50,"text":') and b'"confidence":1.0000,' in m, m
    # commands whose answers describe the device: the same members, equal where they can be
    c, m = json.loads(peers.ask(c_dev, b"/info")), json.loads(peers.ask(mp_dev, b"/info"))
    # (a MicroPython board's line buffer is the boards' 1,024 bytes; the host emulator's is 4,096)
    assert without_time(m, "device", "max_line") == without_time(c, "device", "max_line")
    assert (m["device"], m["max_line"]) == ("micropython", 1024)
    c, m = json.loads(peers.ask(c_dev, b'{"cmd":"names"}')), json.loads(peers.ask(mp_dev, b'{"cmd":"names"}'))
    assert m == c
    c, m = json.loads(peers.ask(c_dev, b"/stats")), json.loads(peers.ask(mp_dev, b"/stats"))
    assert set(m) == set(c) and m["lines"] > len(SAME_ANSWER) and m["overflows"] >= 3 and m["errors"] > 10


def test_status_last_will_and_discovery(broker, micropython, tmp_path):
    """Retained online on connect; the discovery config the C firmware publishes (its model name
    aside); offline by the last will when the app dies, and by the app itself on Ctrl-C."""
    c_dev, mp_dev = f"cw{os.getpid()}", f"mpw{os.getpid()}"
    t = mqtt_mod.topics(mp_dev)
    watch = Collector(broker.url, [t["status"]])
    emu = emulator_mod.start_mqtt_emulator(DEFAULT_MODEL, broker.url, c_dev)
    app = App(micropython, broker, mp_dev, tmp_path / "app")
    try:
        app.start()
        assert "names: no names.json, running without the home's names" in app.lines
        assert mqtt_mod.retained(broker.url, t["status"], 5) == "online"
        mine = mqtt_mod.retained(broker.url, t["discovery"], 5)
        assert mine.encode() == mqtt_mod.discovery_config(mp_dev, MODEL_NAME, VERSION)
        theirs = json.loads(mqtt_mod.retained(broker.url, mqtt_mod.topics(c_dev)["discovery"], 5))
        theirs["device"]["model"] = MODEL_NAME
        assert json.loads(mine) == json.loads(json.dumps(theirs).replace(c_dev, mp_dev))
        app.kill()  # SIGKILL: no goodbye, the broker publishes the last will
        assert watch.wait_for(lambda m: m[1] == b"offline")
        assert mqtt_mod.retained(broker.url, t["status"], 5) == "offline"
        app.start()
        assert mqtt_mod.retained(broker.url, t["status"], 5) == "online"
        n = len(watch.messages)
        assert app.interrupt() == 0 and app.lines[-1] == "stopped"
        assert watch.wait_for(lambda m: m[1] == b"offline" and m in watch.messages[n:])  # said by the app
    finally:
        app.kill()
        emu.stop()
        watch.close()


def test_retained_request_is_not_run_again(broker, micropython, tmp_path):
    """A retained request runs once, when it is published; at a reconnect the broker hands it out
    again (retain flag set) and the app ignores it, while a request queued for its persistent
    session in the meantime is answered."""
    dev = f"mpr{os.getpid()}"
    app = App(micropython, broker, dev, tmp_path / "app")
    peers = Peers(broker.url, [dev])
    try:
        app.start()
        peers.publish(dev, b'{"id":"retained-1","text":"turn on the light"}', retain=True)
        assert len(peers.wait_for(dev, 1)) == 1  # a live request, retained or not: answered once
        assert peers.ask(dev, b'{"id":"after","cmd":"ping"}') == b'{"id":"after","pong":true}'
        assert [json.loads(r)["id"] for r in peers.results(dev)] == ["retained-1", "after"]
        app.kill()
        peers.publish(dev, b'{"id":"queued","text":"turn off the fan"}')
        app.start()
        assert len(peers.wait_for(dev, 3)) == 3  # the queued request, answered after the restart
        assert peers.ask(dev, b'{"id":"last","cmd":"ping"}') == b'{"id":"last","pong":true}'
        time.sleep(0.3)
        assert [json.loads(r)["id"] for r in peers.results(dev)] == ["retained-1", "after", "queued", "last"]
    finally:
        peers.publish(dev, b"", retain=True)  # clear the retained request
        peers.close()
        app.kill()


def test_tls_config_on_a_port_without_ssl_says_so(broker, micropython, tmp_path):
    """What can be run here of the app's TLS path: this unix build has no ssl module (so a TLS
    connection itself is untested, examples/micropython/README.md), and asking for TLS there
    stops with one line instead of falling back to plain MQTT."""
    binary, env = micropython
    (tmp_path / "config.json").write_text(json.dumps({"device": "tlsmp", "broker": "localhost", "tls": True,
                                                      "cafile": "ca.crt"}))
    r = subprocess.run([str(binary), str(APP)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "tls needs the ssl module, which this MicroPython port lacks" in r.stdout + r.stderr
