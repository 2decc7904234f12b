"""`squeezeedge demo` (make demo) ends with three things to try next, and each command works as
printed (issue 18): a board in QEMU, MQTT, the user's own sentence with the home's names."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

import pytest

from squeezeedge.cli.demo import NEXT_STEPS

def _steps(text: str) -> dict[int, list[str]]:
    """The numbered items of NEXT_STEPS and the `$ ` command lines of each."""
    steps: dict[int, list[str]] = {}
    item = None
    for line in text.splitlines():
        m = re.match(r"(\d+)\. ", line)
        if m:
            item = steps.setdefault(int(m.group(1)), [])
        elif line.strip().startswith("$ ") and item is not None:
            item.append(line.strip()[2:])
    return steps


STEPS = _steps(NEXT_STEPS)


def argv(command: str) -> list[str]:
    words = shlex.split(command)
    assert words[0] == "squeezeedge"
    return [sys.executable, "-m", "squeezeedge", *words[1:]]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def serve_then_ask(server: str, client: str, ready: str, cwd) -> dict:
    """Start ``server`` as printed, wait for its line containing ``ready``, run ``client`` as
    printed; return the client's JSON answer (after checking its exit status)."""
    proc = subprocess.Popen(argv(server), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"{server!r} exited: {proc.stderr.read()}")
            if ready in line:
                break
        out = subprocess.run(argv(client), cwd=cwd, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, (client, out.stdout, out.stderr)
        return json.loads(out.stdout)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_demo_ends_with_three_things_to_try():
    assert sorted(STEPS) == [1, 2, 3] and all(len(c) == 2 for c in STEPS.values())
    assert "--board stm32f405" in STEPS[1][0] and "emulate --mqtt" in STEPS[2][0] and "--names" in STEPS[3][1]
    from squeezeedge.cli import demo
    import inspect

    body = inspect.getsource(demo.run)
    assert body.rstrip().endswith("return 0") and "print(NEXT_STEPS" in body.splitlines()[-2]


def test_your_own_sentence_with_your_homes_names(tmp_path):
    make_names, classify = STEPS[3]
    assert subprocess.run(argv(make_names), cwd=tmp_path, capture_output=True, timeout=120).returncode == 0
    out = subprocess.run(argv(classify), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply["intent"] == "HassLightSet" and reply["slots"]["area"] == "bedroom"


def test_over_mqtt(tmp_path):
    # the printed commands use the default broker address: another broker there would answer instead
    assert port_free(1883) and not os.environ.get("SQUEEZEEDGE_BROKER"), \
        "127.0.0.1:1883 is taken (or SQUEEZEEDGE_BROKER is set): stop that broker to run this test"
    server, client = STEPS[2]
    reply = serve_then_ask(server, client, "emulator serving", tmp_path)
    assert reply["intent"] == "HassMediaPause" and "error" not in reply


def test_on_a_board_in_qemu(tmp_path):
    assert port_free(5555), "127.0.0.1:5555 (the port the printed commands use) is taken: free it to run this test"
    server, client = STEPS[1]
    reply = serve_then_ask(server, client, "netduinoplus2", tmp_path)
    assert reply["intent"] == "HassTurnOn" and reply["slots"].get("area") == "living room"
