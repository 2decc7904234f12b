"""Metrics the project reports: intent accuracy, slot F1, out-of-scope rejection."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..resources import MODEL_DATA_DIR as DATA_DIR
from .decode import Answer
from .examples import Example
from .languages import PEOPLE_FILE, data_file


@dataclass
class Metrics:
    n_in_scope: int
    n_out_of_scope: int
    intent_accuracy: float  # in-scope sentences whose intent is exactly right (rejections count as wrong)
    slot_f1: float  # micro F1 over (slot, value) pairs of in-scope sentences
    oos_rejection: float  # out-of-scope sentences answered with no intent
    false_rejection: float  # in-scope sentences answered with no intent
    slot_f1_by_name: dict = field(default_factory=dict)  # slot name → F1
    n_gold_slots: int = -1  # slots the in-scope sentences name (0: a set of intents alone; -1: not counted)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (f"intent acc {100 * self.intent_accuracy:.2f}% (n={self.n_in_scope}), slot F1 "
                f"{100 * self.slot_f1:.2f}%, OOS rejected {100 * self.oos_rejection:.2f}% "
                f"(n={self.n_out_of_scope}), in-scope rejected {100 * self.false_rejection:.2f}%")


def score(golds: Sequence[tuple[str | None, dict]], answers: Sequence[Answer]) -> Metrics:
    n_in = n_oos = correct = rejected_in = rejected_oos = 0
    tp, fp, fn = Counter(), Counter(), Counter()
    for (intent, slots), ans in zip(golds, answers, strict=True):
        if intent is None:
            n_oos += 1
            rejected_oos += ans.intent is None
            continue
        n_in += 1
        correct += ans.intent == intent
        rejected_in += ans.intent is None
        gold, pred = set(slots.items()), set(ans.slots.items())
        tp.update(k for k, _ in gold & pred)
        fp.update(k for k, _ in pred - gold)
        fn.update(k for k, _ in gold - pred)
    by_name = {k: _f1(tp[k], fp[k], fn[k]) for k in sorted(set(tp) | set(fp) | set(fn))}
    f1 = _f1(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return Metrics(n_in, n_oos, correct / max(n_in, 1), f1, rejected_oos / max(n_oos, 1), rejected_in / max(n_in, 1),
                   by_name, sum(tp.values()) + sum(fn.values()))


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def evaluate(classify: Callable[[bytes], Answer], examples: Iterable[Example]) -> Metrics:
    examples = list(examples)
    answers = [classify(ex.text.encode("utf-8")) for ex in examples]
    return score([(ex.intent, ex.slots) for ex in examples], answers)


def load_paraphrases(path: Path | None = None) -> list[Example]:
    """The hand-written paraphrase set (never trained on). Slots carry no spans, so they are
    kept as one span-less record each and scored by (slot, value) pairs via ``gold_pairs``."""
    path = path or DATA_DIR / "paraphrase_dev.jsonl"
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            out.append((rec["text"], rec.get("intent"), {k: str(v) for k, v in (rec.get("slots") or {}).items()}))
    return out


PEOPLE_FILES = ("people_test.jsonl", "people_oos_test.txt")

# What `squeezeedge eval` measures, in the order it prints them:
# test: held-out templates (and held-out out-of-scope sentences); novel: those test sentences
# whose slot-masked wording no training sentence has; dev: the split choices are made on;
# paraphrase: hand-written rewordings; people: commands and non-commands written the way people
# talk, by a writer who never saw the templates (models/data/PEOPLE.md).
SPLITS = ("test", "novel", "dev", "paraphrase", "people")

Record = tuple  # (text, intent or None, {slot: value})


def load_people(data_dir: Path | None = None, language: str = "en") -> list[Record]:
    """The people set: its in-scope commands, then its out-of-scope lines (intent None). English
    has its own files; another language one ``people.tsv`` (:func:`load_tsv`)."""
    if language != "en":
        return load_tsv(data_file(language, PEOPLE_FILE))
    data_dir = data_dir or DATA_DIR
    commands, others = (data_dir / name for name in PEOPLE_FILES)
    lines = [line.strip() for line in others.read_text(encoding="utf-8").splitlines() if line.strip()]
    return load_paraphrases(commands) + [(line, None, {}) for line in lines]


class TsvError(ValueError):
    """A line of a test-sentence file that cannot be read, as ``file:line: what is wrong``."""


OUT_OF_SCOPE_NAMES = ("null", "none", "")


def load_tsv(path: Path) -> list[Record]:
    """Test sentences anyone can write: ``text<TAB>intent[<TAB>slots as a JSON object]`` per line.

    ``null`` (or an empty intent) marks a sentence that must be rejected; blank lines and lines
    starting with ``#`` are skipped. Slot values are compared as strings.
    """
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        where = f"{path}:{number}"
        if len(fields) not in (2, 3) or not fields[0].strip():
            raise TsvError(f"{where}: expected text<TAB>intent[<TAB>slots JSON], got {len(fields)} field(s)")
        text, intent = fields[0].strip(), fields[1].strip()
        slots = {}
        if len(fields) == 3 and fields[2].strip():
            try:
                slots = json.loads(fields[2])
            except json.JSONDecodeError as error:
                raise TsvError(f"{where}: the slots are not JSON ({error.msg})") from None
            if not isinstance(slots, dict):
                raise TsvError(f"{where}: the slots must be a JSON object like {{\"program\": \"wool\"}}")
        if intent.lower() in OUT_OF_SCOPE_NAMES:
            if slots:
                raise TsvError(f"{where}: an out-of-scope sentence has no slots")
            records.append((text, None, {}))
        else:
            records.append((text, intent, {k: str(v) for k, v in slots.items()}))
    if not records:
        raise TsvError(f"{path}: no sentences (text<TAB>intent per line)")
    return records


def people_set_present(data_dir: Path | None = None, language: str = "en") -> bool:
    if language != "en":
        return data_file(language, PEOPLE_FILE).is_file()
    return all(((data_dir or DATA_DIR) / name).is_file() for name in PEOPLE_FILES)


def split_records(split: str, dataset) -> list[Record]:
    """The records of ``split`` (one of SPLITS) for ``dataset`` (models.dataset.Dataset). The
    hand-written sets lose any sentence that equals a training sentence, as dev and test do."""
    from .dataset import text_key

    if split in ("test", "dev", "novel"):
        return [(e.text, e.intent, e.slots) for e in getattr(dataset, split)]
    records = load_paraphrases() if split == "paraphrase" else load_people(language=dataset.language)
    seen = {text_key(e.text) for e in dataset.train}
    return [r for r in records if text_key(r[0]) not in seen]


def evaluate_records(classify: Callable[[bytes], Answer], records: Sequence[tuple[str, str | None, dict]]) -> Metrics:
    answers = [classify(text.encode("utf-8")) for text, _, _ in records]
    return score([(intent, slots) for _, intent, slots in records], answers)


# ---- diagnostics: where the slot errors come from ----

ENTITY_SLOTS = ("area", "floor", "name")  # Home Assistant fills these from the home's own lists


def merge_entity_types(slots: dict) -> dict:
    """area, floor and name as one slot type ("entity"): scores spans regardless of their type."""
    return {("entity" if k in ENTITY_SLOTS else k, v) for k, v in slots.items()}


def slot_diagnostics(classify: Callable[[bytes], Answer], examples: Iterable[Example]) -> dict[str, float]:
    """Slot F1 of in-scope examples as scored and with area/floor/name merged into one type
    (how much of the error is typing)."""
    pairs = [(ex.slots, classify(ex.text.encode("utf-8")).slots) for ex in examples if ex.intent is not None]

    def f1(view) -> float:
        tp = fp = fn = 0
        for gold, pred in pairs:
            g, p = view(gold, True), view(pred, False)
            tp, fp, fn = tp + len(g & p), fp + len(p - g), fn + len(g - p)
        return _f1(tp, fp, fn)

    return {"slot_f1": f1(lambda s, gold: set(s.items())),
            "slot_f1_entity_types_merged": f1(lambda s, gold: merge_entity_types(s))}
