"""``squeezeedge demo`` (``make demo``): the product in a minute."""

from __future__ import annotations

import json
import time

from .. import __version__
from ..classify import classify_line
from ..engines import open_device_engine, open_mqtt_engine
from ..models.engine import ReferenceEngine
from ..names import example_home, push_names
from ..resources import CHECKOUT
from .common import load_model

DEMO_SENTENCES = [
    "turn off the kitchen lights",
    "set the thermostat to 21 degrees",
    "start a 10 minute timer",
    "could you dim the bedroom lights to 30 percent please",
    "what's the weather like",
    "turn on the lights in the sunroom",
    "tell me a joke",
]


def add_parser(sub) -> None:
    m = sub.add_parser("demo", help="a short demonstration on the shipped model")
    m.add_argument("--model", metavar="PATH", help="int8 model file (default: the shipped model)")
    m.set_defaults(func=run)


def _demo_round(title: str, engine, reference) -> None:
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


def run(args) -> int:
    """The product in a minute: the shipped model compiled to C, running in the firmware's host
    emulator, answering over a serial line and over MQTT exactly as the integer reference does."""
    model = load_model(args.model)
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
