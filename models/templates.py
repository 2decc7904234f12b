"""Home Assistant sentence templates and a random, span-tracking sampler for them.

hassil's own sampler enumerates the full product of every template, which explodes (one
HassTurnOn template alone has thousands of expansions) and throws away where each slot
value landed in the text. Here we walk a template's expression tree once per sample,
picking one branch at random at every choice point, and keep the text as a list of chunks
so that every ``{list}`` reference becomes an exact :class:`Span` after the whitespace is
normalised the way hassil normalises it.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Mapping

from hassil.expression import (
    Alternative,
    Expression,
    ListReference,
    Permutation,
    RuleReference,
    Sentence,
    Sequence,
    TextChunk,
)
from hassil.intents import (
    Intents,
    RangeSlotList,
    RangeType,
    SlotList,
    TextSlotList,
    WildcardSlotList,
)
from hassil.parse_expression import parse_sentence

from . import entities
from .examples import Example, Span

LANGUAGE = "en"

# Lists Home Assistant fills from the user's installation, or wildcards matching any text:
# we fill them from our own lists (see entities.py). "name" is resolved per domain.
OWN_LISTS = frozenset({
    "area", "floor", "name", "message", "search_query", "timer_name", "timer_command",
    "shopping_list_item", "todo_list_item", "zone",
})

# Slots whose value is free text from our lists (the span text is the value). A zone fills
# "state", which also holds HA's fixed states ("on", "locked"), so it is not listed.
FREE_TEXT_SLOTS = frozenset({
    "area", "floor", "name", "message", "search_query", "conversation_command", "item",
})

# Words that name a domain, for the fixed ``"slots": {"domain": ...}`` of a data block.
# Longer phrases come first so that "garage door" wins over "door".
DOMAIN_KEYWORDS: dict[str, tuple[str, ...]] = {
    "light": ("lights", "light", "lighting", "lamps", "lamp"),
    "fan": ("fans", "fan"),
    "switch": ("switches", "switch"),
    "cover": (
        "garage doors", "garage door", "awnings", "awning", "blinds", "blind", "curtains",
        "curtain", "shades", "shade", "shutters", "shutter", "gates", "gate", "doors",
        "door", "windows", "window", "covers", "cover",
    ),
    "lock": (
        "garage doors", "garage door", "locks", "lock", "doors", "door", "windows",
        "window", "gates", "gate", "shutters", "shutter", "deadbolt",
    ),
    "person": (
        "anyone", "anybody", "someone", "somebody", "everyone", "everybody", "people",
        "persons", "person", "who",
    ),
    "climate": ("thermostat", "heating", "heater", "air conditioner", "ac"),
    "media_player": ("tv", "television", "speakers", "speaker", "music"),
    "vacuum": ("vacuum", "robot vacuum", "roomba"),
    "valve": ("valves", "valve"),
}

_WORD = re.compile(r"[\w']+")


@dataclass(eq=False)
class Template:
    """One sentence template plus what its data block says about it."""

    id: str
    intent: str
    text: str
    sentence: Sentence
    fixed_domain: str | None
    """``slots.domain`` of the data block: a domain the sentence itself names."""
    name_domains: tuple[str, ...]
    """Domains whose entity names may fill ``{name}`` (from ``requires_context.domain``)."""
    rules: Mapping[str, Sentence] = field(repr=False)
    lists: Mapping[str, SlotList] = field(repr=False)


@dataclass
class SampleStats:
    """Counts of what the sampler had to leave out, for the dataset's stats table."""

    domain_span_omitted: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class _Chunk:
    text: str
    slot: str | None = None
    value: str | None = None


@cache
def ha_intents_dict(language: str = LANGUAGE) -> dict[str, Any]:
    """The raw intents file shipped by ``home_assistant_intents`` (cached, do not mutate)."""
    path = resources.files("home_assistant_intents") / "data" / f"{language}.json"
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def ha_intents(language: str = LANGUAGE) -> Intents:
    """Home Assistant's intents parsed by hassil: global lists and expansion rules."""
    return Intents.from_dict(ha_intents_dict(language))


