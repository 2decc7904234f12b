"""From integer logits to the answer a device sends: intent, confidence, slots.

Integer-only, like the device: the C decoder follows these rules step for step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import intmath as im
from .labels import normalize_phrase, slot_key
from .model_file import IntModel
from .reference import Logits
from .tokenizer import CONTINUATION, word_continuation


@dataclass
class Answer:
    intent: str | None
    confidence_q: int  # 0..CONF_ONE
    slots: dict[str, str] = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        return self.confidence_q / im.CONF_ONE

    def to_json(self, text: str) -> dict:
        return {"text": text, "intent": self.intent, "confidence": self.confidence, "slots": self.slots}


def decode_intent(model: IntModel, intent_logits: np.ndarray, names_told: bool = False) -> tuple[str | None, int]:
    """Top intent and its confidence; None when the top class is "out of scope" or the
    confidence is below the model's threshold (``model.threshold(names_told)``)."""
    top = im.argmax(intent_logits)
    conf = im.confidence(intent_logits, top, int(model["head.conf.m"][0]), int(model["head.conf.n"][0]),
                         model["exp_table"])
    if top == 0 or conf < model.threshold(names_told):
        return None, conf
    return model.intents[top], conf


def decode_spans(tags: Sequence[int], continuation: Sequence[bool]) -> list[tuple[int, int, int]]:
    """Tags of tokens 1..n-1 → (first token, last token, slot index) spans over whole words.

    A word is a token plus the tokens that continue it (``continuation``: "##" pieces and the
    rest of a number, tokenizer.word_continuation) and takes the tag of its first token.
    B-x starts a span; I-x continues a span of x and otherwise starts one (a model may skip
    the B); O ends the current span.
    """
    spans: list[list[int]] = []
    current = None
    for pos in range(1, len(tags)):
        if continuation[pos]:
            if current is not None and current[1] == pos - 1:
                current[1] = pos  # the rest of a word inside a span
            continue
        tag = tags[pos]
        if tag == 0:
            current = None
            continue
        slot, inside = (tag - 1) // 2, (tag - 1) % 2 == 1
        if inside and current is not None and current[2] == slot:
            current[1] = pos
        else:
            current = [pos, pos, slot]
            spans.append(current)
    return [tuple(s) for s in spans]


def _starts_or_o(tag: int) -> bool:
    return tag == 0 or tag % 2 == 1


def may_follow(previous: int, tag: int) -> bool:
    """O may follow anything; I-x only B-x or I-x; B-x anything but B-x and I-x. No sentence
    of the data has two spans of one slot with no word between them, and the decoder would
    drop the second (first mention wins): "eggs and bread" stays one item however sure the
    model is that "bread" could start one."""
    if tag == 0:
        return True
    if tag % 2 == 1:
        return previous not in (tag, tag + 1)
    return previous in (tag - 1, tag)


def word_tags(model: IntModel, intent: str, slot_logits: np.ndarray, continuation: Sequence[bool]) -> list[int]:
    """The best BIO-consistent tag for each word (Viterbi; tokens that continue a word get 0).

    Among the tags ``intent`` allows, pick the sequence over the words (tokens 1.. that do
    not continue a word) that maximizes the sum of the words' slot logits, where the first word
    is O or B-x and each next tag may follow the one before (``may_follow``). Ties go to the
    lowest tag index: for each predecessor, and at the end.
    """
    allowed = model.allowed_tags(intent)
    words = [p for p in range(1, len(slot_logits)) if not continuation[p]]
    tags = [0] * len(slot_logits)
    if not words:
        return tags
    rows = np.asarray(slot_logits)  # int8 logits (exact Python ints) or float ones (FloatEngine)
    score = {t: rows[words[0]][t].item() for t in allowed if _starts_or_o(t)}
    back: list[dict[int, int]] = []
    for pos in words[1:]:
        new, pointers = {}, {}
        previous = sorted(score)
        for t in allowed:
            best_p = None
            for p in previous:
                if may_follow(p, t) and (best_p is None or score[p] > score[best_p]):
                    best_p = p
            if best_p is not None:
                new[t] = score[best_p] + rows[pos][t].item()
                pointers[t] = best_p
        score = new
        back.append(pointers)
    t = min(score, key=lambda k: (-score[k], k))
    for i in range(len(words) - 1, -1, -1):
        tags[words[i]] = t
        if i:
            t = back[i - 1][t]
    return tags


def decode_slots(model: IntModel, intent: str, data: bytes, ids: Sequence[int], offsets,
                 slot_logits: np.ndarray) -> dict[str, str]:
    continuation = word_continuation(data, ids, offsets, lambda i: model.vocab[i].startswith(CONTINUATION))
    tags = word_tags(model, intent, slot_logits, continuation)
    out: dict[str, str] = {}
    for first, last, slot_index in decode_spans(tags, continuation):
        slot = model.slots[slot_index]
        key, sign = slot_key(slot)
        if key in out:  # first mention wins
            continue
        phrase = normalize_phrase(data[offsets[first][0]:offsets[last][1]])
        out[key] = sign + model.value_table.get(slot, {}).get(phrase, phrase)
    return out


def decode(model: IntModel, data: bytes, ids: Sequence[int], offsets, logits: Logits,
           names_told: bool = False) -> Answer:
    """The answer; ``names_told``: the device holds home names (they pick the threshold)."""
    intent, conf = decode_intent(model, logits.intent, names_told)
    slots = decode_slots(model, intent, data, ids, offsets, logits.slots) if intent is not None else {}
    return Answer(intent, conf, slots)
