"""From a maker's sentence YAML to a board, in one call: train → build (→ flash).

Each step records what it was made from (a digest of its inputs: the spec files, the settings,
the training code; the model and the target) in ``DIR/make.json``, and is skipped when its
inputs and outputs are still those: editing a sentence retrains and rebuilds,
running again with nothing changed does nothing, changing only the target rebuilds without
retraining. Flashing is never skipped: it is asked for each time.

Targets: a board of :mod:`.boards` (its firmware.elf/.bin/.hex), ``host`` (the host emulator,
run with ``squeezeedge emulate``), ``micropython-ARCH`` (a native module for a stock MicroPython
on ARCH, deployed with ``squeezeedge flash --micropython``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .boards import BOARDS

MODEL_FILE = "model.semodel"
STATE_FILE = "make.json"
HOST = "host"
MICROPYTHON_PREFIX = "micropython-"


class PipelineError(RuntimeError):
    """One sentence: which step failed and why."""


def targets() -> list[str]:
    from .micropython.natmod import ARCHES

    return [*BOARDS, HOST, *(MICROPYTHON_PREFIX + arch for arch in ARCHES)]


@dataclass
class TrainSettings:
    """What the train step is made from besides the spec files (all of it goes into its digest)."""

    language: str | None = None
    with_home_assistant: bool = False
    preset: str = "small"
    seed: int = 0
    epochs: int | None = None
    samples_per_template: int | None = None
    config: object | None = None  # a ModelConfig overriding the preset's (tests train tiny models)

    def key(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "config"}
        out["config"] = None if self.config is None else self.config.to_dict()
        return out


@dataclass
class MakeResult:
    model: Path
    outputs: list[Path]
    """What the build step wrote (firmware images, the emulator, the .mpy and its weights)."""
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    report: str = ""
    """The build's size report (boards) or how to run what was built."""


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True).encode())
        h.update(b"\0")
    return h.hexdigest()


class _State:
    """DIR/make.json: step → {"inputs": digest, "outputs": [names], "report": text}."""

    def __init__(self, directory: Path):
        self.path = directory / STATE_FILE
        try:
            self.steps = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.steps = {}

    def up_to_date(self, step: str, inputs: str) -> bool:
        entry = self.steps.get(step)
        return bool(entry and entry.get("inputs") == inputs and
                    all((self.path.parent / name).exists() for name in entry.get("outputs", [])))

    def record(self, step: str, inputs: str, outputs: Sequence[Path], report: str = "") -> None:
        self.steps[step] = {"inputs": inputs, "report": report,
                            "outputs": [str(p.relative_to(self.path.parent)) for p in outputs]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.steps, indent=2) + "\n")
        tmp.replace(self.path)

    def outputs(self, step: str) -> list[Path]:
        return [self.path.parent / name for name in self.steps[step]["outputs"]]


def make(sentences: Sequence[str | Path], target: str, out_dir: str | Path, settings: TrainSettings | None = None,
         progress: Callable[[str], None] | None = None, train_progress: bool = True) -> MakeResult:
    """Train a model on ``sentences`` (custom-sentence YAML files or folders) and build it for
    ``target`` into ``out_dir``, skipping the steps whose inputs did not change (see the module
    docstring). Raises SpecError for a bad spec (before anything runs), PipelineError otherwise."""
    from .models.sentence_spec import load_spec

    say = progress or (lambda s: None)
    settings = settings or TrainSettings()
    if target not in targets():
        raise PipelineError(f"unknown target {target!r}; choose from {', '.join(targets())}")
    spec = load_spec(sentences, settings.language, settings.with_home_assistant)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = _State(out)
    result = MakeResult(out / MODEL_FILE, [])

    train_inputs = _digest(__version__, _training_code(), settings.key(),
                           [(str(p), hashlib.sha256(p.read_bytes()).hexdigest()) for p in spec.files])
    if state.up_to_date("train", train_inputs):
        say(f"[1/2] train: {result.model} is up to date (same sentences and settings)")
        result.skipped.append("train")
    else:
        say(f"[1/2] train: {len(spec.templates)} templates, {len(spec.intents)} intents, language {spec.language}")
        trained = _train(spec, settings, train_progress)
        trained.model.save(result.model)
        state.record("train", train_inputs, [result.model], trained.summary)
        say(f"[1/2] train: saved {result.model} ({trained.summary})")
        result.ran.append("train")

    build_inputs = _digest(__version__, target, hashlib.sha256(result.model.read_bytes()).hexdigest())
    if state.up_to_date("build", build_inputs):
        say(f"[2/2] build {target}: up to date (same model)")
        result.skipped.append("build")
        result.outputs = state.outputs("build")
        result.report = state.steps["build"]["report"]
    else:
        say(f"[2/2] build {target}")
        result.outputs, result.report = _build(result.model, target, out, say)
        state.record("build", build_inputs, result.outputs, result.report)
        result.ran.append("build")
    return result


