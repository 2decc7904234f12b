"""Build the train/dev/test sets for the home-command model.

Two things keep evaluation honest:

* templates are split per intent, so dev/test phrasings are ones the model never saw;
* entity names are split too (see :mod:`entities`), so dev/test mention only held-out names.

Any dev/test sentence whose normalised text (case, punctuation and whitespace ignored:
:func:`text_key`) also occurs in train is dropped. Train additionally gets our own templates,
augmentations and out-of-scope sentences; dev/test get the held-out out-of-scope files when
another engineer has written them.

Held-out templates can still share their phrasing with training ones ("turn on the {name}" in
two templates). :func:`novel_phrasing` keeps the test sentences whose slot-masked phrasing never
occurs in training: the split that says how the model does on wordings it has not seen.

Run ``python -m squeezeedge.models.dataset`` to print the stats table.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .augment import augment_examples, novel_name, project_template_examples
from .examples import Example
from .languages import ENGLISH, check_language, data_file
from .templates import FREE_TEXT_SLOTS, Sampler, SampleStats, Template, load_templates

SPLITS = ("train", "dev", "test")
DEV_FRACTION = TEST_FRACTION = 0.15
MIN_TEMPLATES_TO_SPLIT = 3
OOS_TRAIN_FILES = ("out_of_scope_train.txt", "out_of_scope_near_misses.txt")
OOS_HELD_OUT_FILES = {"dev": "out_of_scope_dev.txt", "test": "out_of_scope_test.txt"}
OOS_AUGMENTED_COPIES = 2
SAMPLES_PER_TEMPLATE = 40


@dataclass
class Dataset:
    """The three splits, plus what the sampler had to leave out (for the stats)."""

    train: list[Example]
    dev: list[Example]
    test: list[Example]
    domain_span_omitted: Counter = field(default_factory=Counter)
    home_names: bool = True
    """Home Assistant's names are in it: train with a home's names, measure with and without."""
    hand_written_sets: bool = True
    """The hand-written paraphrase and people sets (Home Assistant's intents) apply to it."""
    language: str = ENGLISH

    def split(self, name: str) -> list[Example]:
        return getattr(self, name)

    @property
    def novel(self) -> list[Example]:
        """The test split's in-scope sentences worded as nothing in training (:func:`novel_phrasing`)."""
        return novel_phrasing(self.test, self.train)


_APOSTROPHES = re.compile(r"['\u2019]")
_PUNCTUATION = re.compile(r"[^\w\s]")


def text_key(text: str) -> str:
    """Text with case, punctuation and spacing ignored: two sentences with one key are the same
    ("Who was the first person on the moon?" = "who was the first person on the moon";
    "what's" = "whats")."""
    return " ".join(_PUNCTUATION.sub(" ", _APOSTROPHES.sub("", text.lower())).split())


def phrasing_key(example: Example) -> str:
    """The sentence with each slot mention replaced by its slot's name, then :func:`text_key`:
    "turn on the kitchen light" and "turn on the porch light" (name spans) share one phrasing."""
    text, end = [], 0
    for span in sorted(example.spans, key=lambda s: s.start):
        text += [example.text[end:span.start], f" SLOT{span.slot.upper()} "]
        end = span.end
    return text_key("".join(text) + example.text[end:])


def novel_phrasing(held_out: list[Example], train: list[Example]) -> list[Example]:
    """The in-scope ``held_out`` examples whose :func:`phrasing_key` no training example has."""
    seen = {phrasing_key(e) for e in train}
    return [e for e in held_out if e.intent is not None and phrasing_key(e) not in seen]


def _data_path(name: str, language: str = ENGLISH):
    return data_file(language, name)


def load_lines(name: str, language: str = ENGLISH) -> list[str]:
    """Non-empty, non-comment lines of ``models/data/<name>`` (of ``language``: :func:`.languages.data_file`)."""
    text = _data_path(name, language).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def oos_examples(lines: list[str]) -> list[Example]:
    """Out-of-scope sentences: no intent, no spans."""
    return [Example(line, None, (), "", "oos") for line in lines]


def split_templates(templates: list[Template], rng: random.Random) -> dict[str, str]:
    """Template id → "train", "dev", "test", or "shared" (intents with < 3 templates).

    Shared templates feed all three splits; their dev/test sentences differ from train
    only by the held-out names.
    """
    by_intent: dict[str, list[str]] = defaultdict(list)
    for template in templates:
        by_intent[template.intent].append(template.id)
    assignment = {}
    for intent in sorted(by_intent):
        ids = by_intent[intent]
        if len(ids) < MIN_TEMPLATES_TO_SPLIT:
            assignment.update((i, "shared") for i in ids)
            continue
        ids = ids.copy()
        rng.shuffle(ids)
        n_test = max(1, round(len(ids) * TEST_FRACTION))
        n_dev = max(1, round(len(ids) * DEV_FRACTION))
        assignment.update((i, "test") for i in ids[:n_test])
        assignment.update((i, "dev") for i in ids[n_test:n_test + n_dev])
        assignment.update((i, "train") for i in ids[n_test + n_dev:])
    return assignment


def _distinct_samples(sampler: Sampler, template: Template, rng: random.Random,
                      count: int) -> list[Example]:
    """Up to ``count`` samples of a template, duplicates dropped (small templates repeat)."""
    seen, out = set(), []
    for _ in range(count):
        example = sampler.sample(template, rng)
        if text_key(example.text) not in seen:
            seen.add(text_key(example.text))
            out.append(example)
    return out


def sample_splits(templates: list[Template], assignment: dict[str, str], rng: random.Random,
                  samples_per_template: int, stats: SampleStats,
                  samplers: tuple[Sampler, Sampler] | None = None) -> dict[str, list[Example]]:
    """Template examples per split: train names for train, held-out names for dev/test.
    ``samplers``: (train, held-out) samplers other than Home Assistant's."""
    train_sampler, held_out_sampler = samplers or (Sampler("train", stats), Sampler("heldout", stats))
    shared_count = max(1, samples_per_template // 4)
    out: dict[str, list[Example]] = {split: [] for split in SPLITS}
    for template in templates:
        split = assignment[template.id]
        if split == "train":
            out["train"] += _distinct_samples(train_sampler, template, rng, samples_per_template)
        elif split in ("dev", "test"):
            out[split] += _distinct_samples(held_out_sampler, template, rng, samples_per_template)
        else:
            out["train"] += _distinct_samples(train_sampler, template, rng, samples_per_template)
            for held_out_split in ("dev", "test"):
                out[held_out_split] += _distinct_samples(held_out_sampler, template, rng,
                                                         shared_count)
    return out


def drop_seen(examples: list[Example], seen: set[str]) -> list[Example]:
    """Examples whose text is not in ``seen`` (keys from :func:`text_key`)."""
    return [e for e in examples if text_key(e.text) not in seen]


def rescue_missing_intents(train: list[Example], held_out: list[Example], intents: list[str],
                           rng: random.Random) -> tuple[list[Example], list[Example]]:
    """Give every intent at least one held-out sentence, moving it out of train if needed.

    An intent with fewer than three templates and no slots ("nevermind" / "never mind")
    has so few sentences that train sampling sees them all and every dev/test sentence is
    dropped as seen. We then move one of its template sentences without names (all copies
    of that text) from train to the held-out split, provided train keeps another one.
    """
    present = {e.intent for e in held_out}
    for intent in intents:
        if intent in present:
            continue
        keys = sorted({text_key(e.text) for e in train
                       if e.intent == intent and e.source == "template"
                       and not any(s.slot in FREE_TEXT_SLOTS for s in e.spans)})
        if len(keys) < 2:
            continue
        key = rng.choice(keys)
        moved = next(e for e in train if text_key(e.text) == key and e.source == "template")
        train = [e for e in train if text_key(e.text) != key]
        held_out = held_out + [moved]
    return train, held_out


def oos_train_examples(language: str = ENGLISH) -> list[Example]:
    """The hand-written out-of-scope training sentences of ``language``."""
    return oos_examples([line for name in OOS_TRAIN_FILES if _data_path(name, language).is_file()
                         for line in load_lines(name, language)])


def oos_held_out_examples(split: str, language: str = ENGLISH) -> list[Example]:
    """The hand-written out-of-scope ``split`` ("dev" or "test") sentences of ``language``."""
    name = OOS_HELD_OUT_FILES[split]
    return oos_examples(load_lines(name, language)) if _data_path(name, language).is_file() else []


def build_dataset(seed: int = 0, samples_per_template: int = SAMPLES_PER_TEMPLATE, augment: bool = True,
                  language: str = ENGLISH) -> Dataset:
    """Build train/dev/test of Home Assistant's intents in ``language`` deterministically for
    ``seed`` (see the module docstring). Training adds our own templates of that language
    (``extra_templates*.yaml`` where it has them); made-up names and the augmentations that edit
    English words (politeness, synonyms, fillers) are English; every language gets numbers
    spelled out in its words, typos, casing and punctuation (:data:`.augment.ANY_LANGUAGE`)."""
    check_language(language)
    english = language == ENGLISH
    rng = random.Random(seed)
    templates = load_templates(language)
    stats = SampleStats()
    assignment = split_templates(templates, rng)
    samplers = (Sampler("train", stats, language=language), Sampler("heldout", stats, language=language))
    splits = sample_splits(templates, assignment, rng, samples_per_template, stats, samplers)

    oos_train = oos_train_examples(language)
    train = splits["train"] + oos_train
    if augment:
        extra = project_template_examples(rng, max(1, samples_per_template // 2),
                                          Sampler("train", SampleStats(), language=language))
        train += extra + augment_examples(splits["train"] + extra, rng, language=language)
        if english:
            train += augment_examples(splits["train"] + extra, rng, probability=0.3, augmenter=novel_name)
        for _ in range(OOS_AUGMENTED_COPIES):
            train += augment_examples(oos_train, rng, probability=1.0, language=language)
    rng.shuffle(train)

    intents = sorted({t.intent for t in templates})
    held_out = {}
    for split in ("dev", "test"):
        examples = drop_seen(splits[split] + oos_held_out_examples(split, language), {text_key(e.text) for e in train})
        train, held_out[split] = rescue_missing_intents(train, examples, intents, rng)
    return Dataset(train, held_out["dev"], held_out["test"], stats.domain_span_omitted,
                   hand_written_sets=english, language=language)


def _table(header: list[str], rows: list[list]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w)
                       for i, (x, w) in enumerate(zip(row, widths)))
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_stats(dataset: Dataset) -> str:
    """A readable report: sizes per split, intent, source and kind of augmentation."""
    header = ["", *SPLITS]
    splits = {s: dataset.split(s) for s in SPLITS}

    def per_split(function) -> list:
        return [function(splits[s]) for s in SPLITS]

    def average(values: list[float]) -> str:
        return f"{sum(values) / len(values):.2f}" if values else "-"

    summary = [
        ["examples", *per_split(len)],
        ["out of scope", *per_split(lambda xs: sum(e.intent is None for e in xs))],
        ["HA templates", *per_split(lambda xs: len({e.template for e in xs
                                                     if e.source == "template"}))],
        ["project templates", *per_split(lambda xs: len({e.template for e in xs
                                                          if e.template.startswith("extra:")}))],
        ["distinct names/items", *per_split(lambda xs: len({s.value for e in xs for s in e.spans
                                                             if s.slot in FREE_TEXT_SLOTS}))],
        ["avg words", *per_split(lambda xs: average([len(e.text.split()) for e in xs]))],
        ["slots per command", *per_split(lambda xs: average([len(e.spans) for e in xs
                                                             if e.intent is not None]))],
        ["domain spans", *per_split(lambda xs: sum(s.slot == "domain"
                                                   for e in xs for s in e.spans))],
    ]
    intents = sorted({e.intent for xs in splits.values() for e in xs if e.intent is not None})
    intent_rows = [[intent, *per_split(lambda xs, i=intent: sum(e.intent == i for e in xs))]
                   for intent in intents]
    intent_rows.append(["(out of scope)", *per_split(lambda xs: sum(e.intent is None for e in xs))])
    sources = sorted({e.source.split("+")[0] if e.source.startswith("augment:") else e.source
                      for xs in splits.values() for e in xs})
    kinds = sorted({k for xs in splits.values() for e in xs if e.source.startswith("augment:")
                    for k in e.source[len("augment:"):].split("+")})
    source_rows = [[source, *per_split(lambda xs, s=source: sum(e.source == s for e in xs))]
                   for source in sources if not source.startswith("augment:")]
    source_rows += [[f"augment:{kind}", *per_split(
        lambda xs, k=kind: sum(k in e.source[len("augment:"):].split("+")
                               for e in xs if e.source.startswith("augment:")))]
        for kind in kinds]
    omitted = ", ".join(f"{reason}: {count}"
                        for reason, count in sorted(dataset.domain_span_omitted.items()))
    return "\n\n".join([
        _table(header, summary),
        _table(["intent", *SPLITS], intent_rows),
        _table(["source (augment kinds overlap)", *SPLITS], source_rows),
        f"domain spans omitted while sampling HA templates: {omitted or 'none'}",
    ])


if __name__ == "__main__":
    print(format_stats(build_dataset()))
