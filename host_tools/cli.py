"""The ``squeezeedge`` command: a thin layer over the library."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from . import __version__
from .resources import CHECKOUT

DEMO_SENTENCES = [
    "turn off the kitchen lights",
    "set the thermostat to 21 degrees",
    "start a 10 minute timer",
    "could you dim the bedroom lights to 30 percent please",
    "what's the weather like",
    "turn on the lights in the sunroom",
    "tell me a joke",
]


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def _load_model(path: str | None):
    from .models.engine import DEFAULT_MODEL
    from .models.model_file import IntModel, ModelFileError

    path = Path(path) if path else DEFAULT_MODEL
    try:
        return IntModel.load(path)
    except ModelFileError as e:
        hint = " (train one with `squeezeedge train -o PATH`)" if not path.exists() else ""
        raise CliError(f"{e}{hint}") from None


ENGINES = ("reference", "c", "emulator", "device", "micropython")


def _load_names(path: str | None):
    from .models.gazetteer import NamesError
    from .names import load_names

    try:
        return load_names(path)
    except NamesError as e:
        raise CliError(str(e)) from None


def _open_engine(name: str, model_path: str | None, port: str | None = None, broker: str | None = None,
                 device: str | None = None, names=None, arch: str | None = None):
    """An engine by name; ``names`` (HomeNames) are given to it: kept by the host engines, sent
    to a device or emulator."""
    from .models.gazetteer import NamesError

    try:
        engine = _open_engine_without_names(name, model_path, port, broker, device, names, arch)
        if names and hasattr(engine, "transport"):
            from .names import push_names

            try:
                push_names(engine.transport, names)
            except BaseException:
                engine.close()
                raise
        return engine
    except NamesError as e:
        raise CliError(str(e)) from None


def _open_engine_without_names(name, model_path, port, broker, device, names, arch=None):
    if name == "reference":
        from .models.engine import ReferenceEngine

        return ReferenceEngine(_load_model(model_path), names)
    if name == "c":
        from .compiler.host_engine import CEngine, CEngineError

        try:
            return CEngine(_load_model(model_path), names=names)
        except CEngineError as e:
            raise CliError(str(e)) from None
    if name == "device" and broker:
        from .mqtt import open_mqtt_engine
        from .transport import TransportError

        try:
            return open_mqtt_engine(broker, device)
        except (TransportError, OSError, RuntimeError) as e:
            raise CliError(str(e)) from None
    if name in ("emulator", "device"):
        from .transport import TransportError, open_device_engine

        try:
            return open_device_engine(name, model=model_path, port=port)
        except (TransportError, OSError, RuntimeError) as e:
            raise CliError(str(e)) from None
    if name == "micropython":
        from .micropython.engine import MicroPythonBoardEngine, MicroPythonEngine
        from .micropython.source import MicroPythonError

        say = lambda s: print(f"classify: {s} ...", file=sys.stderr, flush=True)  # noqa: E731
        try:
            if arch in (None, "x64"):
                return MicroPythonEngine(_load_model(model_path), names, progress=say)
            return MicroPythonBoardEngine(_load_model(model_path), arch, names, progress=say)
        except MicroPythonError as e:
            raise CliError(str(e)) from None
    raise CliError(f"unknown engine {name!r}; available: {', '.join(ENGINES)}")


def _broker_settings(args):
    """--broker and its TLS/credential options as one settings object (None: no --broker)."""
    if not args.broker:
        return None
    from .broker import MqttError, settings_from_args

    try:
        return settings_from_args(args)
    except MqttError as e:
        raise CliError(str(e)) from None


def cmd_classify(args) -> int:
    from .classify import classify_line, input_lines, write_json

    engine = _open_engine(args.engine, args.model, args.port, _broker_settings(args), args.device,
                          _load_names(args.names), args.arch)
    sys.stdout.reconfigure(encoding="utf-8")
    lines = (t.encode("utf-8", errors="surrogateescape") for t in args.text) if args.text \
        else input_lines(sys.stdin.buffer)
    try:
        for line in lines:
            write_json(classify_line(engine, line), sys.stdout)
    finally:
        if hasattr(engine, "close"):
            engine.close()  # stops an emulator the engine started
    return 0


def cmd_names(args) -> int:
    from .models.gazetteer import NamesError
    from .names import cmd_names as run
    from .transport import DeviceError, TransportError

    try:
        return run(args)
    except (NamesError, TransportError, DeviceError, OSError) as e:
        raise CliError(str(e)) from None


def cmd_dataset(args) -> int:
    from .models.dataset import build_dataset, format_stats

    print(format_stats(build_dataset(seed=args.seed, samples_per_template=args.samples_per_template)))
    return 0


def _metrics_table(metrics: dict) -> str:
    rows = ["| split | engine | intent acc | slot F1 | OOS rejected | in-scope rejected |",
            "|---|---|---|---|---|---|"]
    for split, engines in metrics.items():
        for engine, m in engines.items():
            m = m if isinstance(m, dict) else m.as_dict()
            oos = f"{100 * m['oos_rejection']:.1f}% (n={m['n_out_of_scope']})" if m["n_out_of_scope"] else "-"
            rows.append(f"| {split} | {engine} | {100 * m['intent_accuracy']:.2f}% (n={m['n_in_scope']}) | "
                        f"{100 * m['slot_f1']:.2f}% | {oos} | {100 * m['false_rejection']:.2f}% |")
    return "\n".join(rows)


def cmd_train(args) -> int:
    from .models.config import PRESETS
    from .models.dataset import build_dataset, format_stats
    from .models.train import TrainOptions, run_training

    if args.preset not in PRESETS:
        raise CliError(f"unknown preset {args.preset!r}; choose from {', '.join(PRESETS)}")
    print(f"building the dataset (seed {args.seed}) ...", file=sys.stderr)
    dataset = build_dataset(seed=args.seed, samples_per_template=args.samples_per_template)
    if args.stats:
        print(format_stats(dataset), file=sys.stderr)
    opts = TrainOptions(preset=args.preset, seed=args.seed, init_seed=args.init_seed, epochs=args.epochs, lr=args.lr,
                        samples_per_template=args.samples_per_template, progress=not args.quiet)
    result = run_training(dataset, opts)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.model.save(out)
    m = result.model
    print(f"saved {out}: preset {args.preset}, {m.parameter_count():,} parameters, {m.weight_bytes():,} bytes of "
          f"integers + {m.vocab_bytes():,} bytes of vocabulary, trained in {result.seconds:.0f} s")
    print(_metrics_table(result.metrics))
    return 0


def cmd_eval(args) -> int:
    from .models.dataset import build_dataset
    from .models.evaluate import evaluate, evaluate_records, load_paraphrases

    from .models.engine import tokenizer_for
    from .models.gazetteer import readable, supports_names
    from .names import example_home

    if args.no_names:
        names = None
    elif args.names:
        names = _load_names(args.names)
    else:  # the held-out sentences' home (as much of it as the model can hold), if it takes names
        model = _load_model(args.model)
        names = readable(tokenizer_for(model), example_home()) if supports_names(model.vocab) else None
    engine = _open_engine(args.engine, args.model, names=names)
    engine.name = f"{engine.name}, {f'{len(names)} home names' if names else 'no home names'}"
    seed = engine.model.info.get("seed", 0) if args.seed is None else args.seed
    metrics = {}
    if args.split in ("test", "dev", "all"):
        dataset = build_dataset(seed=seed)
        for split in ("test", "dev"):
            if args.split in (split, "all"):
                metrics[split] = {engine.name: evaluate(engine.classify, getattr(dataset, split))}
    if args.split in ("paraphrase", "all"):
        metrics["paraphrase"] = {engine.name: evaluate_records(engine.classify, load_paraphrases())}
    if args.json:
        print(json.dumps({s: {e: m.as_dict() for e, m in d.items()} for s, d in metrics.items()}, indent=2))
        return 0
    print(_metrics_table(metrics))
    if args.diagnose and args.split in ("test", "dev", "all"):
        from .models.evaluate import slot_diagnostics

        for split in ("test", "dev"):
            if args.split in (split, "all"):
                d = slot_diagnostics(engine.classify, getattr(dataset, split))
                print(f"\nslot F1 on {split}: {100 * d['slot_f1']:.1f}%; area/floor/name as one type "
                      f"{100 * d['slot_f1_entity_types_merged']:.1f}%")
    if args.per_slot:
        for split, engines in metrics.items():
            for name, m in engines.items():
                print(f"\nslot F1 by slot, {split} ({name}): " + ", ".join(
                    f"{slot} {100 * f1:.0f}%" for slot, f1 in sorted(m.slot_f1_by_name.items(), key=lambda kv: kv[1])))
    return 0


def _demo_round(title: str, engine, reference) -> None:
    from .classify import classify_line

    print(title)
    for sentence in DEMO_SENTENCES:
        started = time.perf_counter()
        answer = engine.classify_json(sentence.encode())
        ms = 1000 * (time.perf_counter() - started)
        fields = {k: answer.get(k) for k in ("intent", "confidence", "slots")}
        same = classify_line(reference, sentence.encode()) == {"text": answer.get("text"), **fields}
        print(f"> {sentence}\n  {json.dumps(fields)}\n  round trip {ms:.1f} ms, inference on the device "
              f"{answer.get('time_us', 0) / 1000:.2f} ms, {'equal to' if same else 'DIFFERENT FROM'} the integer reference")
    print()


# What `squeezeedge demo` (make demo) ends with: one thing to try on a board in QEMU, one over MQTT,
# one with the user's own sentence. Each "$ " line is a command; tests/test_demo_next_steps.py
# runs them all as printed. In a checkout `make setup` made .venv; installed from a wheel, the
# command is wherever pip put it and the system packages are the user's to install.
NEXT_STEPS = ("""\
Try next (`squeezeedge` is .venv/bin/squeezeedge: `. .venv/bin/activate` puts it on the PATH):
1. A board: the STM32F405 firmware under QEMU (arm-none-eabi-gcc and qemu-system-arm; make setup
   installs them). In one terminal, then in another:
