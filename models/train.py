"""Training pipeline: data → vocabulary → float SqueezeBERT → int8 model file → metrics."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from . import intmath as im
from .architecture import SqueezeBert
from .config import PRESETS, ModelConfig
from .dataset import SAMPLES_PER_TEMPLATE
from .decode import Answer, decode_slots
from .engine import Encoder, ReferenceEngine, tokenizer_for
from .entities import home_names
from .evaluate import DATA_DIR, Metrics, evaluate_records, split_records
from .examples import Example
from .gazetteer import NAME, PLACEHOLDERS, Gazetteer, HomeNames, readable
from .labels import IGNORE, Batchable, LabelSpace, build_value_table, encode_examples, negated_labels
from .model_file import IntModel
from .quantize import quantize
from .tokenizer import WordPieceTokenizer, train_vocab


# A maker's spec makes a dataset several times smaller than Home Assistant's: more passes over it
# in less time than one model of Home Assistant's (washer example, measured 2026-12-06 with the
# ASCII-only vocabulary of then: test intent 83.8% → 87.1% from 12 to 30 epochs, 43 → 77 s).
SPEC_EPOCHS = 30


@dataclass
class TrainOptions:
    preset: str = "small"
    seed: int = 0  # the dataset's seed (recorded: eval rebuilds the same split from it)
    init_seed: int | None = None  # weights and batch order; None: ``seed``. Same data, another run.
    epochs: int | None = None  # None: the preset's
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.01
    samples_per_template: int = SAMPLES_PER_TEMPLATE
    calibration_size: int = 2000
    max_false_rejection: float = 0.02  # on dev, when choosing the out-of-scope threshold
    # Training sentences see the home's names as placeholders, except this share (a device
    # told no names, or a name missing from its lists) ...
    without_names: float = 0.25
    # ... and this share, whose entity names all become the generic [name] (unknown domains).
    generic_names: float = 0.1
    config: ModelConfig | None = None  # overrides the preset's shapes (tests use tiny ones)
    # Models this small train fastest on one thread; more threads spin against each other
    # (and against anything else on the machine: 50x slower measured on a busy 2-core box).
    threads: int = 1
    progress: bool = True
    info: dict = field(default_factory=dict)  # recorded in the model's info (e.g. the spec it came from)

    @property
    def training_seed(self) -> int:
        return self.seed if self.init_seed is None else self.init_seed


@dataclass
class TrainResult:
    model: IntModel
    float_model: SqueezeBert
    metrics: dict = field(default_factory=dict)  # split → engine → Metrics
    seconds: float = 0.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _batches(data: Batchable, batch_size: int, rng: np.random.Generator | None):
    order = rng.permutation(len(data.ids)) if rng is not None else np.arange(len(data.ids))
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        t = int(data.lengths[idx].max())
        yield (torch.from_numpy(data.ids[idx, :t]), torch.from_numpy(data.lengths[idx]),
               torch.from_numpy(data.intents[idx]), torch.from_numpy(data.tags[idx, :t]))


def train_float(cfg: ModelConfig, labels: LabelSpace, data: Batchable, opts: TrainOptions, epochs: int) -> SqueezeBert:
    model = SqueezeBert(cfg, len(labels.intents), labels.n_tags)
    optim = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    steps = epochs * math.ceil(len(data.ids) / opts.batch_size)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))))
    rng = np.random.default_rng(opts.training_seed)
    bar = tqdm(total=steps, desc="training", unit="step", disable=not opts.progress, leave=False)
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for ids, lengths, intents, tags in _batches(data, opts.batch_size, rng):
            intent_logits, slot_logits = model(ids, lengths)
            loss = F.cross_entropy(intent_logits, intents) + F.cross_entropy(
                slot_logits.reshape(-1, slot_logits.shape[-1]), tags.reshape(-1), ignore_index=IGNORE)
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            total += float(loss.detach())
            bar.update()
        bar.set_postfix(epoch=epoch + 1, loss=f"{total / math.ceil(len(data.ids) / opts.batch_size):.3f}")
    bar.close()
    model.eval()
    return model


class FloatEngine:
    """The float model behind the engine interface (for the float-vs-int8 comparison)."""

    def __init__(self, model: SqueezeBert, int_model: IntModel, names: HomeNames | None = None):
        self.model, self.int_model = model, int_model
        self.encoder = Encoder(int_model, names)

    @torch.no_grad()
    def classify(self, data: bytes) -> Answer:
        enc = self.encoder.encode(data)
        ids = torch.tensor([enc.ids])
        intent_logits, slot_logits = self.model(ids, torch.tensor([len(enc)]))
        probs = torch.softmax(intent_logits[0].double(), -1)
        top = int(torch.argmax(probs))
        conf = int(math.floor(float(probs[top]) * im.CONF_ONE + 0.5))
        if top == 0 or conf < self.int_model.threshold(self.encoder.names_told):
            return Answer(None, conf)
        intent = self.int_model.intents[top]
        slots = decode_slots(self.int_model, intent, data, enc.ids, enc.offsets, slot_logits[0].numpy())
        return Answer(intent, conf, slots)


def choose_threshold(classify: Callable[[bytes], Answer], examples: Sequence[Example], max_false_rejection: float) -> int:
    """Largest confidence threshold whose in-scope rejection on ``examples`` stays within bound."""
    answers = [classify(ex.text.encode()) for ex in examples]
    in_scope = [(a.intent is None, a.confidence_q) for ex, a in zip(examples, answers) if ex.intent is not None]
    if not in_scope:
        return 0
    budget = int(max_false_rejection * len(in_scope)) - sum(rejected for rejected, _ in in_scope)
    confs = sorted(c for rejected, c in in_scope if not rejected)
    if budget <= 0 or not confs:
        return 0
    # A threshold t rejects confidences below t: confs[budget] rejects at most `budget` more.
    return confs[budget] if budget < len(confs) else im.CONF_ONE


def intent_slots(examples: Sequence[Example]) -> dict[str, list[str]]:
    """Which slots each intent takes, as the training data shows them."""
    seen: dict[str, set[str]] = {}
    for ex in examples:
        if ex.intent is not None:
            seen.setdefault(ex.intent, set()).update(s.slot for s in ex.spans)
    return {intent: sorted(slots) for intent, slots in sorted(seen.items())}


def training_gazetteers(n: int, tokenizer: WordPieceTokenizer, opts: TrainOptions,
                        language: str) -> list[Gazetteer | None]:
    """For each of ``n`` training sentences: the training home's names (in ``language``), the
    same names all as generic [name]s, or none (shares set by ``opts``)."""
    home = readable(tokenizer, home_names("train", language))
    typed = Gazetteer(tokenizer, home)
    generic = Gazetteer(tokenizer, HomeNames(tuple((NAME if kind.startswith(NAME) else kind, text)
                                                   for kind, text in home.entries)))
    rng = random.Random(opts.training_seed)
    out: list[Gazetteer | None] = []
    for _ in range(n):
        r = rng.random()
        out.append(None if r < opts.without_names else generic if r < opts.without_names + opts.generic_names
                   else typed)
    return out


def train_spec(spec, opts: TrainOptions, with_home_assistant: bool = False,
               samples_per_template: int | None = None) -> TrainResult:
    """:func:`run_training` on a maker's spec (:mod:`.sentence_spec`): its dataset, its language,
    and what it was made from recorded in the model (``eval --sentences`` checks it)."""
    from dataclasses import replace

    from .spec_dataset import SPEC_SAMPLES_PER_TEMPLATE, build_spec_dataset

    samples = samples_per_template or SPEC_SAMPLES_PER_TEMPLATE
    dataset = build_spec_dataset(spec, seed=opts.seed, samples_per_template=samples,
                                 with_home_assistant=with_home_assistant)
    return run_training(dataset, replace(opts, samples_per_template=samples,
                                         epochs=opts.epochs or SPEC_EPOCHS, info=spec.model_info(with_home_assistant)))


def run_training(dataset, opts: TrainOptions) -> TrainResult:
    """Train, quantize, pick the out-of-scope threshold on dev, and measure on test."""
    started = time.monotonic()
    torch.set_num_threads(opts.threads)
    seed_everything(opts.training_seed)
    preset = PRESETS[opts.preset]
    cfg = opts.config or preset.config
    epochs = opts.epochs or preset.epochs
    # the network learns signed slots as their own labels; dev/test keep Home Assistant's values
    train, dev = [negated_labels(ex) for ex in dataset.train], dataset.dev

    # a model that is never told a home's names keeps no placeholders a device could fill
    vocab = train_vocab((ex.text for ex in train), cfg.vocab_size,
                        reserved=PLACEHOLDERS if dataset.home_names else ())
    if len(vocab) != cfg.vocab_size:  # a small corpus may yield fewer pieces than asked for
        cfg = ModelConfig.from_dict({**cfg.to_dict(), "vocab_size": len(vocab)})
    tokenizer = WordPieceTokenizer(vocab, cfg.max_len)
    labels = LabelSpace.from_examples(train)
    gazetteers = (training_gazetteers(len(train), tokenizer, opts, dataset.language) if dataset.home_names
                  else [None] * len(train))
    data = encode_examples(train, tokenizer, labels, gazetteers)
    model = train_float(cfg, labels, data, opts, epochs)

    rng = np.random.default_rng(opts.seed)
    calib_idx = rng.choice(len(train), size=min(opts.calibration_size, len(train)), replace=False)
    calib = encode_examples([train[i] for i in sorted(calib_idx)], tokenizer, labels,
                            [gazetteers[i] for i in sorted(calib_idx)])
    int_model = quantize(model, calib, labels, vocab, build_value_table(train),
                         info={"preset": opts.preset, "seed": opts.seed, "init_seed": opts.training_seed,
                               "epochs": epochs,
                               "samples_per_template": opts.samples_per_template, **opts.info})
    int_model.language = dataset.language
    int_model.intent_slots = intent_slots(train)
    # Measured as a device told its home's names (every one, held-out ones included), and as
    # one told none; each gets its own out-of-scope threshold, chosen on dev.
    nameless = ReferenceEngine(int_model)
    int_model.oos_threshold = int_model.oos_threshold_without_names = 0
    int_model.oos_threshold_without_names = choose_threshold(nameless.classify, dev, opts.max_false_rejection)
    if dataset.home_names:
        home = readable(tokenizer_for(int_model), home_names("all", dataset.language))
        reference = ReferenceEngine(int_model, home)
        int_model.oos_threshold = choose_threshold(reference.classify, dev, opts.max_false_rejection)
    else:
        home, reference = None, nameless
        int_model.oos_threshold = int_model.oos_threshold_without_names
    float_engine = FloatEngine(model, int_model, home)

    metrics: dict[str, dict[str, Metrics]] = {}
    splits = ("test", "novel", "dev") + (("paraphrase",) if dataset.hand_written_sets and
                                         (DATA_DIR / "paraphrase_dev.jsonl").exists() else ())
    for split in splits:
        records = split_records(split, dataset)
        metrics[split] = {"float": evaluate_records(float_engine.classify, records),
                          "int8": evaluate_records(reference.classify, records)}
        if dataset.home_names:
            metrics[split]["int8 no names"] = evaluate_records(nameless.classify, records)
    seconds = time.monotonic() - started
    int_model.info.update({
        "train_seconds": round(seconds, 1),
        "train_examples": len(train),
        "metrics": {s: {e: m.as_dict() for e, m in d.items()} for s, d in metrics.items()},
    })
    return TrainResult(int_model, model, metrics, seconds)
