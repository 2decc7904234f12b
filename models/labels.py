"""From examples to training targets: intent indices and BIO tags aligned to WordPiece tokens."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import numpy as np

from .examples import Example
from .gazetteer import Gazetteer
from .case_fold import fold_case
from .tokenizer import WordPieceTokenizer, pre_tokenize, word_continuation

IGNORE = -100  # torch's CrossEntropyLoss ignore_index: [CLS] and padding carry no slot tag
NEGATED = "-"  # label slot "-volume_step": Home Assistant's volume_step, value negated
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True)
class LabelSpace:
    intents: tuple[str | None, ...]  # index 0 is None (out of scope)
    slots: tuple[str, ...]

    @classmethod
    def from_examples(cls, examples: Iterable[Example]) -> "LabelSpace":
        intents, slots = set(), set()
        for ex in examples:
            if ex.intent is not None:
                intents.add(ex.intent)
            slots.update(s.slot for s in ex.spans)
        return cls((None, *sorted(intents)), tuple(sorted(slots)))

    @property
    def n_tags(self) -> int:
        return 1 + 2 * len(self.slots)

    def intent_index(self, intent: str | None) -> int:
        return self.intents.index(intent)


@dataclass
class Batchable:
    """Examples encoded to padded integer arrays."""

    ids: np.ndarray  # [N, T] int64, 0-padded
    lengths: np.ndarray  # [N]
    intents: np.ndarray  # [N]
    tags: np.ndarray  # [N, T], IGNORE outside real non-[CLS] tokens


def negated_labels(example: Example) -> Example:
    """``example`` with each span whose value is minus the number it says ("turn the volume down
    by 3" → volume_step -3) relabelled as slot ``-volume_step`` with value 3. The sign lives in
    the words around the span, which the slot head sees, not in the span's own text, which is all
    the value table looks at: so the model tags direction and the decoder restores the sign."""
    spans = tuple(replace(s, slot=NEGATED + s.slot, value=s.value[1:])
                  if s.value.startswith("-") and _NUMBER.fullmatch(s.value[1:]) and
                  not example.text[s.start:s.end].lstrip().startswith("-") else s
                  for s in example.spans)
    return example if spans == example.spans else replace(example, spans=spans)


def slot_key(label_slot: str) -> tuple[str, str]:
    """(Home Assistant slot name, sign prefix of its value) of a label slot."""
    return (label_slot[1:], "-") if label_slot.startswith(NEGATED) else (label_slot, "")


def char_to_byte_offsets(text: str) -> list[int]:
    """offsets[i] = byte offset of character i (and offsets[len(text)] = total bytes)."""
    out, pos = [], 0
    for ch in text:
        out.append(pos)
        pos += len(ch.encode("utf-8"))
    out.append(pos)
    return out


def token_tags(example: Example, offsets: Sequence[tuple[int, int]], continuation: Sequence[bool],
               labels: LabelSpace) -> list[int]:
    """BIO tag of each word's first token (B on the span's first word, I on the next ones);
    [CLS] and the tokens that continue a word ("##" pieces, the rest of a number:
    tokenizer.word_continuation) get IGNORE: a word is tagged as a whole."""
    byte_at = char_to_byte_offsets(example.text)
    spans = [(byte_at[s.start], byte_at[s.end], labels.slots.index(s.slot)) for s in example.spans]
    tags = [IGNORE]  # [CLS]
    started: set[int] = set()
    for (start, _end), cont in zip(offsets[1:], continuation[1:]):
        if cont:
            tags.append(IGNORE)
            continue
        tag = 0
        for n, (s_start, s_end, slot) in enumerate(spans):
            if s_start <= start < s_end:
                tag = 1 + 2 * slot + (n in started)
                started.add(n)
                break
        tags.append(tag)
    return tags


def encode_examples(examples: Sequence[Example], tokenizer: WordPieceTokenizer, labels: LabelSpace,
                    gazetteers: Sequence[Gazetteer | None] | None = None) -> Batchable:
    """Pad and tag ``examples``; ``gazetteers[i]`` (if given) replaces the names it knows in
    example i by placeholders, as a device told the home's names does."""
    n, t = len(examples), tokenizer.max_len
    ids = np.zeros((n, t), dtype=np.int64)
    tags = np.full((n, t), IGNORE, dtype=np.int64)
    lengths = np.zeros(n, dtype=np.int64)
    intents = np.zeros(n, dtype=np.int64)
    for row, ex in enumerate(examples):
        enc = tokenizer.encode(ex.text)
        if gazetteers is not None and gazetteers[row] is not None:
            enc = gazetteers[row].apply(enc)
        ids[row, : len(enc)] = enc.ids
        continuation = word_continuation(ex.text.encode("utf-8"), enc.ids, enc.offsets, tokenizer.is_continuation)
        tags[row, : len(enc)] = token_tags(ex, enc.offsets, continuation, labels)
        lengths[row] = len(enc)
        intents[row] = labels.intent_index(ex.intent)
    return Batchable(ids, lengths, intents, tags)


def normalize_phrase(data: bytes) -> str:
    """How a slot's text is compared with the value table: lowercased as the tokenizer does, each run of
    whitespace/control bytes one space, none at the ends (the C decoder does the same)."""
    words = pre_tokenize(data)
    out = bytearray()
    prev_end = None
    for start, end in words:
        if prev_end is not None and start > prev_end:
            out += b" "
        out += data[start:end]
        prev_end = end
    return fold_case(bytes(out)).decode("utf-8", errors="replace")


def build_value_table(examples: Iterable[Example]) -> dict[str, dict[str, str]]:
    """slot → {normalized phrase: Home Assistant value}, for phrases whose value differs from
    their own text ("garage doors" → "garage", "twenty one" → "21"); the most frequent wins."""
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for ex in examples:
        if "typo" in ex.source:  # "kicthen" → "kitchen" is noise, not vocabulary
            continue
        for s in ex.spans:
            phrase = normalize_phrase(ex.text[s.start:s.end].encode("utf-8"))
            counts[(s.slot, phrase)][s.value] += 1
    table: dict[str, dict[str, str]] = {}
    for (slot, phrase), values in sorted(counts.items()):
        value, _ = max(values.items(), key=lambda kv: (kv[1], kv[0]))
        if value != phrase:
            table.setdefault(slot, {})[phrase] = value
    return table