def load_templates(language: str = LANGUAGE) -> list[Template]:
    """All Home Assistant templates, in file order, ids ``intent/block/sentence``."""
    return templates_from_dict(ha_intents_dict(language)["intents"], ha_intents(language))


def templates_from_dict(
    intents_dict: Mapping[str, Any], base: Intents, id_prefix: str = ""
) -> list[Template]:
    """Parse ``{intent: {"data": [block, ...]}}`` (hassil's YAML layout) into templates.

    Lists and expansion rules come from ``base`` plus each block's own; the same function
    loads Home Assistant's file and our project-written templates.
    """
    templates = []
    for intent, intent_dict in intents_dict.items():
        for block_index, block in enumerate(intent_dict["data"]):
            rules, lists = _block_rules_and_lists(block, base)
            fixed = block.get("slots", {}).get("domain")
            fixed = fixed if isinstance(fixed, str) else None
            for sentence_index, text in enumerate(block["sentences"]):
                templates.append(Template(
                    id=f"{id_prefix}{intent}/{block_index}/{sentence_index}",
                    intent=intent,
                    text=text,
                    sentence=parse_sentence(text, keep_text=True),
                    fixed_domain=fixed,
                    name_domains=_name_domains(block, fixed),
                    rules=rules,
                    lists=lists,
                ))
    return templates


def _block_rules_and_lists(block: Mapping[str, Any], base: Intents
                           ) -> tuple[dict[str, Sentence], dict[str, SlotList]]:
    """Global expansion rules and lists, overridden by the block's local ones."""
    rules = dict(base.expansion_rules)
    for rule_name, body in block.get("expansion_rules", {}).items():
        rules[rule_name] = parse_sentence(body, keep_text=True)
    lists = dict(base.slot_lists)
    if block.get("lists"):
        local = Intents.from_dict({"language": base.language, "intents": {},
                                   "lists": block["lists"]})
        lists.update(local.slot_lists)
    return rules, lists


def _name_domains(block: Mapping[str, Any], fixed_domain: str | None) -> tuple[str, ...]:
    """Domains to draw ``{name}`` from: the block's required context, else its fixed domain.

    ``requires_context`` is runtime context we otherwise ignore, but it tells us what kind
    of entity the name must be (a lock template needs "front door", not "desk lamp").
    """
    context = block.get("requires_context", {}).get("domain", [])
    context = [context] if isinstance(context, str) else list(context)
    known = entities.device_domains()
    domains = tuple(d for d in context if d in known)
    if not domains and fixed_domain in known:
        domains = (fixed_domain,)
    return domains


def format_number(number: float) -> str:
    """Digits as Home Assistant reports them: ``50``, ``-10``, ``21.5``."""
    number = round(number, 6)
    return str(int(number)) if float(number).is_integer() else str(number)


# Timer amounts people actually ask for, by unit (the range itself allows 1..100 of each).
_COMMON_TIMER_AMOUNTS = {
    "hours": (1, 2, 3, 4, 5, 6, 8, 12, 24),
    "minutes": (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40, 45, 60, 90),
    "seconds": (5, 10, 15, 20, 30, 40, 45, 60, 90),
}


