"""``squeezeedge bridge``: a serial board on MQTT, with the emulator's topics and discovery."""

from __future__ import annotations

import argparse
import sys

from ..bridge import MAX_REQUEST_AGE, Bridge, default_device
from ..broker import add_broker_arguments, broker_options, mask, resolve, settings_from_args
from ..models.gazetteer import HomeNames
from ..mqtt import check_device, start_local_broker
from ..transport import BAUDRATE, DEFAULT_TIMEOUT, TransportError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bridge", help="put a serial board on MQTT (same topics and discovery as the emulator)",
                              description="Forward each request on squeezeedge/ID/cmd to the board as one line; "
                                          "publish its answer on squeezeedge/ID/result. Runs until Ctrl-C.")
    p.add_argument("--port", required=True, metavar="URL", help="/dev/ttyACM0, a pty path or socket://HOST:PORT")
    p.add_argument("--device", metavar="ID", help="the device id on the broker (default: from the port name)")
    add_broker_arguments(p, "mqtt://host[:port] or mqtts://host[:port] (TLS) (default: start an in-process broker "
                            "and print its URL)")
    p.add_argument("--max-request-age", type=float, default=MAX_REQUEST_AGE, metavar="SECONDS",
                   help="a request that waited longer than this (the board was away) is answered with an "
                        f"\"expired\" error instead of being forwarded late (default: {MAX_REQUEST_AGE:g})")
    p.add_argument("--baud", type=int, default=BAUDRATE)
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for each board answer")
    p.add_argument("--names", metavar="FILE", help="the home's names (JSON, see `squeezeedge names`): sent to the "
                                                  "board now and again whenever it lost them (a reset empties its "
                                                  "table); the bridge then owns the board's names")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    local = None
    try:
        device = check_device(args.device or default_device(args.port))
        if args.broker is None:
            local = start_local_broker()
            broker = resolve(local.url)
            print(f"MQTT broker (in-process amqtt) listening on {broker.url}", flush=True)
        else:
            broker = settings_from_args(args)
        names = HomeNames.load(args.names) if getattr(args, "names", None) else None
        bridge = Bridge(args.port, broker, device, baudrate=args.baud, timeout=args.timeout, names=names,
                        max_request_age=getattr(args, "max_request_age", MAX_REQUEST_AGE))
        bridge.start()
        url = bridge.broker.url
        print(f"bridging {args.port} as device {device!r} on {url}  "
              f"(squeezeedge mqtt send 'turn on the light' --device {device} {broker_options(bridge.broker)}); "
              "Ctrl-C stops it",
              flush=True)
        bridge.serve_forever()
        return 0
    except KeyboardInterrupt:
        return 0
    except (TransportError, ValueError) as e:  # NamesError is a ValueError
        print(f"bridge: {mask(str(e))}", file=sys.stderr)
        return 2
    finally:
        if local is not None:
            local.stop()
