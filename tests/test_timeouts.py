"""A timeout is reported as the user gave it ("within 0.7 s"), not as what was left of it when
the last wait began ("within 0.699987 s"; issue 18)."""

from __future__ import annotations

import argparse
import socket
import threading

import pytest

from squeezeedge import mqtt as mqtt_mod
from squeezeedge import transport
from squeezeedge.cli import mqtt as mqtt_cli, send as send_cli
from squeezeedge.transport import TransportError, open_transport, seconds


def test_seconds_prints_the_timeout_as_given():
    assert [seconds(x) for x in (10.0, 10, 0.5, 2.25, 9.99989)] == ["10 s", "10 s", "0.5 s", "2.25 s", "10 s"]


@pytest.fixture()
def silent_port():
    """A TCP server that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    yield f"socket://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    th.join()
    for c in conns:
        c.close()
    srv.close()


def test_a_silent_serial_device_times_out_as_configured(silent_port, capsys):
    with open_transport(silent_port) as t:
        with pytest.raises(TransportError, match=r"no answer within 0\.7 s:"):
            t.request({"cmd": "ping"}, timeout=0.7)
    parser = argparse.ArgumentParser()
    send_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["send", "turn on the light", "--port", silent_port, "--timeout", "0.6"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "no answer within 0.6 s:" in err, err


def test_a_silent_mqtt_device_times_out_as_configured(capsys):
    broker = mqtt_mod.start_local_broker()
    try:
        parser = argparse.ArgumentParser()
        mqtt_cli.add_parser(parser.add_subparsers())
        args = parser.parse_args(["mqtt", "send", "turn on the light", "--device", "nobody-home",
                                  "--broker", broker.url, "--timeout", "0.8"])
        assert args.func(args) == 2
        err = capsys.readouterr().err
        assert "via" in err and "within 0.8 s:" in err, err
    finally:
        broker.stop()