def pick_number(range_list: RangeSlotList, slot: str, rng: random.Random) -> float:
    """A number from a hassil range, biased towards the numbers people actually say.

    Uniform choice would make "37 percent" as common as "50 percent", a 95 hour timer as
    common as a 5 minute one and 3 degrees as common as 21; most of the time we pick a
    round number, a common timer amount or a comfortable room temperature instead.
    """
    numbers = list(range_list.get_numbers())
    unit = next((u for u in _COMMON_TIMER_AMOUNTS if slot.endswith(u)), None)
    if rng.random() < 0.75:
        if unit is not None:
            preferred = [n for n in numbers if n in _COMMON_TIMER_AMOUNTS[unit]]
        elif range_list.type == RangeType.TEMPERATURE:
            preferred = [n for n in numbers if 16 <= n <= 28]
        else:
            round_step = 500 if range_list.stop > 1000 else 5
            preferred = [n for n in numbers if n % round_step == 0 or n <= 3]
        if preferred:
            numbers = preferred
    return rng.choice(numbers)


class Sampler:
    """Draws random :class:`Example` s from templates, filling names from one split.

    ``split`` is ``"train"`` or ``"heldout"`` (see :func:`entities.names`). ``own_lists``: the
    list names we fill from our own lists (default :data:`OWN_LISTS`: those Home Assistant fills
    from the user's home); any other wildcard list is filled with free text
    (:func:`entities.free_text`), as a maker's ``wildcard: true`` list is. Names and free text
    are those of ``language`` (:mod:`.languages`).
    """

    MAX_ATTEMPTS = 8

    def __init__(self, split: str, stats: SampleStats | None = None, own_lists: frozenset[str] = OWN_LISTS,
                 language: str = LANGUAGE):
        self.split = split
        self.language = language
        self.stats = stats if stats is not None else SampleStats()
        self.own_lists = own_lists

    def sample(self, template: Template, rng: random.Random, source: str = "template") -> Example:
        """One random sentence from ``template`` with exact spans.

        Samples with a word repeated back to back ("the the cabin", "first floor floor")
        come from our names colliding with the template's optional words; they are drawn
        again, up to a few times.
        """
        for _ in range(self.MAX_ATTEMPTS):
            chunks: list[_Chunk] = []
            self._walk(template.sentence.expression, template, rng, chunks, depth=0)
            text, spans = render(chunks)
            if not has_repeated_word(text):
                break
        spans = spans + self._domain_span(template, text, spans)
        example = Example(text, template.intent, tuple(sorted(spans, key=lambda s: s.start)),
                          template.id, source)
        example.check()
        return example

    def _domain_span(self, template: Template, text: str, spans: list[Span]) -> list[Span]:
        """A ``domain`` span on the first word naming the block's fixed domain, if any."""
        if template.fixed_domain is None:
            return []
        match = find_domain_keyword(text, template.fixed_domain, self.language)
        if match is None:
            self.stats.domain_span_omitted["no keyword"] += 1
            return []
        start, end = match
        if any(s.start < end and start < s.end for s in spans):
            self.stats.domain_span_omitted["inside another span"] += 1
            return []
        return [Span(start, end, "domain", template.fixed_domain)]

    def _walk(self, expr: Expression, template: Template, rng: random.Random,
              out: list[_Chunk], depth: int) -> None:
        if depth > 50:
            raise RecursionError(f"expansion rules nest too deeply in {template.id}")
        if isinstance(expr, TextChunk):
            out.append(_Chunk(expr.original_text))
        elif isinstance(expr, Alternative):
            if expr.items:
                self._walk(rng.choice(expr.items), template, rng, out, depth + 1)
        elif isinstance(expr, Permutation):
            for item in rng.sample(expr.items, len(expr.items)):
                self._walk(item, template, rng, out, depth + 1)
        elif isinstance(expr, Sequence):
            for item in expr.items:
                self._walk(item, template, rng, out, depth + 1)
        elif isinstance(expr, RuleReference):
            rule = template.rules[expr.rule_name]
            self._walk(rule.expression, template, rng, out, depth + 1)
        elif isinstance(expr, ListReference):
            out.append(self._fill(expr, template, rng, depth))
        else:
            raise TypeError(f"unexpected expression {expr!r} in {template.id}")

    def _fill(self, ref: ListReference, template: Template, rng: random.Random,
              depth: int) -> _Chunk:
        """Text and value for one ``{list}`` / ``{list:slot}`` reference."""
        slot = ref.slot_name
        if ref.list_name in self.own_lists:
            text = rng.choice(self._own_values(ref.list_name, template))
            return _Chunk(text, slot, text)
        if ref.is_inline_range:
            start, stop, step = ref.get_inline_range()
            number = format_number(rng.choice(range(start, stop + 1, step)))
            return _Chunk(number, slot, number)
        slot_list = template.lists[ref.list_name]
        if isinstance(slot_list, RangeSlotList):
            number = pick_number(slot_list, slot, rng)
            value = number * slot_list.multiplier if slot_list.multiplier else number
            return _Chunk(format_number(number), slot, format_number(value))
        if isinstance(slot_list, TextSlotList):
            choice = rng.choice(slot_list.values)
            inner: list[_Chunk] = []
            self._walk(choice.text_in, template, rng, inner, depth + 1)
            text = " ".join("".join(c.text for c in inner).split())
            return _Chunk(text, slot, _value_string(choice.value_out, text))
        if isinstance(slot_list, WildcardSlotList):
            text = rng.choice(entities.free_text(self.split, self.language))
            return _Chunk(text, slot, text)
        raise TypeError(f"unexpected slot list {slot_list!r}")

    def _own_values(self, list_name: str, template: Template) -> tuple[str, ...]:
        if list_name != "name":
            return entities.names(list_name, self.split, self.language)
        domains = template.name_domains or ("light", "switch", "fan", "media_player")
        return tuple(v for d in domains for v in entities.device_names(d, self.split, self.language))


