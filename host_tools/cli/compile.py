"""``squeezeedge compile``: int8 model file → C model package (model.c, model.h, model.json) plus the
firmware's model metadata (model_meta.c, model_meta.h): everything a firmware port builds with."""

from __future__ import annotations

import sys
from pathlib import Path

from ..compiler.targets import TARGETS
from .common import add_model_arguments


def add_parser(subparsers) -> None:
    c = subparsers.add_parser(
        "compile", help="compile an int8 model to a plain C model package",
        description="Compile an int8 model file with Apache TVM into dependency-free C: model.c (kernels, "
                    "const weights, entry function se_model_run), model.h (sizes, prototype) and model.json "
                    "(arena/stack/weight bytes, MACs, kernels, memory plan); plus model_meta.c/.h, the "
                    "vocabulary, labels and tables the firmware core needs. The outputs are bit-exact with "
                    "the integer reference interpreter. A firmware port builds with the directory as "
                    "MODEL_DIR.")
    add_model_arguments(c)
    c.add_argument("--target", default="host", choices=list(TARGETS),
                   help="target whose compiler flags go into model.json (default: host)")
    c.add_argument("--portable", action="store_true",
                   help="plain portable C kernels only (no target tensor intrinsic such as SMLAD on cortex-m4)")
    c.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the package")
    c.add_argument("--quiet", action="store_true", help="no progress lines")
    c.set_defaults(func=run)


def _err(msg: str) -> int:
    print(f"squeezeedge: error: {msg}", file=sys.stderr)
    return 2


def run(args) -> int:
    from ..models.engine import DEFAULT_MODEL
    from ..models.model_file import IntModel, ModelFileError
    from ..compiler.meta import write_meta
    from ..compiler.package import compile_model
    from ..compiler.relax_graph import CompileError

    path = Path(args.model) if args.model else DEFAULT_MODEL
    say = (lambda s: None) if args.quiet else (lambda s: print(f"[compile] {s} ...", file=sys.stderr, flush=True))
    try:
        say(f"loading {path}")
        model = IntModel.load(path)
        pkg = compile_model(model, args.target, progress=say, intrinsics=False if args.portable else None)
    except ModelFileError as e:
        return _err(str(e))
    except CompileError as e:
        return _err(f"{path}: cannot compile: {e}")
    except Exception as e:  # noqa: BLE001 - a TVM failure on a malformed model: still one line
        first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        return _err(f"{path}: cannot compile: {type(e).__name__}: {first}")
    try:
        out = pkg.write(args.output)
        write_meta(model, out)
    except OSError as e:
        return _err(f"cannot write {args.output}: {e}")
    i = pkg.info
    print(f"wrote {out}/model.c, model.h, model.json, model_meta.c, model_meta.h for {args.target} "
          f"in {i['compile_seconds']:.1f} s")
    print(f"  weights (flash)  {i['weight_bytes']:>8,} bytes")
    print(f"  arena (RAM)      {i['arena_bytes']:>8,} bytes")
    print(f"  stack (RAM)      {i['stack_bytes']:>8,} bytes ({i['stack_bytes_method']})")
    print(f"  MACs             {i['macs']:>8,} at {i['config']['max_len']} tokens, "
          f"{i['macs_per_length']['8']:,} at 8 (kernels loop over the real length only)")
    print(f"  kernels          {len(i['kernels']):>8} ({len(i['calls'])} calls)")
    if i.get("tensor_intrinsic"):
        print(f"  intrinsic        {i['tensor_intrinsic']} (SXTB16 + SMLAD)")
    return 0
