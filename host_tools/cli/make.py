"""``squeezeedge make``: your sentence YAML → a trained model → firmware for a board (→ flashed),
each step skipped when its inputs did not change (:mod:`squeezeedge.pipeline`)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..models.config import DEFAULT_PRESET, PRESETS
from .common import CliError


def add_parser(sub) -> None:
    from ..pipeline import MODEL_FILE, STATE_FILE, targets

    p = sub.add_parser(
        "make", help="your own commands (sentence YAML) → model → firmware for a board, in one step",
        description="Train a model on your commands (Home Assistant custom-sentence YAML, e.g. "
                    "examples/appliances/washer.yaml), compile it and build it for --board; with --flash also write "
                    f"it to the board. DIR gets {MODEL_FILE}, the build's files and {STATE_FILE}, which records what "
                    "each step was made from: running again retrains only when the sentences or training settings "
                    "changed, and rebuilds only when the model or the board did.",
        epilog="examples: squeezeedge make --sentences examples/appliances/washer.yaml --board stm32f405 -o washer/ | "
               "--board host (then: squeezeedge emulate --model washer/model.semodel) | --board micropython-armv7emsp "
               "--flash --port /dev/ttyACM0")
    p.add_argument("--sentences", nargs="+", required=True, metavar="PATH",
                   help="your commands: Home Assistant custom-sentence YAML files or folders of them")
    p.add_argument("--board", required=True, choices=targets(), metavar="TARGET",
                   help="what to build: " + ", ".join(targets()) + " (host: the emulator on this machine; "
                        "micropython-ARCH: a native module for a stock MicroPython)")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="where everything goes (default: the first file's name, washer.yaml → washer/)")
    p.add_argument("--language", metavar="XX", help="the language of the sentences (default: the files' 'language:')")
    p.add_argument("--with-home-assistant", action="store_true",
                   help="also know Home Assistant's intents (English)")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS),
                   help=f"model size (default: {DEFAULT_PRESET}; see `squeezeedge train --help`)")
    p.add_argument("--seed", type=int, default=0, help="seed for the data split and training (default: 0)")
    p.add_argument("--epochs", type=int, help="training epochs (default: 30 for your own sentences)")
    p.add_argument("--samples-per-template", type=int, metavar="N", help="sentences sampled per template (default: 150)")
    p.add_argument("--flash", action="store_true",
                   help="then write it to the board: stm32f405 over its UART bootloader, micropython-ARCH with "
                        "mpremote (needs --port)")
    p.add_argument("--port", help="with --flash: the board's serial port")
    p.add_argument("--quiet", action="store_true", help="no progress bar while training")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..boards import BoardError
    from ..emulator import EmulatorError
    from ..flash import FlashError
    from ..micropython.source import MicroPythonError
    from ..models.sentence_spec import SpecError
    from ..pipeline import PipelineError, TrainSettings, flash, make

    if args.port and not args.flash:
        raise CliError("--port is for --flash: add --flash to write the build to the board at that port")
    settings = TrainSettings(args.language, args.with_home_assistant, args.preset, args.seed, args.epochs,
                             args.samples_per_template)
    say = lambda s: print(f"make: {s}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        out = args.output or Path(args.sentences[0]).stem
        result = make(args.sentences, args.board, out, settings, progress=say, train_progress=not args.quiet)
        print(result.report)
        if args.flash:
            print(flash(result, args.board, args.port, progress=say))
    except (SpecError, PipelineError, BoardError, EmulatorError, FlashError, MicroPythonError) as e:
        raise CliError(str(e)) from None
    return 0
