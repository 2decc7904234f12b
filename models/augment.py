"""Training-only augmentations that keep every span exact.

The model is judged on sentences other people write, not on Home Assistant's templates, so
training text must look like real speech-to-text and typing: polite and chatty wrappers,
hesitations, typos, spelled-out numbers, odd casing, synonyms, and whole phrasings the
templates lack (``data/extra_templates.yaml``). Every edit goes through
:func:`replace_range`, which moves the spans with the text, so slot labels never drift.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import re
from functools import cache
from typing import Callable

import yaml

from .entities import is_held_out
from .examples import Example
from .languages import ENGLISH, data_file
from .templates import Sampler, Template, ha_intents, templates_from_dict

QUESTION_WORDS = frozenset({
    "is", "are", "what", "what's", "whats", "how", "how's", "hows", "where", "where's",
    "wheres", "which", "who", "when", "does", "do", "did", "has", "have", "can", "tell",
})

COMMAND_PREFIXES = (
    "please", "hey", "hey,", "ok", "okay", "um", "uh", "alright", "yo", "ok please",
    "hey assistant", "hey there,", "so", "right,", "now", "quick one,",
)
# Prefixes that need a verb after them ("i'd like to" + "turn on ..."), not "timer for 5 minutes".
VERB_PREFIXES = (
    "could you", "can you", "would you", "could you please", "can you please",
    "would you please", "i'd like you to", "i need you to", "hey can you", "go ahead and",
    "just", "i'd like to", "i want to", "will you", "i wanna",
)
COMMAND_VERBS = frozenset("""
    turn switch set start open close play pause stop lock unlock cancel add put make change
    activate deactivate dim brighten resume continue skip mute unmute increase decrease raise
    lower run create remove clean vacuum return mow broadcast announce shut kill give take get
    check complete adjust light illuminate unpause delete next
