"""``squeezeedge mqtt send | listen | acl``: devices through an MQTT broker, and a locked-down
mosquitto configuration for them."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time

from ..broker import MqttError, add_broker_arguments, mask, settings_from_args
from ..mqtt import MqttTransport, connect_client, request_expiry, topics
from ..mqtt_acl import write_acl
from ..transport import DEFAULT_TIMEOUT, TransportError
from .send import print_answers

SEND_WINDOW = 32  # `mqtt send`: requests in flight at once (answers still print in input order)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("mqtt", help="talk to devices through an MQTT broker",
                              description="Requests on squeezeedge/ID/cmd, answers on squeezeedge/ID/result.")
    sub = p.add_subparsers(dest="mqtt_command", required=True)
    s = sub.add_parser("send", help="send commands to a device and print its answers",
                       description="Send each TEXT as one QoS 1 request; print one JSON answer per line.")
    s.add_argument("text", nargs="*", metavar="TEXT", help="commands; none: read lines from stdin")
    s.add_argument("--device", required=True, help="the device id")
    s.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help="seconds to wait for each answer; with MQTT 5 a request also expires at the broker after "
                        "this long, so a device that comes back later never runs it")
    add_broker_arguments(s)
    s.add_argument("--cmd", choices=["info", "version", "stats", "ping"], help="send a device command instead")
    s.set_defaults(func=run_send)
    li = sub.add_parser("listen", help="print what devices answer and announce",
                        description="Print every result and status message as one JSON line until Ctrl-C.")
    li.add_argument("--device", default="+", help="a device id, or + for all (default)")
    add_broker_arguments(li)
    li.add_argument("--count", type=int, default=0, help="exit after this many messages (0: never)")
    li.add_argument("--timeout", type=float, default=0, help="exit after this many seconds (0: never)")
    li.set_defaults(func=run_listen)
    add_acl_parser(sub)
    return p


def run_send(args) -> int:
    try:
        settings = settings_from_args(args)
        with MqttTransport(settings, args.device, expiry=request_expiry(args.timeout)) as t:
            return print_answers(t, args, window=SEND_WINDOW)
    except (TransportError, ValueError) as e:
        print(f"mqtt send: {mask(str(e))}", file=sys.stderr)
        return 2


def run_listen(args) -> int:
    out: queue.Queue = queue.Queue()
    try:
        t = topics(args.device, allow_wildcard=True)
        client = connect_client(settings_from_args(args),
                                on_message=lambda c, u, m: out.put((m.topic, bytes(m.payload), m.retain)))
    except MqttError as e:
        print(f"mqtt listen: {e}", file=sys.stderr)
        return 2
    client.subscribe([(t["result"], 1), (t["status"], 1)])
    deadline = time.monotonic() + args.timeout if args.timeout else None
    n = 0
    try:
        while not args.count or n < args.count:
            left = 0.5 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                break
            try:
                topic, payload, retain = out.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            text = payload.decode("utf-8", "replace")
            try:
                value = json.loads(text) if topic.endswith("/result") else text
            except ValueError:
                value = text
            print(json.dumps({"topic": topic, "payload": value, **({"retained": True} if retain else {})},
                             ensure_ascii=False), flush=True)
            n += 1
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return 0


def add_acl_parser(sub) -> None:
    a = sub.add_parser("acl", help="write a locked-down mosquitto configuration (users, passwords, ACL)",
                       description="Write a mosquitto password file, an ACL and a mosquitto.conf snippet into DIR: "
                                   "each device may only read its own requests and publish its own answers, status "
                                   "and discovery; only the controller may send requests (commands and names); "
                                   "anonymous clients are refused. Each user's password is written to "
                                   "DIR/credentials/USER.toml (chmod 600): give it to that client with --credentials "
                                   "(the tools) or --config (the emulator). A serial board's bridge logs in as that "
                                   "board's device id. Passwords already there are kept.",
                       epilog="example: squeezeedge mqtt acl --device kitchen --device hall --controller homeassistant "
                              "-o /etc/mosquitto/squeezeedge; then add `include_dir /etc/mosquitto/squeezeedge` to "
                              "/etc/mosquitto/mosquitto.conf (it loads the mosquitto.conf written there) and restart "
                              "mosquitto")
    a.add_argument("--device", action="append", required=True, metavar="ID", help="a device id (repeat for each)")
    a.add_argument("--controller", required=True, metavar="NAME",
                   help="the user allowed to send requests and names: Home Assistant, or the host where you run "
                        "`squeezeedge mqtt send` and `names push`")
    a.add_argument("-o", "--output", required=True, metavar="DIR", help="where to write the files")
    a.set_defaults(func=run_acl)


def run_acl(args) -> int:
    try:
        files = write_acl(args.output, args.device, args.controller)
    except (MqttError, OSError) as e:
        print(f"mqtt acl: {e}", file=sys.stderr)
        return 2
    print(f"wrote {files.directory}/passwd, acl and mosquitto.conf (include it in the broker's configuration)")
    for user in files.users:
        print(f"  {user}: --credentials {files.credentials(user)}")
    return 0
