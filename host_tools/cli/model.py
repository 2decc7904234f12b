"""``squeezeedge train | eval | dataset``: the model's data, its training and its held-out metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..models.config import DEFAULT_PRESET, PRESETS
from ..models.engine import tokenizer_for
from ..models.gazetteer import readable, supports_names
from ..names import example_home
from .common import CliError, load_model, load_names, open_engine


def add_parser(sub) -> None:
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
    t.set_defaults(func=run_train)

    e = sub.add_parser("eval", help="measure a model on held-out data",
                       description="Intent accuracy, slot F1 and out-of-scope rejection on the held-out test and dev "
                                   "splits, on the test sentences worded as nothing in training (novel phrasing), and on the "
                                   "hand-written paraphrase and people sets.")
    e.add_argument("--model", metavar="PATH", help="int8 model file (default: the shipped model)")
    e.add_argument("--engine", default="reference", choices=("reference", "c"), help="inference engine (default: reference)")
    e.add_argument("--diagnose", action="store_true",
                   help="also print how much of the slot error is typing: F1 with area/floor/name as one type")
    e.add_argument("--names", metavar="FILE", help="the home's names (default: the example home of "
                                                  "`squeezeedge names example`, the home of the held-out sentences)")
    e.add_argument("--no-names", action="store_true", help="measure a device told no names")
    e.add_argument("--split", choices=("test", "novel", "dev", "paraphrase", "people", "all"), default="all",
                   help="test: held-out templates and out-of-scope sentences; novel: the test sentences worded as "
                        "nothing in training; dev; paraphrase: hand-written rewordings; people: commands and "
                        "non-commands written the way people talk (models/data/PEOPLE.md); all (default): each")
    e.add_argument("--seed", type=int, help="dataset seed (default: the one the model was trained with)")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.add_argument("--per-slot", action="store_true", help="also print slot F1 for each slot name")
    e.set_defaults(func=run_eval)

    d = sub.add_parser("dataset", help="print dataset statistics")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--samples-per-template", type=int, default=40)
    d.set_defaults(func=run_dataset)


def run_dataset(args) -> int:
    from ..models.dataset import build_dataset, format_stats

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


def run_train(args) -> int:
    from ..models.dataset import build_dataset, format_stats
    from ..models.train import TrainOptions, run_training

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


def run_eval(args) -> int:
    from ..models.dataset import build_dataset
    from ..models.evaluate import SPLITS, evaluate_records, people_set_present, split_records

    if args.split == "people" and not people_set_present():
        raise CliError("the people set (models/data/people_test.jsonl, people_oos_test.txt) is not there")
    if args.no_names:
        names = None
    elif args.names:
        names = load_names(args.names)
    else:  # the held-out sentences' home (as much of it as the model can hold), if it takes names
        model = load_model(args.model)
        names = readable(tokenizer_for(model), example_home()) if supports_names(model.vocab) else None
    engine = open_engine(args.engine, args.model, names=names)
    engine.name = f"{engine.name}, {f'{len(names)} home names' if names else 'no home names'}"
    seed = engine.model.info.get("seed", 0) if args.seed is None else args.seed
    dataset = build_dataset(seed=seed)
    splits = [s for s in SPLITS if args.split in (s, "all") and (s != "people" or people_set_present())]
    metrics = {split: {engine.name: evaluate_records(engine.classify, split_records(split, dataset))}
               for split in splits}
    if args.json:
        print(json.dumps({s: {e: m.as_dict() for e, m in d.items()} for s, d in metrics.items()}, indent=2))
        return 0
    print(_metrics_table(metrics))
    if args.diagnose and args.split in ("test", "novel", "dev", "all"):
        from ..models.evaluate import slot_diagnostics

        for split in ("test", "novel", "dev"):
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
