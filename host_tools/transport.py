"""Talking to a device (or the host emulator) over the line protocol (firmware/PROTOCOL.md).

``Transport`` is the base class (write a line, read a line with a deadline, request/response
with ids); ``SerialTransport`` implements it with pyserial, so one URL form reaches everything:
``/dev/ttyUSB0``, a pty path printed by ``squeezeedge emulate``, or ``socket://host:port``.

``open_device_engine(kind, model, port)`` gives a classify engine over a device: ``.name``,
``.classify(data) -> Answer`` (what host_tools/classify.classify_line calls) and
``.classify_json(data) -> dict`` (the device's own JSON line, with ``time_us``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import queue
import sys
import threading
import time

from .models.decode import Answer

DEFAULT_TIMEOUT = 10.0
BAUDRATE = 115200


def seconds(timeout: float) -> str:
    """A timeout as the user gave it: "10 s", "0.5 s" (never a leftover like "9.99989 s")."""
    return f"{round(timeout, 3):g} s"


class TransportError(RuntimeError):
    """One-line, actionable description of what went wrong with the port."""


class DeviceError(RuntimeError):
    """The device answered with an error object."""

    def __init__(self, reply: dict):
        super().__init__(f"{reply.get('code', 'error')}: {reply.get('error')}")
        self.reply = reply


class Transport:
    """A line-oriented byte stream to a device. Subclasses implement ``_write`` and ``_read``.

    ``ordered``: answers come back in request order on a link of our own (a serial line), so an
    error answer without an id (the device could not read it: PROTOCOL.md, "Errors") belongs to
    the oldest request waiting. ``lost_means_error``: a request left unanswered is reported as a
    "lost" error line and the others go on (MQTT, where a broker may drop messages), instead of
    ending the run as a device that does not answer. ``connected_since``: when the link last
    (re)connected; a request's wait counts from then at the earliest."""

    ordered = True
    lost_means_error = False

    def __init__(self):
        self._buf = bytearray()
        self._ids = itertools.count(1)
        self.connected_since = time.monotonic()

    # -- to implement --
    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _read(self, timeout: float) -> bytes:
        """Whatever bytes arrive within ``timeout`` seconds (possibly none)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    # -- provided --
    def write_line(self, data: bytes) -> None:
        if b"\n" in data:
            raise ValueError("a line cannot contain a newline byte; send JSON to carry one")
        self._write(data + b"\n")

    def read_line(self, timeout: float = DEFAULT_TIMEOUT, *, budget: float | None = None) -> bytes:
        """The next line, within ``timeout`` seconds. ``budget``: the timeout the user configured, named
        in the error (a caller that waits in steps passes what is left as ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[: i + 1]
                return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise self.no_answer(timeout if budget is None else budget)
            self._buf += self._read(min(left, 0.5))

    def no_answer(self, timeout: float) -> TransportError:
        """The error for a device that did not answer within ``timeout`` seconds."""
        return TransportError(f"no answer within {seconds(timeout)}: is the device running the SqueezeEdge "
                              "firmware, at this port and baud rate?")

    def drain(self, quiet: float = 0.05) -> None:
        """Forget pending input (stale answers of an earlier client)."""
        self._buf.clear()
        while self._read(quiet):
            pass

    def resync(self, timeout: float = 1.0) -> None:
        """End whatever half line an earlier client left in the device's buffer and forget pending
        input, without making the device answer (and count) an error: a ping request does it.
        Alone it is answered with a pong; after a half line the two make one line, answered as
        that line. Either way one answer comes back, which is awaited (up to ``timeout``) and
        discarded. (A lone newline would end the half line too, but a device answers every line,
        and an empty one with an "empty command" error that its `stats` count: PROTOCOL.md.)"""
        self.drain()
        rid = f"resync-{next(self._ids)}"
        self.write_line(json.dumps({"id": rid, "cmd": "ping"}).encode())
        deadline = time.monotonic() + timeout
        try:
            while True:
                line = self.read_line(max(0.0, deadline - time.monotonic()))
                try:
                    reply = json.loads(line)
                except ValueError:
                    continue  # noise on the line (boot messages)
                if isinstance(reply, dict) and reply.get("id", rid) == rid:
                    break  # our pong, or the answer to the half line our ping ended (it has no id)
        except TransportError:
            pass  # a device that does not answer: the request that follows says so; a late pong is skipped by id
        self.drain()

    def request(self, obj: dict, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """Send one JSON request with a fresh id; return the reply with that id (others are skipped)."""
        rid = next(self._ids)
        self.write_line(json.dumps({"id": rid, **obj}, ensure_ascii=False).encode("utf-8"))
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_line(max(0.0, deadline - time.monotonic()), budget=timeout)
            try:
                reply = json.loads(line)
            except ValueError:
                continue  # noise on the line (boot messages, a half line from before)
            if isinstance(reply, dict) and reply.get("id") == rid:
                reply.pop("id")
                return reply

    def submit(self, obj: dict):
        """Send one JSON request with a fresh id without waiting; return the id."""
        rid = next(self._ids)
        self.write_line(json.dumps({"id": rid, **obj}, ensure_ascii=False).encode("utf-8"))
        return rid

    def poll_reply(self, timeout: float) -> dict | None:
        """The next answer object arriving within ``timeout`` seconds, or None."""
        deadline = time.monotonic() + timeout
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._buf += self._read(min(left, 0.5))
                continue
            line = bytes(self._buf[:i])
            del self._buf[: i + 1]
            try:
                reply = json.loads(line)
            except ValueError:
                continue  # noise on the line (boot messages)
            if isinstance(reply, dict):
                return reply

    def command(self, cmd: str, timeout: float = DEFAULT_TIMEOUT) -> dict:
        return self.request({"cmd": cmd}, timeout)

    def classify_json(self, data: bytes, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """The device's answer to one command (the classify contract plus ``time_us``)."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            return self.request({"text": text}, timeout)
        # Not UTF-8: JSON cannot carry it, so send the raw line and take the next reply.
        if b"\n" in data:
            raise ValueError("a command cannot contain a newline byte")
        self.drain(0.0)
        self.write_line(data)
        return json.loads(self.read_line(timeout))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SerialTransport(Transport):
    """pyserial: serial devices, pty paths and ``socket://host:port``; exclusive access."""

    def __init__(self, url: str, baudrate: int = BAUDRATE):
        super().__init__()
        try:
            import serial
        except ImportError:
            raise TransportError("pyserial is not installed: pip install pyserial") from None
        self.url = url
        try:
            if url.startswith(("socket://", "rfc2217://", "loop://")):
                self.ser = serial.serial_for_url(url, timeout=0.1)
            else:
                self.ser = serial.serial_for_url(url, baudrate=baudrate, timeout=0.1, exclusive=True)
        except serial.SerialException as e:
            raise TransportError(_explain(url, e)) from None
        except (OSError, ValueError) as e:
            raise TransportError(_explain(url, e)) from None
        self._serial = serial

    def _write(self, data: bytes) -> None:
        try:
            self.ser.write(data)
            self.ser.flush()
        except (self._serial.SerialException, OSError) as e:
            raise TransportError(f"{self.url}: write failed ({e}); the device went away") from None

    def _read(self, timeout: float) -> bytes:
        try:
            self.ser.timeout = timeout
            first = self.ser.read(1)
            if not first:
                return b""
            self.ser.timeout = 0
            rest = self.ser.read(65536)
            return first + rest
        except (self._serial.SerialException, OSError) as e:
            raise TransportError(f"{self.url}: read failed ({e}); the device went away") from None

    def close(self) -> None:
        try:
            self.ser.close()
        except Exception:  # noqa: BLE001 - closing must not raise
            pass


def _explain(url: str, e: Exception) -> str:
    msg = str(e)
    low = msg.lower()
    if url.startswith("socket://"):
        if "refused" in low:
            return f"{url}: nothing listens there (connection refused); start `squeezeedge emulate --serial tcp:PORT`"
        return f"{url}: cannot connect ({msg})"
    if "exclusive" in low or "busy" in low or "resource temporarily unavailable" in low:
        return f"{url}: the port is busy (another program has it open); close that program (monitor, screen, minicom)"
    if "no such file" in low or "errno 2" in low:
        return f"{url}: no such port; check the cable and the device path (ls /dev/ttyUSB* /dev/ttyACM*)"
    if "permission" in low:
        return f"{url}: permission denied; add yourself to the dialout group (sudo usermod -aG dialout $USER)"
    return f"{url}: cannot open the port ({msg})"


def open_transport(url: str, baudrate: int = BAUDRATE) -> Transport:
    return SerialTransport(url, baudrate)


# ---- engines over a device ----

class DeviceEngine:
    """A classify engine answered by a device (kind "device") or a host emulator it started
    (kind "emulator"). ``classify(data) -> Answer``; ``classify_json(data) -> dict``."""

    def __init__(self, transport: Transport, name: str = "device", emulator=None, timeout: float = DEFAULT_TIMEOUT):
        self.transport = transport
        self.name = name
        self.emulator = emulator
        self.timeout = timeout
        self.last_time_us: int | None = None

    def classify_json(self, data: bytes) -> dict:
        reply = self.transport.classify_json(data, self.timeout)
        self.last_time_us = reply.get("time_us")
        return reply

    def classify(self, data: bytes) -> Answer:
        reply = self.classify_json(data)
        if "error" in reply:
            raise DeviceError(reply)
        return Answer(reply["intent"], int(round(reply["confidence"] * 10000)), dict(reply.get("slots", {})))

    def info(self) -> dict:
        return self.transport.command("info", self.timeout)

    def close(self) -> None:
        self.transport.close()
        if self.emulator is not None:
            self.emulator.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_device_engine(kind: str, model=None, port: str | None = None, sanitize: bool = False,
                       timeout: float = DEFAULT_TIMEOUT) -> DeviceEngine:
    """``kind="emulator"``: build and start a host emulator for ``model`` (IntModel, .semodel path
    or package dir; default the shipped model) on a free TCP port and connect to it.
    ``kind="device"``: connect to whatever answers at ``port`` (a URL pyserial opens)."""
    if kind == "device":
        if not port:
            raise TransportError("--engine device needs --port (e.g. /dev/ttyACM0 or socket://127.0.0.1:5555)")
        t = open_transport(port)
        t.resync()
        return DeviceEngine(t, "device", timeout=timeout)
    if kind == "emulator":
        from .emulator import default_model_path, start_emulator

        emu = start_emulator(model if model is not None else default_model_path(), "tcp:0", sanitize=sanitize)
        try:
            t = open_transport(emu.url)
        except TransportError:
            emu.stop()
            raise
        return DeviceEngine(t, "emulator", emulator=emu, timeout=timeout)
    raise ValueError(f"unknown device engine {kind!r}: use emulator or device")


# ---- CLI: squeezeedge send ----

def add_send_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("send", help="send commands to a device (or emulator) and print its answers",
                              description="Send each TEXT as one request; print one JSON answer per line.")
    p.add_argument("text", nargs="*", metavar="TEXT", help="commands; none: read lines from stdin")
    p.add_argument("--port", required=True, help="/dev/ttyUSB0, a pty path or socket://HOST:PORT")
    p.add_argument("--baud", type=int, default=BAUDRATE)
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for each answer")
    p.add_argument("--cmd", choices=["info", "version", "stats", "ping"], help="send a device command instead")
    p.set_defaults(func=cmd_send)
    return p


def _input_lines(args) -> "queue.Queue[bytes | None]":
    """Each TEXT, or each stdin line as soon as it arrives (a reader thread: `tail -f | send` is
    answered line by line), then None."""
    lines: queue.Queue = queue.Queue()
    if args.text:
        for text in args.text:
            lines.put(text.encode("utf-8"))
        lines.put(None)
        return lines

    def read():
        for line in iter(sys.stdin.buffer.readline, b""):
            lines.put(line.rstrip(b"\r\n"))
        lines.put(None)

    threading.Thread(target=read, name="stdin", daemon=True).start()
    return lines


def lost_answer(rid, number: int, data: bytes, timeout: float) -> dict:
    return {"id": rid, "line": number, "text": data.decode("utf-8", "replace"),
            "error": f"no answer within {seconds(timeout)}: the request or its answer was lost (a broker that "
                     "restarts without persistence drops the messages it holds); send it again if it must run",
            "code": "lost"}


def print_answers(t: Transport, args, window: int = 1) -> int:
    """The body of ``send`` and ``mqtt send``: a device command, or each TEXT (or stdin line, read
    as it comes) as one request, up to ``window`` of them in flight; one JSON answer per line in
    input order; exit status 1 if any answer is an error. On a transport that loses messages
    (``lost_means_error``) a request unanswered ``--timeout`` seconds after it was sent (or after
    the last reconnect) gets an error line with code "lost" naming its id and input line, once the
    device has answered anything; before that, silence means the device is not there (the
    transport's ``no_answer`` error, as for a single request)."""
    if args.cmd:
        print(json.dumps(t.command(args.cmd, args.timeout), ensure_ascii=False), flush=True)
        return 0
    lines = _input_lines(args)
    pending: dict = {}  # id -> [input line number, bytes, sent at, answer or None], in input order
    failed = lost = number = 0
    done = answered = False
    while not done or pending:
        while not done and len(pending) < window and not any(isinstance(k, tuple) for k in pending):
            try:
                data = lines.get(timeout=0.02) if pending else lines.get()
            except queue.Empty:
                break
            if data is None:
                done = True
                break
            number += 1
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:  # JSON cannot carry it: sent raw, after every earlier answer
                pending[("raw", number)] = [number, data, time.monotonic(), None]
                break
            pending[t.submit({"text": data.decode("utf-8")})] = [number, data, time.monotonic(), None]
        first_key = next(iter(pending), None)
        if isinstance(first_key, tuple):  # a raw line is next: everything before it is printed
            entry = pending[first_key]
            entry[3] = t.classify_json(entry[1], args.timeout)
        elif pending:
            reply = t.poll_reply(0.05)
            if reply is not None:
                rid = reply.pop("id", None)
                if rid is None and "error" in reply and t.ordered:
                    rid = next((k for k, e in pending.items() if e[3] is None), None)
                if rid in pending and pending[rid][3] is None:
                    pending[rid][3] = reply
                    answered = True
            now = time.monotonic()
            for rid, entry in pending.items():
                if entry[3] is None and now > max(entry[2], t.connected_since) + args.timeout:
                    if not (t.lost_means_error and answered):  # nothing ever came back: the device is not there
                        raise t.no_answer(args.timeout)
                    entry[3] = lost_answer(rid, entry[0], entry[1], args.timeout)
                    lost += 1
        while pending and next(iter(pending.values()))[3] is not None:
            reply = pending.pop(next(iter(pending)))[3]
            failed += "error" in reply
            print(json.dumps(reply, ensure_ascii=False), flush=True)
    if lost:
        print(f"{lost} request(s) got no answer: each is an error line with code \"lost\" and its id", file=sys.stderr)
    return 1 if failed else 0


def cmd_send(args) -> int:
    try:
        with open_transport(args.port, args.baud) as t:
            t.resync()
            return print_answers(t, args)
    except TransportError as e:
        print(f"send: {e}", file=sys.stderr)
        return 2
