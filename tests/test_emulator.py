"""The host emulator end to end (stdio, TCP, pty): the same answers as the reference engine,
and no crash or hang on any byte sequence — also when built with ASan + UBSan."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import time

import pytest

import fw_support as fw
from squeezeedge.classify import MAX_TEXT_BYTES, classify_line
from squeezeedge.emulator import Emulator
from squeezeedge.models.engine import ReferenceEngine
from squeezeedge.engines import open_device_engine
from squeezeedge.transport import DeviceEngine, TransportError, open_transport

COMMANDS = {b"/info", b"/version", b"/stats", b"/ping"}


@pytest.fixture(scope="module")
def ref():
    return ReferenceEngine(fw.model())


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "asan+ubsan"])
def binary(request):
    return fw.binary(request.param)


def device_lines(stream: bytes) -> list[bytes]:
    """How the device splits a byte stream into lines (as classify.input_lines)."""
    parts = stream.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    return [p[:-1] if p.endswith(b"\r") else p for p in parts]


def check(reply: dict, line: bytes, ref) -> None:
    want = classify_line(ref, line)
    if line[:1] == b"{" or line in COMMANDS:  # protocol lines, not commands to classify
        assert "error" in reply or "intent" in reply or "device" in reply or "version" in reply, reply
        return
    if "error" in want:
        assert reply.get("error") == want["error"], (line[:60], reply)
        assert reply.get("code") in {"too_long", "invalid_utf8", "empty"}
        if len(line) <= MAX_TEXT_BYTES:
            assert reply["text"] == want["text"]
        return
    assert "error" not in reply, (line, reply)
    got = {k: reply[k] for k in ("text", "intent", "confidence", "slots")}
    assert got == want, line
    assert isinstance(reply["time_us"], int)


ERROR_LINES = [b"", b"   ", b"\t\x0b\x0c", b"\r", b"\r\r", b"a\rb", b"x" * 513, "\u00e9".encode() * 300, b"turn on \xff the light",
               b"\xc3", b"ok \xed\xa0\x80", b"\x00", b"\x00turn\x00on\x00the\x00light", b"\x01\x02\x1b[31m",
               "turn on the lights \U0001f4a1 \"quoted\" back\\slash".encode(), b"a" * 512, b"word " * 102,
               b"y" * 5000, b"q" * 100000]


def run_stdio(binary, stream: bytes, timeout: float = 120) -> list[dict]:
    r = subprocess.run([str(binary), "--stdio"], input=stream, capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    assert b"runtime error" not in r.stderr and b"AddressSanitizer" not in r.stderr, r.stderr[-2000:]
    return [json.loads(line) for line in r.stdout.decode("utf-8").split("\n")[:-1]]


def test_stdio_matches_reference(binary, ref):
    texts = fw.held_out_texts()
    assert len(texts) >= 300
    stream = b"\n".join([t.encode("utf-8") for t in texts] + ERROR_LINES) + b"\n"
    lines = device_lines(stream)
    replies = run_stdio(binary, stream)
    assert len(replies) == len(lines)
    for line, reply in zip(lines, replies):
        check(reply, line, ref)
    null = sum(r.get("intent", "x") is None for r in replies)
    slots = sum(bool(r.get("slots")) for r in replies)
    valued = sum(any(v.startswith("V\u00e9") for v in r.get("slots", {}).values()) for r in replies)
    assert null > 50 and slots > 50 and valued > 5, (null, slots, valued)


def test_stdio_random_bytes(binary, ref):
    rng = random.Random(7)
    chunks = []
    for _ in range(300):
        kind = rng.randrange(4)
        if kind == 0:
            chunks.append(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400))))
        elif kind == 1:
            chunks.append(bytes(rng.choice(b"abc xyz\r\n\x00\x7f\xc3\xa9\xff{}\"\\/") for _ in range(rng.randrange(0, 200))))
        elif kind == 2:
            chunks.append(rng.choice(fw.held_out_texts()).encode() + b"\n")
        else:
            chunks.append(b'{"id": %d, "text": "%s"}\n' % (rng.randrange(1000), rng.choice([b"a\\u00e9", b"\\ud800", b"x\\", b"\x01"])))
    chunks.append(b"z" * 20000 + b"\n" + b"{" * 9000 + b"\nunterminated last line")
    stream = b"".join(chunks)
    lines = device_lines(stream)
    replies = run_stdio(binary, stream)
    assert len(replies) == len(lines)
    for line, reply in zip(lines, replies):
        check(reply, line, ref)


def test_json_requests_and_commands(binary):
    texts = ["say \"hi\" \\ back\tslash\x01\x7f", "caf\u00e9 \U0001f4a1", "\u2028x\u2029", ""]
    reqs = [json.dumps({"id": i, "text": t}, ensure_ascii=(i % 2 == 0)) for i, t in enumerate(texts)]
    reqs += ['{"id": "s-1", "cmd": "info"}', '{"cmd": "stats", "id": [1]}', '{"id": null, "cmd": "nope"}',
             '{"id": 1.5e3, "text": 5}', '{"text": "a", "id": "\\u00e9"}', "{}", "/version", "/stats"]
    replies = run_stdio(binary, "\n".join(reqs).encode() + b"\n")
    assert len(replies) == len(reqs)
    for i, t in enumerate(texts):
        assert replies[i]["id"] == i and replies[i]["text"] == t
    assert replies[3]["code"] == "empty"
    assert replies[4]["id"] == "s-1" and replies[4]["device"] == "host-emulator" and replies[4]["max_text"] == 512
    assert replies[5]["code"] == "bad_json"
    assert replies[6]["code"] == "unknown_command" and replies[6]["id"] is None
    assert replies[7]["code"] == "bad_json"
    assert replies[8]["id"] == "\u00e9" and replies[8]["text"] == "a"
    assert replies[9]["code"] == "bad_request"
    assert replies[10]["protocol"] == 1
    assert replies[11]["lines"] == 12  # this one included


@pytest.fixture(scope="module")
def tcp_emulator(binary):
    with Emulator(binary, "tcp:0") as emu:
        yield emu


def test_tcp_matches_reference(tcp_emulator, ref):
    with open_transport(tcp_emulator.url) as t:
        for text in fw.held_out_texts()[:300]:
            check(t.classify_json(text.encode()), text.encode(), ref)
        check(t.classify_json(b"bad \xff utf8"), b"bad \xff utf8", ref)
        assert t.command("ping") == {"pong": True}


def _raw(url: str) -> socket.socket:
    host, port = url[len("socket://"):].rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def test_tcp_bad_input_and_disconnect(tcp_emulator, ref):
    rng = random.Random(3)
    for _ in range(5):  # garbage, then hang up mid-line
        s = _raw(tcp_emulator.url)
        s.sendall(bytes(rng.randrange(256) for _ in range(5000)).replace(b"\n", b"") + b"\n" + b"turn on the ki")
        s.close()
    s = _raw(tcp_emulator.url)  # an overlong line over the socket, then hang up without reading
    s.sendall(b"x" * 300000)
    s.close()
    s = _raw(tcp_emulator.url)  # a client that sends many requests and never reads an answer
    s.sendall(b"turn on the light\n" * 3000)
    time.sleep(0.2)
    s.close()
    s = _raw(tcp_emulator.url)  # a client that disconnects in the middle of a JSON request
    s.sendall(b'{"id": 1, "text": "turn o')
    s.close()
    with open_transport(tcp_emulator.url) as t:
        t.drain()
        text = fw.held_out_texts()[5].encode()
        check(t.classify_json(text), text, ref)
        stats = t.command("stats")
        assert stats["overflows"] >= 1
    assert tcp_emulator.alive()


def test_pty_matches_reference(binary, ref):
    with Emulator(binary, "pty") as emu:
        assert emu.url.startswith("/dev/")
        with open_transport(emu.url) as t:
            with pytest.raises(TransportError, match="busy"):
                open_transport(emu.url)
            for text in fw.held_out_texts()[300:400]:
                check(t.classify_json(text.encode()), text.encode(), ref)
            t.write_line(b"\xff\x00garbage " * 100)
            t._write(b"half a line without its newline")
        with open_transport(emu.url) as t:  # a second client after the first one left
            t.resync()
            text = b"turn off the kitchen lights"
            check(t.classify_json(text), text, ref)
        assert emu.alive()
        assert emu.stop() == 0


def test_resync_is_not_counted_as_an_error(tcp_emulator):
    """Every client (`squeezeedge send`, names push, the bridge) starts with Transport.resync: the
    device must not answer it with an error, nor count one in /stats (issue 18)."""
    with open_transport(tcp_emulator.url) as t:
        t.resync()
        before = t.command("stats")
        t.resync()
        after = t.command("stats")
        reply = t.classify_json(b"turn off the kitchen lights")
        assert reply["text"] == "turn off the kitchen lights" and "error" not in reply
    assert (after["errors"], after["protocol_errors"]) == (before["errors"], before["protocol_errors"])
    assert after["lines"] == before["lines"] + 2  # the resync's ping and the stats request


def test_resync_ends_a_half_line_an_earlier_client_left(binary):
    """On a pty the device cannot see a client leave: the next client's resync ends the half line
    (answered as the line it is), and its own requests then work."""
    with Emulator(binary, "pty") as emu:
        with open_transport(emu.url) as t:
            before = t.command("stats")
            t._write(b"turn on the ki")
        with open_transport(emu.url) as t:
            t.resync()
            after = t.command("stats")
            reply = t.classify_json(b"turn off the kitchen lights")
            assert reply["text"] == "turn off the kitchen lights" and "error" not in reply
        assert (after["errors"], after["protocol_errors"]) == (before["errors"], before["protocol_errors"])
        assert after["classified"] == before["classified"] + 1  # the half line with the ping after it


def test_device_engine_and_errors(tcp_emulator, ref):
    from squeezeedge.emulator import default_model_path  # noqa: F401  (importable)

    engine = DeviceEngine(open_transport(tcp_emulator.url), "device")
    try:
        for text in fw.held_out_texts()[400:420]:
            data = text.encode()
            assert engine.classify(data) == ref.classify(data)
            assert classify_line(engine, data) == classify_line(ref, data)
    finally:
        engine.close()
    with pytest.raises(TransportError, match="nothing listens"):
        open_transport("socket://127.0.0.1:1")
    with pytest.raises(TransportError, match="no such port"):
        open_transport("/dev/ttyDOES_NOT_EXIST")
    with pytest.raises(TransportError, match="needs --port"):
        open_device_engine("device", None, None)


def test_emulator_engine_starts_and_stops(ref):
    engine = open_device_engine("emulator", fw.package())
    try:
        data = fw.held_out_texts()[0].encode()
        assert engine.classify(data) == ref.classify(data)
        assert engine.info()["max_len"] == fw.FW_CONFIG.max_len
    finally:
        engine.close()
    assert not engine.emulator.alive()


def test_sigterm_stops_promptly(binary):
    emu = Emulator(binary, "tcp:0").start()
    t0 = time.monotonic()
    assert emu.stop() == 0
    assert time.monotonic() - t0 < 3


def _compare_model_on_held_out(model, n: int | None = 400):
    from squeezeedge.emulator import build_emulator, prepare_package

    ref = ReferenceEngine(model)
    texts = [t.encode("utf-8") for t in fw.held_out_texts()[:n]] + ERROR_LINES
    stream = b"\n".join(texts) + b"\n"
    lines = device_lines(stream)
    replies = run_stdio(build_emulator(prepare_package(model)), stream)
    assert len(replies) == len(lines)
    for line, reply in zip(lines, replies):
        check(reply, line, ref)
    return replies


def test_trained_model_matches_reference(tiny_training):
    """A really trained model: real intent and slot names, the real value table."""
    model = tiny_training.model
    assert model.value_table
    replies = _compare_model_on_held_out(model)
    assert sum(bool(r.get("slots")) for r in replies) > 20


def test_shipped_model_matches_reference():
    from squeezeedge.models.engine import DEFAULT_MODEL
    from squeezeedge.models.model_file import IntModel

    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"no shipped model at {DEFAULT_MODEL}")
    _compare_model_on_held_out(IntModel.load(DEFAULT_MODEL), None)  # all ~1300


# ---- issue 15: many TCP clients, and errors that keep the request's id ----

def _ask(url: str, line: bytes, timeout: float = 60) -> dict:
    s = _raw(url)
    s.settimeout(timeout)
    try:
        s.sendall(line + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            assert chunk, f"the emulator closed the connection without answering {line[:40]!r}"
            data += chunk
        return json.loads(data)
    finally:
        s.close()


def test_fifty_concurrent_tcp_clients_with_one_idle_are_all_served(binary):
    """An idle client (connected, half a line sent, then silent), a client that never reads, and
    50 clients asking at the same time: every one of the 50 gets its own answer."""
    import concurrent.futures

    with Emulator(binary, "tcp:0") as emu:
        idle = _raw(emu.url)
        idle.sendall(b'{"id": "idle", "text": "turn o')
        greedy = _raw(emu.url)  # asks a lot, reads nothing
        greedy.sendall(b"turn on the light\n" * 2000)
        texts = fw.held_out_texts()[:50]
        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            replies = list(pool.map(lambda it: _ask(emu.url, json.dumps({"id": it[0], "text": it[1]}).encode()),
                                    enumerate(texts)))
        assert [r["id"] for r in replies] == list(range(50))
        assert [r["text"] for r in replies] == texts
        idle.close()
        greedy.close()
        assert emu.alive()


def test_an_idle_tcp_client_is_closed_after_the_idle_timeout(binary):
    with Emulator(binary, "tcp:0", args=["--tcp", "0", "--idle-timeout", "0.5"]) as emu:
        s = _raw(emu.url)
        s.settimeout(30)
        assert s.recv(1) == b"", "the emulator kept an idle client past --idle-timeout"
        assert _ask(emu.url, b'{"id": 1, "cmd": "ping"}') == {"id": 1, "pong": True}


def test_emulate_passes_its_idle_timeout_to_the_emulator():
    """`squeezeedge emulate --serial tcp:0 --idle-timeout S`: the emulator it starts closes a silent
    client after S seconds; the option is refused where no TCP clients are served."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-m", "squeezeedge", "emulate", "--serial", "tcp:0", "--idle-timeout", "0.5"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = p.stdout.readline().split()[3]  # "emulator listening on socket://127.0.0.1:PORT ..."
        s = _raw(url)
        s.settimeout(30)
        assert s.recv(1) == b"", "the emulator kept an idle client past --idle-timeout"
        assert _ask(url, b'{"id": 2, "cmd": "ping"}') == {"id": 2, "pong": True}
    finally:
        p.terminate()
        p.wait(10)
    r = subprocess.run([sys.executable, "-m", "squeezeedge", "emulate", "--serial", "pty", "--idle-timeout", "1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--idle-timeout is for the host emulator serving --serial tcp:PORT" in r.stderr


@pytest.mark.parametrize("line, code, rid", [
    (b'{"id": "c1", "cmd": "' + b"x" * 40 + b'"}', "unknown_command", "c1"),
    (b'{"id": "n1", "text": {"nested": 1}}', "bad_json", "n1"),
    (b'{"text": ["a"], "id": "n2"}', "bad_json", "n2"),
    (b'{"id": "l1", "text": "' + b"a" * 5000 + b'"}', "line_too_long", "l1"),
    (b'{"id": 77, "text": "\\ud800"}', "bad_json", 77),
])
def test_every_error_answer_keeps_the_request_id(binary, line, code, rid):
    (reply,) = run_stdio(binary, line + b"\n")
    assert (reply["code"], reply.get("id")) == (code, rid), reply


def test_an_id_that_cannot_be_read_gives_an_answer_without_id(binary):
    lines = [b'{"id": {"a": 1}, "text": "x"}', b'{"id": "' + b"i" * 100 + b'", "text": "x"}',
             b'{"text": "' + b"a" * 5000 + b'", "id": 5}']  # the id is past the line buffer
    replies = run_stdio(binary, b"\n".join(lines) + b"\n")
    assert [("id" in r, r["code"]) for r in replies] == [(False, "bad_json"), (False, "bad_json"),
                                                        (False, "line_too_long")]


def test_send_reports_a_device_error_at_once(tcp_emulator):
    """`squeezeedge send` of a line the device refuses: the error answer, matched by id, comes back
    at once (not after --timeout, blaming the device)."""
    import sys

    r = subprocess.run([sys.executable, "-m", "squeezeedge", "send", "--port", tcp_emulator.url, "--timeout", "600",
                        "a" * 5000], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["code"] == "line_too_long"


def test_send_streams_stdin_answering_each_line_before_eof(tcp_emulator):
    """`tail -f log | squeezeedge send`: each line is answered while stdin stays open."""
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "squeezeedge", "send", "--port", tcp_emulator.url],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for text in ["turn off the kitchen lights", "what time is it", "\u00e9 bad \\"]:
            proc.stdin.write(text.encode() + b"\n")
            proc.stdin.flush()
            line = _readline_within(proc.stdout, 120)
            assert json.loads(line)["text"] == text  # answered while stdin is still open
        assert proc.poll() is None
        proc.stdin.close()
        assert proc.wait(60) == 0, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


def _readline_within(stream, timeout: float) -> bytes:
    """A line of a subprocess's output, or a clear failure if none comes within a generous timeout."""
    import threading

    box: list[bytes] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert box and box[0], f"no answer line within {timeout} s while stdin stayed open"
    return box[0]