""".split())
COMMAND_SUFFIXES = (
    "please", "for me", "thanks", "thank you", "now", "right now", "please and thank you",
    "if you can", "asap", "would you", "for me please", "when you can", "quickly", "cheers",
)
QUESTION_PREFIXES = (
    "hey", "hey,", "ok", "um", "uh", "so", "quick question,", "excuse me,", "hey assistant",
    "just wondering,", "yo", "and",
)
QUESTION_SUFFIXES = ("right now", "at the moment", "please", "currently", "now")
FILLERS = ("um", "uh", "like", "just", "erm", "uhh", "you know", "maybe", "actually")

# (pattern, replacements) on lower-cased text; applied outside spans or on a whole
# ``domain`` span. ``\1`` style groups are expanded.
SYNONYMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"\bturn on\b", ("switch on", "put on", "power on", "flip on", "turn on")),
    (r"\bturn off\b", ("switch off", "shut off", "power off", "kill", "cut")),
    (r"\bturn (up|down)\b", (r"crank \1", r"bump \1", r"put \1")),
    (r"\blights\b", ("lamps", "lighting", "lights")),
    (r"\blight\b", ("lamp", "lights")),
    (r"\blamps?\b", ("light", "lights")),
    (r"\bclose\b", ("shut", "lower")),
    (r"\bopen\b", ("raise", "open up")),
    (r"\bwhat is\b", ("what's", "whats")),
    (r"\bwhat's\b", ("what is", "whats")),
    (r"\bset (the|my)\b", (r"change \1", r"adjust \1", r"put \1")),
    (r"\bvolume\b", ("sound", "volume level")),
    (r"\bthe ", ("",)),
    (r"\bmy\b", ("the",)),
    (r"\bthe\b", ("my", "our")),
    (r"\bmute\b", ("silence",)),
    (r"\bcancel\b", ("stop", "kill", "delete")),
    (r"\bstart\b", ("begin", "kick off")),
    (r"\btemperature\b", ("temp",)),
    (r"\bminutes\b", ("mins",)),
    (r"\bminute\b", ("min",)),
    (r"\bseconds\b", ("secs",)),
    (r"\bhours\b", ("hrs",)),
    (r"\bactivate\b", ("enable", "start")),
    (r"\bdeactivate\b", ("disable",)),
    (r"\bpercent\b", ("%", "per cent")),
)

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_NUMBER = re.compile(r"\d+(\.5)?")
_LETTERS = re.compile(r"[a-z]{4,}")

EXTRA_TEMPLATES_FILES = ("extra_templates.yaml", "extra_templates_more.yaml")


def replace_range(example: Example, start: int, end: int, new: str) -> Example:
    """Replace ``text[start:end]`` with ``new`` and move the spans along.

    The range must lie outside every span (spans after it shift) or inside one span (that
    span grows or shrinks; its value is kept: "kitchen" typed "kicthen" still means
    kitchen). An insertion exactly at a span's start goes before the span. A range that
    cuts a span boundary is a bug in the caller and raises ``ValueError``.
    """
    delta = len(new) - (end - start)
    spans = []
    for span in example.spans:
        if span.start >= end:
            spans.append(dataclasses.replace(span, start=span.start + delta, end=span.end + delta))
        elif span.end <= start:
            spans.append(span)
        elif span.start <= start and end <= span.end:
            spans.append(dataclasses.replace(span, end=span.end + delta))
        else:
            raise ValueError(f"range {start}:{end} cuts span {span} of {example.text!r}")
    text = example.text[:start] + new + example.text[end:]
    result = dataclasses.replace(example, text=text, spans=tuple(spans))
    result.check()
    return result


def _outside_spans(example: Example, start: int, end: int) -> bool:
    return all(end <= s.start or start >= s.end for s in example.spans)


def _inside_one_span(example: Example, start: int, end: int) -> bool:
    return any(s.start <= start and end <= s.end for s in example.spans)


def is_question(text: str) -> bool:
    """Whether a sentence asks rather than commands (decides prefixes and "?")."""
    words = text.lower().split()
    return bool(words) and words[0] in QUESTION_WORDS


def politeness(example: Example, rng: random.Random) -> Example | None:
    """Wrap the sentence in a polite or chatty prefix and/or suffix."""
    question = is_question(example.text)
    prefixes = QUESTION_PREFIXES if question else COMMAND_PREFIXES
    if example.text.split(" ", 1)[0].lower() in COMMAND_VERBS:
        prefixes = prefixes + VERB_PREFIXES
    suffixes = QUESTION_SUFFIXES if question else COMMAND_SUFFIXES
    mode = rng.choice(("prefix", "prefix", "suffix", "both"))
    if mode in ("prefix", "both"):
        example = replace_range(example, 0, 0, rng.choice(prefixes) + " ")
    if mode in ("suffix", "both"):
        end = len(example.text)
        example = replace_range(example, end, end, " " + rng.choice(suffixes))
    return example


def filler(example: Example, rng: random.Random) -> Example | None:
    """Insert a hesitation word between two words, never inside a span."""
    gaps = [m.start() for m in re.finditer(" ", example.text)
            if _outside_spans(example, m.start(), m.start() + 1)]
    if not gaps:
        return None
    gap = rng.choice(gaps)
    return replace_range(example, gap, gap, " " + rng.choice(FILLERS))


def typo(example: Example, rng: random.Random) -> Example | None:
    """Swap, drop or double one letter of a word (sometimes inside a span)."""
    words = [m for m in _LETTERS.finditer(example.text)
             if _outside_spans(example, m.start(), m.end())
             or _inside_one_span(example, m.start(), m.end())]
    if not words:
        return None
    word = rng.choice(words)
    letters = word.group()
    i = rng.randrange(1, len(letters) - 1)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        new = letters[:i] + letters[i + 1] + letters[i] + letters[i + 2:]
    elif kind == "drop":
        new = letters[:i] + letters[i + 1:]
    else:
        new = letters[:i] + letters[i] + letters[i:]
    if new == letters:
        return None
    return replace_range(example, word.start(), word.end(), new)


def number_to_words(text: str, language: str = ENGLISH) -> str | None:
    """Words for ``"21"`` or ``"21.5"`` (up to 9999) in ``language``, else None. English is
    ours ("twenty one"); the other languages are num2words' ("einundzwanzig", "vingt et un")."""
    if not _NUMBER.fullmatch(text):
        return None
    whole, _, fraction = text.partition(".")
    number = int(whole)
    if number > 9999:
        return None
    if language != ENGLISH:
        from num2words import num2words

        return num2words(float(text) if fraction else number, lang=language).lower()
    words = _int_to_words(number)
    return f"{words} point five" if fraction else words


def _int_to_words(number: int) -> str:
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{_ONES[hundreds]} hundred" + (f" and {_int_to_words(rest)}" if rest else "")
    thousands, rest = divmod(number, 1000)
    return f"{_int_to_words(thousands)} thousand" + (f" {_int_to_words(rest)}" if rest else "")


