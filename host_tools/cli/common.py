"""What several commands share: the model and names they load, the engine they open, and the
error a user can fix (one line, exit status 2)."""

from __future__ import annotations

import sys
from pathlib import Path


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def load_model(path: str | None):
    from ..models.engine import DEFAULT_MODEL
    from ..models.model_file import IntModel, ModelFileError

    path = Path(path) if path else DEFAULT_MODEL
    try:
        return IntModel.load(path)
    except ModelFileError as e:
        hint = " (train one with `squeezeedge train -o PATH`)" if not path.exists() else ""
        raise CliError(f"{e}{hint}") from None


def add_model_arguments(parser, what: str = "int8 model file") -> None:
    """--model PATH or --language XX (the shipped model of that language): the model a command runs."""
    from ..models.languages import shipped_languages

    parser.add_argument("--model", metavar="PATH", help=f"{what} (default: the shipped model of --language)")
    parser.add_argument("--language", dest="model_language", metavar="XX",
                        help=f"the shipped model of this language: {', '.join(shipped_languages())} (default: en)")


def resolve_model(args) -> None:
    """Turn --language into --model: the shipped model of that language (main does this for every
    command that takes both)."""
    language = getattr(args, "model_language", None)
    if not language:
        return
    if args.model:
        raise CliError("--model and --language both choose the model: pass one of them")
    from ..models.languages import LanguageError, shipped_model

    try:
        args.model = str(shipped_model(language))
    except LanguageError as e:
        raise CliError(str(e)) from None


def load_names(path: str | None):
    from ..models.gazetteer import NamesError
    from ..names import load_names as load

    try:
        return load(path)
    except NamesError as e:
        raise CliError(str(e)) from None


def broker_settings(args):
    """--broker and its TLS/credential options as one settings object (None: no --broker)."""
    if not args.broker:
        return None
    from ..broker import MqttError, settings_from_args

    try:
        return settings_from_args(args)
    except MqttError as e:
        raise CliError(str(e)) from None


def open_engine(name: str, model_path: str | None, *, port: str | None = None, broker=None,
                device: str | None = None, names=None, arch: str | None = None):
    """engines.open_engine with the model loaded here (a missing or broken file is one line) and
    every failure to start or reach the engine as a CliError."""
    from ..compiler.host_engine import CEngineError
    from ..engines import open_engine as open_any
    from ..micropython.source import MicroPythonError
    from ..models.gazetteer import NamesError
    from ..transport import TransportError

    model = load_model(model_path) if name in ("reference", "c", "micropython") else model_path
    say = lambda s: print(f"classify: {s} ...", file=sys.stderr, flush=True)  # noqa: E731
    try:
        return open_any(name, model, port=port, broker=broker, device=device, names=names, arch=arch, progress=say)
    except (NamesError, CEngineError, MicroPythonError, TransportError, OSError, RuntimeError) as e:
        raise CliError(str(e)) from None