def _training_code() -> str:
    """A digest of the models package's sources: a changed tokenizer or sampler retrains."""
    from . import models

    folder = Path(models.__file__).parent
    return _digest(*(p.read_bytes() for p in sorted(folder.glob("*.py"))))


@dataclass
class _Trained:
    model: object
    summary: str


def _train(spec, settings: TrainSettings, progress: bool) -> _Trained:
    from .models.train import TrainOptions, train_spec

    opts = TrainOptions(preset=settings.preset, seed=settings.seed, epochs=settings.epochs, progress=progress,
                        config=settings.config)
    trained = train_spec(spec, opts, settings.with_home_assistant, settings.samples_per_template)
    test = trained.metrics["test"]["int8"]
    return _Trained(trained.model, f"held-out test: {test.summary()}; trained in {trained.seconds:.0f} s")


def _build(model_path: Path, target: str, out: Path, say) -> tuple[list[Path], str]:
    if target == HOST:
        from .emulator import build_emulator, prepare_package

        binary = build_emulator(prepare_package(model_path, progress=say), progress=say)
        dest = out / HOST / "squeezeedge-emulator"
        dest.parent.mkdir(exist_ok=True)
        shutil.copy2(binary, dest)
        return [dest], (f"run it: {dest} --stdio (a line in, a JSON answer out), or "
                        f"squeezeedge emulate --model {model_path}")
    if target.startswith(MICROPYTHON_PREFIX):
        from .micropython.natmod import build_native_module

        module = build_native_module(model_path, target.removeprefix(MICROPYTHON_PREFIX), out / target, progress=say)
        return [module.mpy, module.weights], (f"deploy it: squeezeedge flash --micropython --port PORT "
                                              f"{module.directory}")
    from .boards import build_board

    firmware = build_board(target, model_path, out / target, progress=say)
    return [firmware.elf, firmware.bin, firmware.hex], firmware.size.report()


def flash(result: MakeResult, target: str, port: str | None, progress=None) -> str:
    """Write what :func:`make` built to the board at ``port``; returns one line saying what was done."""
    say = progress or (lambda s: None)
    if target.startswith(MICROPYTHON_PREFIX):
        from .micropython.deploy import deploy

        if not port:
            raise PipelineError("--flash to a MicroPython board needs --port (its serial port, or socket://HOST:PORT)")
        return deploy(result.outputs[0].parent, port, progress=say).summary()
    if target == "stm32f405":
        from .flash import flash_stm32

        def stages(stage: str, percent: float | None = None) -> None:
            if percent is None:
                say(stage)

        image = flash_stm32(next(p for p in result.outputs if p.suffix == ".bin"), "uart", port, progress=stages)
        return f"flashed {image} over the STM32's UART bootloader"
    board = "" if target == HOST else f" --board {target}"
    raise PipelineError(f"{target} is not a board to flash: run it on this machine with "
                        f"squeezeedge emulate{board} --model {result.model}")
