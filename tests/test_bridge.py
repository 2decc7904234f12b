"""`squeezeedge bridge`: a serial board on MQTT. Requests published on squeezeedge/ID/cmd go through
host_tools/bridge.py to the host emulator over TCP serial and to the STM32F405 firmware under
QEMU; the answers on squeezeedge/ID/result equal the integer reference. Retained status, last
will, Home Assistant discovery, the serial link dropping and coming back, and clear errors.
Needs mosquitto (and, for the STM32 test, arm-none-eabi-gcc + qemu-system-arm); skipped otherwise."""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import time

import pytest

from squeezeedge import boards
from squeezeedge.classify import classify_line
from squeezeedge.net import free_port
from squeezeedge.models.engine import DEFAULT_MODEL, ReferenceEngine
from squeezeedge.models.model_file import IntModel

import paho.mqtt.client as paho  # noqa: E402

from squeezeedge import bridge as bridge_mod  # noqa: E402
from squeezeedge import emulator as emulator_mod  # noqa: E402
from squeezeedge import mqtt as mqtt_mod  # noqa: E402
from squeezeedge.cli import bridge as bridge_cli  # noqa: E402

from test_mqtt import Collector, Mosquitto  # noqa: E402 - the same mosquitto fixture as the emulator's tests

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None, reason="the mosquitto binary is missing")

N_EMULATOR = 40
N_STM32 = 24


@functools.lru_cache(maxsize=None)
def held_out() -> list[str]:
    from squeezeedge.models.dataset import build_dataset

    return [e.text for e in build_dataset(seed=0).test]