""" if CHECKOUT else """\
Try next:
1. A board: the STM32F405 firmware under QEMU (apt-get install gcc-arm-none-eabi
   libnewlib-arm-none-eabi qemu-system-arm). In one terminal, then in another:
""") + """\
   $ squeezeedge emulate --board stm32f405 --serial tcp:5555
   $ squeezeedge send "turn on the lights in the living room" --port socket://127.0.0.1:5555
2. MQTT: the emulator on an in-process broker (127.0.0.1:1883). In one terminal, then in another:
   $ squeezeedge emulate --mqtt
   $ squeezeedge mqtt send "pause the music" --device emulator
3. Your own sentences, with your home's names (edit home.json to your areas, floors and devices):
   $ squeezeedge names example -o home.json
   $ squeezeedge classify --names home.json "dim the bedroom lights to 30 percent"
"""


def cmd_demo(args) -> int:
    """The product in a minute: the shipped model compiled to C, running in the firmware's host
    emulator, answering over a serial line and over MQTT exactly as the integer reference does."""
    from .models.engine import ReferenceEngine
    from .mqtt import open_mqtt_engine
    from .transport import open_device_engine

    from .names import example_home, push_names

    model = _load_model(args.model)
    names = example_home()
    reference = ReferenceEngine(model, names)
    print(f"SqueezeEdge {__version__}: compiling the shipped int8 model to C, building the host emulator ...\n")
    with open_device_engine("emulator", model=args.model) as device:
        count = push_names(device.transport, names)
        print(f"told the device the example home's names ({count}: areas, floors, devices; "
              f"`squeezeedge names example`)\n")
        _demo_round(f"== over a serial line ({device.transport.url}) ==", device, reference)
    with open_mqtt_engine(None, "demo", model=args.model) as device:
        push_names(device.transport, names)
        _demo_round("== over MQTT (in-process amqtt broker; topics squeezeedge/demo/cmd and /result) ==", device,
                    reference)
    print(NEXT_STEPS, end="", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="squeezeedge",
        description="Train, quantize, compile and run a tiny int8 SqueezeBERT that understands home commands.",
    )
    p.add_argument("--version", action="version", version=f"squeezeedge {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("classify", help="classify text, one JSON object per line",
                       description="Classify commands. With no TEXT, reads UTF-8 lines from stdin. Writes one "
                                   "JSON object per input line, in order: {text, intent, confidence, slots}, or "
                                   "{text, error} for a line that cannot be processed.")
    c.add_argument("text", nargs="*", metavar="TEXT", help="commands to classify (default: lines of stdin)")
    c.add_argument("--engine", default="reference", choices=ENGINES,
                   help="reference: the numpy integer interpreter; c: the TVM-generated C compiled for this "
                        "host; emulator: the firmware's host emulator, started for this run; device: whatever "
                        "answers at --port; micropython: MicroPython's unix port importing the native module "
                        "squeezeedge.mpy (built on demand from ../shared/micropython or $MICROPY_DIR, cached) "
                        "(default: reference)")
    c.add_argument("--port", metavar="URL", help="for --engine device: /dev/ttyUSB0, a pty path or socket://host:port")
    c.add_argument("--device", metavar="ID", help="for --engine device over MQTT: the device's id")
    from .broker import add_broker_arguments

    add_broker_arguments(c, "for --engine device over MQTT: mqtt://host[:port] or mqtts://host[:port] (TLS)")
    c.add_argument("--arch", choices=["x64", "armv7m", "armv7emsp", "rv32imc"],
                   help="for --engine micropython: x64, the unix port on this machine (default); armv7m, armv7emsp "
                        "or rv32imc, the native module for that ISA on a MicroPython board in QEMU (MPS2_AN385, "
                        "MPS2_AN500, VIRT_RV32), driven by mpremote")
    c.add_argument("--model", metavar="PATH", help="int8 model file (default: the shipped model)")
    c.add_argument("--names", metavar="FILE", help="the home's names (JSON, see `squeezeedge names`): names listed "
                                                  "there are recognised as areas, floors and devices; a device or "
                                                  "emulator is sent them first (default: none)")
    c.set_defaults(func=cmd_classify)

    from .compiler.cli import add_compile_parser
    from .emulator import add_emulate_parser
    from .bench import add_bench_parser
    from .boards import add_build_parser
    from .bridge import add_bridge_parser
    from .flash import add_flash_parser
    from .e2e_bench import add_e2e_bench_parser
    from .mqtt import add_mqtt_parser
    from .transport import add_send_parser

    add_compile_parser(sub)
    add_build_parser(sub)
    add_flash_parser(sub)
    add_emulate_parser(sub)
    add_send_parser(sub)
    add_mqtt_parser(sub)
    add_bridge_parser(sub)
    add_bench_parser(sub)
    add_e2e_bench_parser(sub)
    from .names import add_names_parser

    add_names_parser(sub).set_defaults(func=cmd_names)

    from .models.config import DEFAULT_PRESET, PRESETS

    presets = "; ".join(f"{n}: H{pr.config.hidden} L{pr.config.layers} V{pr.config.vocab_size} ({pr.description})"
                        for n, pr in PRESETS.items())
    t = sub.add_parser("train", help="train a model and write the int8 model file",
                       description="Build the dataset from Home Assistant's intents, train a float SqueezeBERT "
                                   "on the CPU, quantize it to int8 and report held-out metrics.",
                       epilog=f"presets — {presets}")
    t.add_argument("--preset", default=DEFAULT_PRESET, help=f"size preset (default: {DEFAULT_PRESET})")
    t.add_argument("-o", "--output", required=True, metavar="PATH", help="where to write the .semodel file")
    t.add_argument("--seed", type=int, default=0, help="seed for data split, sampling and training (default: 0)")
    t.add_argument("--init-seed", type=int, help="another training run on the same data: seed for the weights and "
                                                 "batch order only (default: --seed)")
    t.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    t.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: 3e-3)")
    t.add_argument("--samples-per-template", type=int, default=40, help="sentences sampled per template (default: 40)")
    t.add_argument("--stats", action="store_true", help="print dataset statistics first")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="measure a model on held-out data",
                       description="Intent accuracy, slot F1 and out-of-scope rejection on the held-out test and dev "
                                   "splits and on the hand-written paraphrase set.")
    e.add_argument("--model", metavar="PATH", help="int8 model file (default: the shipped model)")
    e.add_argument("--engine", default="reference", choices=("reference", "c"), help="inference engine (default: reference)")
    e.add_argument("--diagnose", action="store_true",
                   help="also print how much of the slot error is typing: F1 with area/floor/name as one type")
    e.add_argument("--names", metavar="FILE", help="the home's names (default: the example home of "
                                                  "`squeezeedge names example`, the home of the held-out sentences)")
    e.add_argument("--no-names", action="store_true", help="measure a device told no names")
    e.add_argument("--split", choices=("test", "dev", "paraphrase", "all"), default="all")
    e.add_argument("--seed", type=int, help="dataset seed (default: the one the model was trained with)")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.add_argument("--per-slot", action="store_true", help="also print slot F1 for each slot name")
    e.set_defaults(func=cmd_eval)

    d = sub.add_parser("dataset", help="print dataset statistics")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--samples-per-template", type=int, default=40)
    d.set_defaults(func=cmd_dataset)

    m = sub.add_parser("demo", help="a short demonstration on the shipped model")
    m.add_argument("--model", metavar="PATH", help="int8 model file (default: the shipped model)")
    m.set_defaults(func=cmd_demo)
    return p


def interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM end every command with KeyboardInterrupt, so emulators, QEMU and brokers
    it started are stopped; also when we were started with SIGINT ignored (a background job of a
    shell without job control inherits that, and Python then never raises KeyboardInterrupt)."""
    def interrupt(_sig, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    interrupt_on_signals()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as e:
        from .broker import mask

        print(f"squeezeedge: error: {mask(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("squeezeedge: interrupted", file=sys.stderr)
        return 130