def number_words(example: Example, rng: random.Random, language: str = ENGLISH) -> Example | None:
    """Spell one number span out ("21" → "twenty one"); its value stays the digits."""
    candidates = [s for s in example.spans
                  if number_to_words(example.text[s.start:s.end], language) is not None]
    if not candidates:
        return None
    span = rng.choice(candidates)
    words = number_to_words(example.text[span.start:span.end], language)
    if language == ENGLISH:
        if words.count(" ") == 1 and rng.random() < 0.3:
            words = words.replace(" ", "-")  # "twenty-one", as people type it
    elif "-" in words and rng.random() < 0.5:
        words = words.replace("-", " ")  # "quarante cinq" for "quarante-cinq"
    return replace_range(example, span.start, span.end, words)


def case(example: Example, rng: random.Random) -> Example | None:
    """Title Case, UPPER CASE or a capital first letter, as typed or transcribed."""
    text = example.text
    style = rng.choice(("sentence", "sentence", "title", "upper"))
    if style == "upper":
        new = text.upper()
    elif style == "title":
        new = " ".join(w[:1].upper() + w[1:] for w in text.split(" "))
    else:
        new = re.sub(r"\bi\b", "I", text[:1].upper() + text[1:])
    if len(new) != len(text) or new == text:
        return None
    return dataclasses.replace(example, text=new)


def punctuation(example: Example, rng: random.Random) -> Example | None:
    """End the sentence with "?", "!" or "." (questions mostly "?")."""
    if example.text[-1:] in "?!.":
        return None
    marks = ("?", "?", "?", ".") if is_question(example.text) else (".", ".", "!", "?")
    end = len(example.text)
    return replace_range(example, end, end, rng.choice(marks))


def synonym(example: Example, rng: random.Random) -> Example | None:
    """Swap one phrase for a synonym ("turn off" → "kill", "lights" → "lamps")."""
    lowered = example.text.lower()
    domain_spans = {(s.start, s.end) for s in example.spans if s.slot == "domain"}
    matches = []
    for pattern, replacements in SYNONYMS:
        for match in re.finditer(pattern, lowered):
            region = (match.start(), match.end())
            if _outside_spans(example, *region) or region in domain_spans:
                matches.append((match, replacements))
    if not matches:
        return None
    match, replacements = rng.choice(matches)
    new = match.expand(rng.choice(replacements))
    if (match.start(), match.end()) in domain_spans and not new:
        return None
    result = replace_range(example, match.start(), match.end(), new)
    if not result.text or result.text != " ".join(result.text.split()):
        return None
    return result


# Made-up words for names nobody has: held-out sentences name rooms and devices the model
# never saw, so it must find a name by where it stands in the sentence, not by knowing it.
NOVEL_NAME_WORDS = tuple("""
    amber arlo aspen basil birch blue bramble brook cedar clover coral cosmo copper daisy delta
    ember fern finch fjord flint gable granite hazel heron indigo iris ivy jasper juniper kestrel
    lark laurel linden lotus lumen maple marble meadow mesa mint nova oak olive onyx opal orchid
    otter pebble pine plum poppy quartz raven reed ridge robin rowan rustic sable saffron sage
    slate sparrow spruce summit tango teal thistle timber topaz tulip umber velvet violet willow
    wren yarrow zephyr north south east west upper lower back front side little big old new
    grandma's leo's mia's noah's zoe's guest kids study pantry loft den nook annex studio lounge
    gallery cellar workshop greenhouse sunroom foyer veranda terrace gazebo cabana
""".split())
NOVEL_NAME_SLOTS = ("area", "name", "floor")


@cache
def _novel_words() -> tuple[str, ...]:
    """NOVEL_NAME_WORDS without the held-out names among them ("sunroom", "foyer", ...): a
    made-up name must never put a dev/test name into training."""
    return tuple(w for w in NOVEL_NAME_WORDS if not is_held_out(w))


def novel_name(example: Example, rng: random.Random) -> Example | None:
    """Replace one area/name/floor mention with 1-3 made-up words (the value follows);
    half the time the mention's last word ("room", "lamp", "floor") stays."""
    spans = [s for s in example.spans if s.slot in NOVEL_NAME_SLOTS]
    if not spans:
        return None
    span = rng.choice(spans)
    words = [rng.choice(_novel_words()) for _ in range(rng.choice((1, 1, 2, 2, 3)))]
    old = example.text[span.start:span.end].split()
    if len(old) > 1 and rng.random() < 0.5:
        words[-1:] = [words[-1], old[-1]] if len(words) < 3 else [old[-1]]
    new = " ".join(words)
    if is_held_out(new):  # "front" + a kept "porch" can make a held-out name
        return None
    result = replace_range(example, span.start, span.end, new)
    spans = tuple(dataclasses.replace(s, value=new) if (s.start, s.slot) == (span.start, span.slot) else s
                  for s in result.spans)
    return dataclasses.replace(result, spans=spans, source="augment:novel_name")