def _value_string(value_out: Any, text: str) -> str:
    """A list value's ``out`` as a string: ``100`` not ``100.0``; the text if there is none."""
    if value_out is None:
        return text
    if isinstance(value_out, (int, float)) and not isinstance(value_out, bool):
        return format_number(value_out)
    return str(value_out)


def render(chunks: list[_Chunk]) -> tuple[str, list[Span]]:
    """Join chunks into hassil-normalised text (single spaces, stripped) with exact spans.

    Each raw character index is mapped to its index in the normalised text, so spans stay
    right however hassil's ``( |-)`` or optional words left the whitespace.
    """
    raw = "".join(c.text for c in chunks)
    out: list[str] = []
    index_map = []
    for char in raw:
        index_map.append(len(out))
        if char.isspace():
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(char)
    index_map.append(len(out))
    if out and out[-1] == " ":
        out.pop()
    text = "".join(out)

    spans = []
    position = 0
    for chunk in chunks:
        start, end = position, position + len(chunk.text)
        position = end
        if chunk.slot is None:
            continue
        span_start, span_end = min(index_map[start], len(text)), min(index_map[end], len(text))
        while span_start < span_end and text[span_start].isspace():
            span_start += 1
        while span_end > span_start and text[span_end - 1].isspace():
            span_end -= 1
        if span_start < span_end:
            spans.append(Span(span_start, span_end, chunk.slot, chunk.value))
    return text, spans


def has_repeated_word(text: str) -> bool:
    """True if some word is immediately repeated ("the the", "floor floor")."""
    words = _WORD.findall(text.lower())
    return any(a == b for a, b in zip(words, words[1:]))


@cache
def _domain_pattern(domain: str, language: str) -> re.Pattern | None:
    words = (DOMAIN_KEYWORDS if language == LANGUAGE else entities.domain_keywords(language)).get(domain, ())
    if not words:
        return None
    words = sorted(words, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b", re.IGNORECASE)


def find_domain_keyword(text: str, domain: str, language: str = LANGUAGE) -> tuple[int, int] | None:
    """(start, end) of the first word in ``text`` naming ``domain`` in ``language``, or None."""
    pattern = _domain_pattern(domain, language)
    match = pattern.search(text) if pattern else None
    return (match.start(), match.end()) if match else None
