"""``squeezeedge send``: requests to a device on a serial line (or socket), answers as JSON lines.
``print_answers`` is also the body of ``squeezeedge mqtt send``."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time

from ..transport import BAUDRATE, DEFAULT_TIMEOUT, Transport, TransportError, open_transport, seconds


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("send", help="send commands to a device (or emulator) and print its answers",
                              description="Send each TEXT as one request; print one JSON answer per line.")
    p.add_argument("text", nargs="*", metavar="TEXT", help="commands; none: read lines from stdin")
    p.add_argument("--port", required=True, help="/dev/ttyUSB0, a pty path or socket://HOST:PORT")
    p.add_argument("--baud", type=int, default=BAUDRATE)
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for each answer")
    p.add_argument("--cmd", choices=["info", "version", "stats", "ping"], help="send a device command instead")
    p.set_defaults(func=run)
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


def run(args) -> int:
    try:
        with open_transport(args.port, args.baud) as t:
            t.resync()
            return print_answers(t, args)
    except TransportError as e:
        print(f"send: {e}", file=sys.stderr)
        return 2