# In the order they are applied: wording first, then spelling, then casing and punctuation.
AUGMENTERS: dict[str, Callable[[Example, random.Random], Example | None]] = {
    "synonym": synonym,
    "number_words": number_words,
    "filler": filler,
    "politeness": politeness,
    "typo": typo,
    "case": case,
    "punctuation": punctuation,
}
WEIGHTS = {"synonym": 3, "number_words": 2, "filler": 1, "politeness": 4, "typo": 2,
           "case": 2, "punctuation": 2}


# The augmentations of languages other than English: the others edit English words. Numbers
# are spelled out in the example's language (num2words).
ANY_LANGUAGE = ("number_words", "typo", "case", "punctuation")


def augmenters(language: str) -> dict[str, Callable[[Example, random.Random], Example | None]]:
    """The augmentations for sentences in ``language``, in the order they apply."""
    if language == ENGLISH:
        return AUGMENTERS
    return {kind: functools.partial(number_words, language=language) if kind == "number_words" else function
            for kind, function in AUGMENTERS.items() if kind in ANY_LANGUAGE}


def augment_example(example: Example, rng: random.Random, max_ops: int = 3,
                    language: str = ENGLISH) -> Example | None:
    """Apply 1..max_ops random augmentations (those of ``language``); None if none applied.

    The result's source is ``augment:<kind>+<kind>`` naming those that applied.
    """
    functions = augmenters(language)
    weights = {k: w for k, w in WEIGHTS.items() if k in functions}
    count = rng.randint(1, max_ops)
    chosen = set(rng.choices(list(weights), weights=list(weights.values()), k=count))
    applied = []
    for kind, function in functions.items():
        if kind not in chosen:
            continue
        result = function(example, rng)
        if result is not None:
            example = result
            applied.append(kind)
    if not applied:
        return None
    return dataclasses.replace(example, source="augment:" + "+".join(applied))


def augment_examples(examples: list[Example], rng: random.Random, probability: float = 0.6,
                     augmenter: Callable[[Example, random.Random], Example | None] | None = None,
                     language: str = ENGLISH) -> list[Example]:
    """One augmented copy of each example, with ``probability``; originals are not included.
    ``augmenter`` defaults to a random mix of those of ``language`` (:func:`augment_example`)."""
    if augmenter is None:
        augmenter = functools.partial(augment_example, language=language)
    out = []
    for example in examples:
        if rng.random() < probability:
            augmented = augmenter(example, rng)
            if augmented is not None:
                out.append(augmented)
    return out


def _templates_in_file(path, id_prefix: str, language: str = ENGLISH) -> list[Template]:
    """The templates of one of our hassil YAML files of ``language`` (Home Assistant's lists and
    rules of that language apply); its shared expansion rules apply to every block."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    shared_rules = data.get("expansion_rules", {})
    intents = {intent: {"data": [{**block, "expansion_rules": {**shared_rules, **block.get("expansion_rules", {})}}
                                 for block in intent_dict["data"]]}
               for intent, intent_dict in data["intents"].items()}
    return templates_from_dict(intents, ha_intents(language), id_prefix=id_prefix)


@cache
def project_templates(language: str = ENGLISH) -> tuple[Template, ...]:
    """Our own templates of ``language`` (``extra_templates*.yaml`` in its data folder,
    :func:`.languages.data_file`); ids prefixed ``extra:``, ``extra1:``, ..."""
    return tuple(template
                 for number, name in enumerate(EXTRA_TEMPLATES_FILES) if data_file(language, name).is_file()
                 for template in _templates_in_file(data_file(language, name),
                                                    "extra:" if number == 0 else f"extra{number}:", language))


def project_template_examples(rng: random.Random, samples_per_template: int,
                              sampler: Sampler) -> list[Example]:
    """Distinct samples from our own templates of the sampler's language, with training names only."""
    examples = []
    for template in project_templates(sampler.language):
        seen = set()
        for _ in range(samples_per_template):
            example = sampler.sample(template, rng, source="augment:template")
            if example.text not in seen:
                seen.add(example.text)
                examples.append(example)
    return examples
