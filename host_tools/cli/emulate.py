"""``squeezeedge emulate``: the firmware on this machine in the foreground until Ctrl-C: the host
emulator on a serial line or over MQTT, or a board's firmware image under QEMU."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..boards import (BOARDS, QEMU_TIME_CAVEAT, BoardError, board_image, build_board, find_board, size_report,
                      start_qemu_board)
from ..broker import MqttError, add_broker_arguments, broker_options, mask, parse_broker_url, settings_from_args
from ..emulator import (Emulator, EmulatorError, build_emulator, default_model_path, names_refusal, parse_serial,
                        prepare_package, start_mqtt_emulator, write_names_init)
from ..models.gazetteer import HomeNames, NamesError
from ..mqtt import check_device, connect_client, default_local_port, start_local_broker
from ..transport import TransportError
from .common import add_model_arguments


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("emulate", help="run the firmware on this machine (host emulator)",
                              description="Build the host emulator for a model (cached) and serve the "
                                          "device protocol in the foreground until interrupted.")
    p.add_argument("--board", default="host", choices=("host", *BOARDS),
                   help="host: the POSIX emulator of the firmware (default); stm32f405: the board's real firmware "
                        "image under qemu-system-arm -M netduinoplus2, its USART1 on --serial tcp:PORT; rv32-virt: "
                        "the firmware on the ESP32-C3's ISA under qemu-system-riscv32 -M virt, its UART on "
                        "--serial tcp:PORT")
    add_model_arguments(p, "a .semodel file or a model package directory")
    p.add_argument("--image", metavar="PATH",
                   help="with --board stm32f405|rv32-virt: run this firmware image as it is (the firmware.elf, or "
                        "the directory, that `squeezeedge build --board ... -o DIR` wrote) instead of building one")
    p.add_argument("--serial", default="pty", help="pty | tcp:PORT | stdio (default: pty)")
    p.add_argument("--idle-timeout", type=float, metavar="SECONDS",
                   help="with --serial tcp:PORT: close a client that sent nothing for this long, so forgotten "
                        "connections cannot hold all 64 of the emulator's client slots (default: 120; 0: never)")
    p.add_argument("--sanitize", action="store_true", help="build with AddressSanitizer and UBSan")
    add_broker_arguments(p, "serve over MQTT instead: mqtt://host[:port] or mqtts://host[:port] (TLS); credentials "
                            "from --credentials FILE or the environment, never from this URL if you can help it")
    p.add_argument("--mqtt", action="store_true",
                   help="serve over MQTT on an in-process broker, started here on 127.0.0.1:1883 (where `squeezeedge "
                        "mqtt send` looks by default) when that port is free, else on any free port")
    p.add_argument("--device", default="emulator", help="the device id on the broker (default: emulator)")
    p.add_argument("--names", metavar="FILE.json",
                   help='the home\'s names, sent to the device before it serves: {"area": [...], "floor": [...], '
                        '"name": {"light": [...], ...}} (host emulator over a serial line)')
    p.set_defaults(func=run)
    return p


def wait_while_alive(emu: "Emulator") -> int:
    """Block until the emulator exits (an error: it should run until interrupted)."""
    while emu.alive():
        time.sleep(0.2)
    print(f"emulate: the emulator exited with status {emu.proc.returncode}", file=sys.stderr)
    return 1


def run(args) -> int:
    names = None
    if getattr(args, "names", None):
        if args.board != "host" or getattr(args, "broker", None) or getattr(args, "mqtt", False):
            print("emulate: --names works with the host emulator on a serial line (pty, tcp or stdio); "
                  "tell other devices with `squeezeedge names push FILE --port URL` (or --broker URL "
                  "--device ID) once they run", file=sys.stderr)
            return 2
        try:
            names = HomeNames.load(args.names)
        except NamesError as e:
            print(f"emulate: {e}", file=sys.stderr)
            return 2
    if getattr(args, "image", None) and args.board == "host":
        print("emulate: --image runs a board's firmware image under QEMU (--board stm32f405 or rv32-virt); "
              "the host emulator is built from --model", file=sys.stderr)
        return 2
    idle = getattr(args, "idle_timeout", None)
    if idle is not None and (args.board != "host" or not args.serial.startswith("tcp:") or idle < 0
                             or getattr(args, "broker", None) or getattr(args, "mqtt", False)):
        print("emulate: --idle-timeout is for the host emulator serving --serial tcp:PORT, and is a number of "
              "seconds >= 0 (0: never)", file=sys.stderr)
        return 2
    if args.board != "host":
        return run_board(args)
    say = lambda s: print(f"emulate: {s}", file=sys.stderr, flush=True)  # noqa: E731
    if getattr(args, "broker", None) or getattr(args, "mqtt", False):
        return run_mqtt(args, say)
    try:
        source = args.model or default_model_path()
        if not Path(source).exists():
            raise EmulatorError(f"{source}: no such model; pass --model FILE.semodel or a package directory")
        binary = build_emulator(prepare_package(source, say), sanitize=args.sanitize, progress=say)
        argv = [str(binary), *parse_serial(args.serial), *(["--idle-timeout", f"{idle:g}"] if idle is not None else [])]
    except EmulatorError as e:
        print(f"emulate: {e}", file=sys.stderr)
        return 2
    if args.serial == "stdio":  # the protocol on our own stdin/stdout
        init = write_names_init(names) if names else None
        if init:  # a dry run with no input first, so that a refused name is one sentence, not raw JSON
            r = subprocess.run([argv[0], "--init", str(init), "--stdio"], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, errors="replace")
            if r.returncode != 0:
                init.unlink(missing_ok=True)
                refusal = names_refusal(names, r.stderr.splitlines())
                print(f"emulate: {refusal + '; fix or remove it in the names file' if refusal else r.stderr.strip()}",
                      file=sys.stderr)
                return 2
        proc = subprocess.Popen([argv[0], *(["--init", str(init)] if init else []), *argv[1:]])
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGTERM)
            return proc.wait()
        finally:
            if init:
                init.unlink(missing_ok=True)
    emu = Emulator(binary, args.serial, args=argv[1:], names=names)
    try:
        emu.start()
        print(f"emulator listening on {emu.url}  (squeezeedge send 'turn on the light' --port {emu.url}); "
              "Ctrl-C stops it", flush=True)
        return wait_while_alive(emu)
    except KeyboardInterrupt:
        return 0
    except EmulatorError as e:
        print(f"emulate: {e}", file=sys.stderr)
        return 2
    finally:
        emu.stop()


def run_board(args) -> int:
    """``squeezeedge emulate --board NAME [--model PATH | --image PATH] [--serial tcp:PORT]``: the board
    firmware (built for the model, or the image ``squeezeedge build`` wrote) under QEMU in the
    foreground until Ctrl-C. Only ``tcp:PORT`` serials (0 = a free port)."""
    say = lambda s: print(f"emulate: {s}", file=sys.stderr, flush=True)  # noqa: E731
    serial = getattr(args, "serial", None) or "tcp:0"
    if serial == "pty":  # the host emulator's default; QEMU's pty loses early bytes, use TCP
        serial = "tcp:0"
    if not serial.startswith("tcp:") or not serial[4:].isdigit() or int(serial[4:]) > 65535:
        print(f"emulate: --serial {serial}: a board under QEMU serves tcp:PORT only (0 = any free port)",
              file=sys.stderr)
        return 2
    image = getattr(args, "image", None)
    if image and getattr(args, "model", None):
        print("emulate: --image runs the model built into that image; drop --model (or build another image "
              "with `squeezeedge build --model PATH`)", file=sys.stderr)
        return 2
    try:
        if image:  # the image `squeezeedge build` made, as it is: nothing is rebuilt
            elf = board_image(image, args.board)
            b = find_board(args.board)
            if shutil.which(b.toolchain + "size"):
                say(f"{elf}: {size_report(elf, args.board).report()}")
        else:
            fw = build_board(args.board, getattr(args, "model", None), progress=say)
            say(fw.size.report())
            elf = fw.elf
        q = start_qemu_board(elf, int(serial[4:]) or None, args.board)
    except (BoardError, EmulatorError) as e:
        print(f"emulate: {e}", file=sys.stderr)
        return 2
    try:  # Ctrl-C and SIGTERM stop QEMU too (KeyboardInterrupt: cli.interrupt_on_signals)
        say(QEMU_TIME_CAVEAT.format(board=args.board))
        print(f"{args.board} (QEMU {q.board.qemu_machine}) {q.board.uart} on {q.url}  "
              f"(squeezeedge send 'turn on the light' --port {q.url}); Ctrl-C stops it", flush=True)
        while q.alive():
            time.sleep(0.2)
        print(f"emulate: QEMU exited with status {q.proc.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        q.stop()


def run_mqtt(args, say) -> int:
    """``squeezeedge emulate --broker URL | --mqtt [--device ID]``: serve the device over MQTT."""
    local = emu = None
    try:
        source = args.model or default_model_path()
        if not os.path.exists(source):
            raise EmulatorError(f"{source}: no such model; pass --model FILE.semodel or a package directory")
        check_device(args.device)
        broker = settings_from_args(args) if args.broker else None
        if broker is None:  # where `squeezeedge mqtt send` looks by default, if free
            port = default_local_port()
            try:
                local = start_local_broker(port)
            except MqttError:
                if port is None:
                    raise
                local = start_local_broker()  # taken in the meantime
            broker = parse_broker_url(local.url)
            print(f"MQTT broker (in-process amqtt) listening on {broker.url}", flush=True)
        else:
            connect_client(broker).disconnect()  # an unreachable broker: one clear line, now
        emu = start_mqtt_emulator(source, broker, args.device, sanitize=args.sanitize, progress=say)
        print(f"emulator serving device {args.device!r} on {broker.url}  "
              f"(squeezeedge mqtt send 'turn on the light' --device {args.device} {broker_options(broker)}); "
              "Ctrl-C stops it", flush=True)
        return wait_while_alive(emu)
    except KeyboardInterrupt:
        return 0
    except (EmulatorError, TransportError) as e:
        print(f"emulate: {mask(str(e))}", file=sys.stderr)
        return 2
    finally:
        if emu is not None:
            emu.stop()
        if local is not None:
            local.stop()
