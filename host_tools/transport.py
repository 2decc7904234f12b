"""Talking to a device (or the host emulator) over the line protocol (firmware/PROTOCOL.md).

``Transport`` is the base class (write a line, read a line with a deadline, request/response
with ids); ``SerialTransport`` implements it with pyserial, so one URL form reaches everything:
``/dev/ttyUSB0``, a pty path printed by ``squeezeedge emulate``, or ``socket://host:port``.

``DeviceEngine`` is the classify engine over a transport: ``.name``, ``.classify(data) -> Answer``
(what host_tools/classify.classify_line calls) and ``.classify_json(data) -> dict`` (the device's
own JSON line, with ``time_us``); ``engines.open_device_engine`` opens one by kind.
"""

from __future__ import annotations

import itertools
import json
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