def sample(n: int, offset: int = 0) -> list[str]:
    texts = held_out()
    step = max(1, len(texts) // n)
    return texts[offset::step][:n]


@pytest.fixture(scope="module")
def mosquitto():
    b = Mosquitto().start()
    yield b
    b.remove()


@pytest.fixture(scope="module")
def ref():
    return ReferenceEngine(IntModel.load(DEFAULT_MODEL))


@pytest.fixture(scope="module")
def emulator():
    from squeezeedge.emulator import start_emulator

    emu = start_emulator(DEFAULT_MODEL, "tcp:0")
    yield emu
    emu.stop()


def mqtt_engine(broker_url: str, device: str):
    return mqtt_mod.MqttEngine(mqtt_mod.MqttTransport(broker_url, device), "device", timeout=15.0)


def check_against_reference(engine, ref, texts):
    for text in texts:
        data = text.encode()
        assert classify_line(engine, data) == classify_line(ref, data), text


def test_emulator_over_serial_through_the_bridge(mosquitto, emulator, ref):
    texts = sample(N_EMULATOR)
    assert len(texts) >= 30
    with bridge_mod.Bridge(emulator.url, mosquitto.url, "bemu") as bridge, mqtt_engine(mosquitto.url, "bemu") as engine:
        check_against_reference(engine, ref, texts)
        assert bridge.forwarded == len(texts)
        assert engine.info()["device"] == "host-emulator"  # a device command passes through
        t = engine.transport
        # payloads the bridge answers itself, without forwarding garbage to the board
        forwarded = bridge.forwarded
        long_text = b"turn on the light " * 40
        reply = t.classify_json(long_text)  # JSON request (fits the line): forwarded, the device says too_long
        assert reply["error"] == classify_line(ref, long_text)["error"] and reply["code"] == "too_long"
        assert bridge.forwarded == forwarded + 1
        collector = Collector(mosquitto.url, [bridge.topics["result"]])
        try:
            client = collector.client
            client.publish(bridge.topics["cmd"], long_text, qos=1)  # plain, > 512 bytes
            client.publish(bridge.topics["cmd"], b"turn on\nthe light", qos=1)  # a newline inside
            client.publish(bridge.topics["cmd"], json.dumps({"id": "nl", "text": "x"}).replace(",", ",\n"), qos=1)
            client.publish(bridge.topics["cmd"], b"turn on the light\r\n", qos=1)  # a trailing newline is fine
            client.publish(bridge.topics["cmd"], b"turn on the light\r\r", qos=1)  # one \r dropped, as the emulator
            got = collector.wait_for(lambda m: len(collector.messages) >= 5)
            assert got
            replies = [json.loads(m[1]) for m in collector.messages[:5]]
        finally:
            collector.close()
        assert replies[0] == reply  # what the board itself answers (text echo: the first 512 bytes)
        assert replies[1]["code"] == "bad_request" and replies[1]["text"] == "turn on\nthe light"
        assert replies[2]["code"] == "bad_request" and replies[2]["id"] == "nl"
        assert {k: v for k, v in replies[3].items() if k != "time_us"} == classify_line(ref, b"turn on the light")
        assert replies[4]["text"] == "turn on the light\r"
        assert bridge.forwarded == forwarded + 3  # the last two and the JSON one above only


def test_stm32_in_qemu_through_the_bridge(mosquitto, ref):
    if not boards.toolchain_available() or not boards.qemu_available():
        pytest.skip("needs arm-none-eabi-gcc (+ newlib) and qemu-system-arm")
    firmware = boards.build_board("stm32f405")
    q = boards.start_qemu_board(firmware.elf)
    try:
        texts = sample(N_STM32, offset=1)
        assert len(texts) >= 20
        with bridge_mod.Bridge(q.url, mosquitto.url, "bstm32") as bridge, mqtt_engine(mosquitto.url, "bstm32") as engine:
            check_against_reference(engine, ref, texts)
            assert bridge.forwarded == len(texts)
            assert mqtt_mod.retained(mosquitto.url, bridge.topics["status"], 5) == "online"
            info = engine.info()
            assert info["device"] != "host-emulator"
            config = json.loads(mqtt_mod.retained(mosquitto.url, bridge.topics["discovery"], 5))
            assert config["device"]["sw_version"] == info["version"]
    finally:
        q.stop()


def test_status_discovery_will_and_serial_reconnect(mosquitto, ref):
    from squeezeedge.emulator import start_emulator

    device = "bstatus"
    t = mqtt_mod.topics(device)
    port = free_port()
    emu = start_emulator(DEFAULT_MODEL, f"tcp:{port}")
    watch = Collector(mosquitto.url, [t["status"]])
    bridge = bridge_mod.Bridge(f"socket://127.0.0.1:{port}", mosquitto.url, device, log=lambda m: None)
    try:
        bridge.start()
        assert mqtt_mod.retained(mosquitto.url, t["status"], 5) == "online"
        raw = mqtt_mod.retained(mosquitto.url, t["discovery"], 5)
        config = json.loads(raw)
        # the emulator's payload (firmware/ports/host/mqtt.c), with this board's model and version
        assert raw.encode() == mqtt_mod.discovery_config(device, "host-emulator (serial bridge)", "0.1.0")
        assert config["state_topic"] == t["result"] and config["json_attributes_topic"] == t["result"]
        assert config["availability_topic"] == t["status"] and config["value_template"] == "{{ value_json.intent }}"
        assert config["unique_id"] == f"squeezeedge_{device}_intent"
        assert config["device"]["identifiers"] == [f"squeezeedge_{device}"]
        # the serial link drops: offline; the board comes back on the same port: online, answers again
        emu.stop()
        assert watch.wait_for(lambda m: m[1] == b"offline", timeout=15)
        assert mqtt_mod.retained(mosquitto.url, t["status"], 5) == "offline"
        n_before = len(watch.messages)
        emu = start_emulator(DEFAULT_MODEL, f"tcp:{port}")
        assert watch.wait_for(lambda m: m[1] == b"online" and len(watch.messages) > n_before
                              and watch.messages[-1][1] == b"online", timeout=20)
        with mqtt_engine(mosquitto.url, device) as engine:
            check_against_reference(engine, ref, sample(5, offset=2))
    finally:
        bridge.stop()
        watch.close()
        emu.stop()
    assert mqtt_mod.retained(mosquitto.url, t["status"], 5) == "offline"  # a clean stop says so


def test_cli_errors_are_one_line(mosquitto, emulator, capsys):
    parser = argparse.ArgumentParser()
    bridge_cli.add_parser(parser.add_subparsers())
    cases = [(["--port", "/dev/ttyNOPE9", "--broker", mosquitto.url], "no such port"),
             (["--port", f"socket://127.0.0.1:{free_port()}", "--broker", mosquitto.url], "connection refused"),
             (["--port", emulator.url, "--broker", f"mqtt://127.0.0.1:{free_port()}"], "cannot reach the MQTT broker"),
             (["--port", emulator.url, "--device", "a/b", "--broker", mosquitto.url], "device id")]
    for argv, want in cases:
        args = parser.parse_args(["bridge", *argv])
        assert args.func(args) == 2
        err = capsys.readouterr().err.strip()
        assert want in err and "\n" not in err, err


def _bridge_process(argv):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "squeezeedge", "bridge", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_cli_local_broker_and_last_will(mosquitto, emulator, ref):
    import signal

    # without --broker: an in-process broker whose URL is printed; SIGTERM stops cleanly
    p = _bridge_process(["--port", emulator.url, "--device", "bcli"])
    try:
        first = p.stdout.readline()
        assert first.startswith("MQTT broker (in-process amqtt) listening on mqtt://127.0.0.1:"), first
        url = first.split()[-1]
        assert "bridging" in p.stdout.readline()
        with mqtt_engine(url, "bcli") as engine:
            check_against_reference(engine, ref, sample(3, offset=3))
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    # a bridge that dies without a goodbye: the broker publishes its last will, retained
    t = mqtt_mod.topics("bwill")
    p = _bridge_process(["--port", emulator.url, "--device", "bwill", "--broker", mosquitto.url])
    try:
        assert "bridging" in p.stdout.readline()
        assert mqtt_mod.retained(mosquitto.url, t["status"], 5) == "online"
        p.kill()
        p.wait(10)
        deadline = time.monotonic() + 10
        while mqtt_mod.retained(mosquitto.url, t["status"], 1) != "offline" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert mqtt_mod.retained(mosquitto.url, t["status"], 5) == "offline"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_broker_restart_loses_no_request(emulator, ref):
    broker = Mosquitto().start()
    device = "brestart"
    t = mqtt_mod.topics(device)
    bridge = bridge_mod.Bridge(emulator.url, broker.url, device, log=lambda m: None).start()
    tester = None
    try:
        broker.stop()  # the session (the bridge's subscription) persists
        broker.start()
        tester = Collector(broker.url, [t["result"]], client_id="se-test-brestart", clean=False)
        texts = sample(10, offset=4)
        for i, text in enumerate(texts):  # most likely published before the bridge is back
            assert tester.client.publish(t["cmd"], json.dumps({"id": i, "text": text}), qos=1).rc == 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(tester.messages) < len(texts):
            time.sleep(0.05)
        time.sleep(0.3)  # time for a duplicate to show up
        with tester.lock:
            replies = [json.loads(m[1]) for m in tester.messages]
        assert sorted(r["id"] for r in replies) == list(range(len(texts)))
        for r in replies:
            rid = r.pop("id")
            r.pop("time_us")
            assert r == classify_line(ref, texts[rid].encode())
        assert mqtt_mod.retained(broker.url, t["status"], 5) == "online"
    finally:
        bridge.stop()
        if tester:
            tester.close()
        broker.remove()


def test_the_bridge_gives_the_board_its_names_and_restores_them_after_a_reset(mosquitto, emulator):
    """With names, the bridge tells the board the home's names at once and again whenever its table
    is empty (here: cleared through MQTT, as a reset would leave it)."""
    from squeezeedge.models.entities import home_names

    names = home_names("all")
    named = ReferenceEngine(IntModel.load(DEFAULT_MODEL), names)
    with bridge_mod.Bridge(emulator.url, mosquitto.url, "bnames", names=names) as bridge, \
            mqtt_engine(mosquitto.url, "bnames") as engine:
        stored = len(named.encoder.gazetteer)
        assert engine.transport.command("names")["names"] == stored
        check_against_reference(engine, named, sample(10, offset=3))
        assert engine.transport.command("names_clear") == {"names": 0}
        deadline = time.monotonic() + 3 * bridge_mod.PING_INTERVAL + 30
        while engine.transport.command("names")["names"] != stored:
            assert time.monotonic() < deadline, "the bridge did not send the names again"
            time.sleep(0.5)
        check_against_reference(engine, named, sample(10, offset=5))
    assert bridge.names is names
