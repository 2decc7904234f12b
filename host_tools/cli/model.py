"""``squeezeedge train | eval | dataset``: the model's data, its training and its held-out metrics."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from ..models.config import DEFAULT_PRESET, PRESETS
from ..models.engine import tokenizer_for
from ..models.gazetteer import readable, supports_names
from ..names import example_home
from .common import CliError, add_model_arguments, load_model, load_names, open_engine


def add_parser(sub) -> None:
    presets = "; ".join(f"{n}: H{pr.config.hidden} L{pr.config.layers} V{pr.config.vocab_size} ({pr.description})"
                        for n, pr in PRESETS.items())
    t = sub.add_parser("train", help="train a model and write the int8 model file",
                       description="Build the dataset from Home Assistant's intents in English or --language XX "
                                   "(or from your own commands: --sentences), train a float SqueezeBERT on the CPU, quantize it to int8 and "
                                   "report held-out metrics.",
                       epilog=f"your own commands — write them as Home Assistant custom sentences "
                              f"(examples/appliances/*.yaml) and run `squeezeedge train --sentences washer.yaml "
                              f"-o washer.semodel`: the model knows exactly those intents, everything else is out of "
                              f"scope; --with-home-assistant adds Home Assistant's own intents. Presets — {presets}")
    t.add_argument("--sentences", nargs="+", metavar="PATH",
                   help="your commands: Home Assistant custom-sentence YAML files or folders of them")
    t.add_argument("--language", metavar="XX", help="without --sentences: Home Assistant's intents in this language "
                                                    "(default: en); with them: their language (default: the files' "
                                                    "'language:')")
    t.add_argument("--with-home-assistant", action="store_true",
                   help="with --sentences: also know Home Assistant's intents in their language")
    t.add_argument("--preset", default=DEFAULT_PRESET, help=f"size preset (default: {DEFAULT_PRESET})")
    t.add_argument("-o", "--output", required=True, metavar="PATH", help="where to write the .semodel file")
    t.add_argument("--seed", type=int, default=0, help="seed for data split, sampling and training (default: 0)")
    t.add_argument("--init-seed", type=int, help="another training run on the same data: seed for the weights and "
                                                 "batch order only (default: --seed)")
    t.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    t.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: 3e-3)")
    t.add_argument("--samples-per-template", type=int, metavar="N",
                   help="sentences sampled per template (default: 40 for Home Assistant's intents, "
                        "150 for --sentences, whose specs are small)")
    t.add_argument("--stats", action="store_true", help="print dataset statistics first (Home Assistant's intents)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=run_train)

    e = sub.add_parser("eval", help="measure a model on held-out data",
                       description="Intent accuracy, slot F1 and out-of-scope rejection on the held-out test and dev "
                                   "splits, on the test sentences worded as nothing in training (novel phrasing), and on the "
                                   "hand-written paraphrase and people sets.")
    add_model_arguments(e)
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
    e.add_argument("--sentences", nargs="+", metavar="PATH",
                   help="the custom-sentence YAML a model was trained on: measure its held-out sentences")
    e.add_argument("--tsv", metavar="FILE", help="your own test sentences, one per line: "
                                                "text<TAB>intent[<TAB>slots as JSON]; intent 'null' = out of scope")
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
            slot_f1 = "- (no slots given)" if m.get("n_gold_slots") == 0 else f"{100 * m['slot_f1']:.2f}%"
            rows.append(f"| {split} | {engine} | {100 * m['intent_accuracy']:.2f}% (n={m['n_in_scope']}) | "
                        f"{slot_f1} | {oos} | {100 * m['false_rejection']:.2f}% |")
    return "\n".join(rows)


def load_spec(paths: list[str], language: str | None, with_home_assistant: bool):
    """The checked spec, or the first problem in it as one line naming file and line."""
    from ..models.sentence_spec import SpecError, load_spec as load

    try:
        return load(paths, language, with_home_assistant)
    except SpecError as e:
        raise CliError(str(e)) from None


def run_train(args) -> int:
    from ..models.dataset import build_dataset, format_stats
    from ..models.train import TrainOptions, run_training, train_spec

    if args.preset not in PRESETS:
        raise CliError(f"unknown preset {args.preset!r}; choose from {', '.join(PRESETS)}")
    opts = TrainOptions(preset=args.preset, seed=args.seed, init_seed=args.init_seed, epochs=args.epochs, lr=args.lr,
                        progress=not args.quiet)
    if args.sentences:
        spec = load_spec(args.sentences, args.language, args.with_home_assistant)
        print(f"{len(spec.templates)} sentence templates, {len(spec.intents)} intents, language {spec.language}; "
              f"building the dataset (seed {args.seed}) ...", file=sys.stderr)
        result = train_spec(spec, opts, args.with_home_assistant, args.samples_per_template)
    elif args.with_home_assistant:
        raise CliError("--with-home-assistant needs --sentences PATH (without --sentences the model is Home "
                       "Assistant's intents alone)")
    else:
        from ..models.languages import LanguageError, check_language

        language = args.language or "en"
        try:
            check_language(language)
        except LanguageError as e:
            raise CliError(str(e)) from None
        print(f"building the dataset of Home Assistant's intents in {language!r} (seed {args.seed}) ...",
              file=sys.stderr)
        samples = args.samples_per_template or opts.samples_per_template
        dataset = build_dataset(seed=args.seed, samples_per_template=samples, language=language)
        if args.stats:
            print(format_stats(dataset), file=sys.stderr)
        result = run_training(dataset, replace(opts, samples_per_template=samples))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.model.save(out)
    m = result.model
    print(f"saved {out}: preset {args.preset}, {m.parameter_count():,} parameters, {m.weight_bytes():,} bytes of "
          f"integers + {m.vocab_bytes():,} bytes of vocabulary, trained in {result.seconds:.0f} s")
    print(_metrics_table(result.metrics))
    return 0


def _tsv_records(path: str, model) -> list:
    from ..models.evaluate import TsvError, load_tsv

    try:
        records = load_tsv(Path(path))
    except (TsvError, OSError) as e:
        raise CliError(str(e)) from None
    known = set(model.intents)
    for number, (_, intent, _) in enumerate(records, 1):
        if intent not in known:
            raise CliError(f"{path}: sentence {number} expects intent {intent!r}, which the model does not know; "
                           f"it knows {', '.join(i for i in model.intents if i)} (and null: out of scope)")
    return records


def run_eval(args) -> int:
    from ..models.dataset import build_dataset
    from ..models.evaluate import SPLITS, evaluate_records, people_set_present, split_records

    model = load_model(args.model)
    if args.split == "people" and not people_set_present(language=model.language):
        raise CliError(f"there is no people set of language {model.language!r} (models/data/PEOPLE.md)")
    spec_info = model.info.get("spec")
    if args.sentences or args.tsv or spec_info:
        return run_eval_spec(args, model, spec_info)
    if args.no_names:
        names = None
    elif args.names:
        names = load_names(args.names)
    else:  # the held-out sentences' home (as much of it as the model can hold), if it takes names
        names = readable(tokenizer_for(model), example_home(model.language)) if supports_names(model.vocab) else None
    engine = open_engine(args.engine, args.model, names=names)
    engine.name = f"{engine.name}, {f'{len(names)} home names' if names else 'no home names'}"
    seed = engine.model.info.get("seed", 0) if args.seed is None else args.seed
    dataset = build_dataset(seed=seed, language=model.language)
    splits = [s for s in SPLITS if args.split in (s, "all") and (s != "paraphrase" or dataset.hand_written_sets)
              and (s != "people" or people_set_present(language=model.language))]
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
        _print_per_slot(metrics)
    return 0


def _print_per_slot(metrics: dict) -> None:
    for split, engines in metrics.items():
        for name, m in engines.items():
            print(f"\nslot F1 by slot, {split} ({name}): " + ", ".join(
                f"{slot} {100 * f1:.0f}%" for slot, f1 in sorted(m.slot_f1_by_name.items(), key=lambda kv: kv[1])))


def run_eval_spec(args, model, spec_info: dict | None) -> int:
    """eval of a model trained on --sentences (its spec's held-out sentences), or on a --tsv file."""
    from ..models.evaluate import evaluate_records
    from ..models.spec_dataset import build_spec_dataset

    engine = open_engine(args.engine, args.model)
    metrics = {}
    if args.sentences:
        with_ha = bool((spec_info or {}).get("with_home_assistant"))
        spec = load_spec(args.sentences, model.language, with_ha)
        trained = set((spec_info or {}).get("intents", ()))
        if spec_info and trained != set(spec.intents):
            raise CliError(f"the model was trained on intents {', '.join(sorted(trained))}, these files have "
                           f"{', '.join(spec.intents)}: pass the files it was trained on")
        seed = model.info.get("seed", 0) if args.seed is None else args.seed
        dataset = build_spec_dataset(spec, seed=seed, samples_per_template=model.info["samples_per_template"],
                                     with_home_assistant=with_ha)
        for split in ("test", "novel", "dev"):
            if args.split in (split, "all"):
                examples = getattr(dataset, split)
                metrics[split] = {engine.name: evaluate_records(engine.classify,
                                                                [(e.text, e.intent, e.slots) for e in examples])}
    elif not args.tsv:
        files = " ".join((spec_info or {}).get("files", ["YOUR.yaml"]))
        raise CliError(f"this model was trained on your own sentences: measure it with --sentences {files} "
                       f"(their held-out part) and/or --tsv FILE (your own test sentences)")
    if args.tsv:
        metrics[Path(args.tsv).name] = {engine.name: evaluate_records(engine.classify, _tsv_records(args.tsv, model))}
    if args.json:
        print(json.dumps({s: {e: m.as_dict() for e, m in d.items()} for s, d in metrics.items()}, indent=2))
    else:
        print(_metrics_table(metrics))
    if args.per_slot:
        _print_per_slot(metrics)
    return 0
