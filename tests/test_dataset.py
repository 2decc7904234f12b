"""Specification of the training data pipeline (models/{entities,templates,augment,dataset}.py)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import defaultdict

import pytest

from squeezeedge.models import entities
from squeezeedge.models.augment import (
    AUGMENTERS,
    augment_example,
    number_to_words,
    project_templates,
    replace_range,
)
from squeezeedge.models.dataset import (
    MIN_TEMPLATES_TO_SPLIT,
    SPLITS,
    build_dataset,
    format_stats,
    load_lines,
    novel_phrasing,
    phrasing_key,
    text_key,
)
from squeezeedge.models.examples import Example, Span
from squeezeedge.models.templates import (
    FREE_TEXT_SLOTS,
    Sampler,
    _Chunk,
    ha_intents,
    load_templates,
    render,
    templates_from_dict,
)



@pytest.fixture(scope="module")
def dataset():
    return build_dataset()


@pytest.fixture(scope="module")
def templates():
    return load_templates()


def span_texts(example: Example) -> list[str]:
    return [example.text[s.start:s.end] for s in example.spans]


def test_every_example_is_well_formed(dataset):
    for split in SPLITS:
        for example in dataset.split(split):
            example.check()
            assert example.text == example.text.strip() and "  " not in example.text


def test_free_text_span_is_the_value_in_sampled_sentences(dataset):
    for split in SPLITS:
        for example in dataset.split(split):
            if example.source not in ("template", "augment:template"):
                continue
            for span in example.spans:
                if span.slot in FREE_TEXT_SLOTS:
                    assert example.text[span.start:span.end] == span.value, example


def test_no_dev_or_test_sentence_occurs_in_train(dataset):
    train = {text_key(e.text) for e in dataset.train}
    for split in ("dev", "test"):
        assert not [e.text for e in dataset.split(split) if text_key(e.text) in train]


def test_sentences_are_the_same_whatever_their_case_punctuation_and_spacing():
    assert text_key("Who was the first person on the moon?") == text_key("who was the first  person on the moon")
    assert text_key("What's the time") == text_key("whats the time") == text_key("What\u2019s the time!")
    assert text_key("set it to 21.5") != text_key("set it to 215")  # digits keep apart, punctuation between them
    assert text_key("turn on the lights") != text_key("turn off the lights")


def test_a_phrasing_is_the_sentence_with_its_slot_mentions_masked():
    kitchen = Example("Turn on the kitchen light!", "HassTurnOn", (Span(12, 25, "name", "kitchen light"),))
    porch = Example("turn on the porch light", "HassTurnOn", (Span(12, 23, "name", "porch light"),))
    porch_area = Example("turn on the porch light", "HassTurnOn", (Span(12, 17, "area", "porch"),))
    assert phrasing_key(kitchen) == phrasing_key(porch) != phrasing_key(porch_area)


def test_the_novel_phrasing_split_holds_the_test_sentences_worded_as_nothing_in_training(dataset):
    trained = {phrasing_key(e) for e in dataset.train}
    in_scope = [e for e in dataset.test if e.intent is not None]
    novel = dataset.novel
    assert novel and all(e in in_scope and phrasing_key(e) not in trained for e in novel)
    shared = [e for e in in_scope if phrasing_key(e) in trained]
    assert len(novel) + len(shared) == len(in_scope) and shared  # template test shares wordings: that is the point
    assert novel_phrasing(dataset.test, dataset.train) == novel


def test_templates_are_disjoint_across_splits_when_an_intent_has_enough(dataset, templates):
    counts = defaultdict(int)
    for template in templates:
        counts[template.intent] += 1
    by_split = {split: {e.template for e in dataset.split(split) if e.source == "template"
                        and counts[e.intent] >= MIN_TEMPLATES_TO_SPLIT} for split in SPLITS}
    assert not by_split["train"] & by_split["dev"]
    assert not by_split["train"] & by_split["test"]
    assert not by_split["dev"] & by_split["test"]


def test_entity_lists_split_into_disjoint_train_and_held_out_parts():
    all_train, all_held_out = set(), set()
    for kind, values in entities.ENTITY_LISTS.items():
        train, held_out = entities.split_names(values)
        assert train and held_out, kind
        assert 0.15 <= len(held_out) / len(values) <= 0.35, kind
        all_train |= set(train)
        all_held_out |= set(held_out)
    assert not all_train & all_held_out
    assert len(entities.AREAS) >= 60 and len(entities.FLOORS) >= 12


def test_dev_and_test_mention_only_held_out_names(dataset):
    for split, allowed in (("train", False), ("dev", True), ("test", True)):
        for example in dataset.split(split):
            if example.source not in ("template", "augment:template"):
                continue
            for span in example.spans:
                if span.slot in FREE_TEXT_SLOTS:
                    assert entities.is_held_out(span.value) == allowed, (split, example)


def test_no_training_sentence_of_any_source_names_a_held_out_name(dataset):
    # augmentations too: a made-up name or a synonym must not smuggle in a dev/test name
    for example in dataset.split("train"):
        for span in example.spans:
            if span.slot in FREE_TEXT_SLOTS:
                assert not entities.is_held_out(span.value), example


def test_same_seed_gives_identical_dataset_and_another_seed_differs():
    first = build_dataset(seed=3, samples_per_template=4)
    again = build_dataset(seed=3, samples_per_template=4)
    other = build_dataset(seed=4, samples_per_template=4)
    assert (first.train, first.dev, first.test) == (again.train, again.dev, again.test)
    assert first.train != other.train


def test_every_intent_is_evaluated(dataset, templates):
    intents = {t.intent for t in templates}
    for split in ("dev", "test"):
        assert intents <= {e.intent for e in dataset.split(split)}, split
    assert intents <= {e.intent for e in dataset.train}


def test_out_of_scope_examples_have_no_intent_and_no_spans(dataset):
    oos = [e for e in dataset.train if e.intent is None]
    assert len({e.text for e in oos if e.source == "oos"}) >= 900
    assert all(not e.spans and e.template == "" for e in oos)
    lines = load_lines("out_of_scope_train.txt")
    assert len(lines) == len(set(lines)) >= 900


def test_data_readme_states_how_many_held_out_oos_lines_are_dropped_as_seen(dataset):
    """models/data/README.md's numbers are the ones build_dataset really drops (issue 18)."""
    import re
    from pathlib import Path

    from squeezeedge.models.dataset import OOS_HELD_OUT_FILES, OOS_TRAIN_FILES

    readme = " ".join((Path(__file__).parent.parent / "models/data/README.md").read_text().split())
    said = re.search(r"(\d+) of the (\d+) dev lines and (\d+) of the (\d+) test lines \((\d+) dev / (\d+) "
                     r"test equal a line of `out_of_scope_train.txt`, (\d+) / (\d+) one of the near-miss file, "
                     r"some both\), so (\d+) dev and (\d+) test out-of-scope lines are evaluated", readme)
    assert said, "models/data/README.md no longer states the dropped out-of-scope lines"
    train_file, near_miss_file = ({text_key(line) for line in load_lines(name)} for name in OOS_TRAIN_FILES)
    real = []
    for split in ("dev", "test"):
        lines = load_lines(OOS_HELD_OUT_FILES[split])
        kept = sum(1 for e in dataset.split(split) if e.source == "oos")
        real.append((len(lines) - kept, len(lines), kept,
                     sum(text_key(line) in train_file for line in lines),
                     sum(text_key(line) in near_miss_file for line in lines)))
    (d_drop, d_all, d_kept, d_train, d_near), (t_drop, t_all, t_kept, t_train, t_near) = real
    assert [int(x) for x in said.groups()] == [d_drop, d_all, t_drop, t_all, d_train, t_train, d_near, t_near,
                                               d_kept, t_kept]


def test_format_stats_reports_every_split(dataset):
    report = format_stats(dataset)
    for word in ("examples", "HassTurnOn", "out of scope", "augment:typo", "domain spans"):
        assert word in report


# --- the sampler ------------------------------------------------------------------------


def test_render_normalises_whitespace_like_hassil_and_keeps_spans():
    chunks = [_Chunk(" set  the "), _Chunk(" kitchen ", "area", "kitchen"), _Chunk("  to "),
              _Chunk("50", "brightness", "50"), _Chunk("% ")]
    text, spans = render(chunks)
    assert text == "set the kitchen to 50%"
    assert [(text[s.start:s.end], s.slot) for s in spans] == [("kitchen", "area"),
                                                             ("50", "brightness")]


def sample_one(sentence: str, rng_seed: int = 0, **block) -> Example:
    intents = {"Test": {"data": [{"sentences": [sentence], **block}]}}
    template = templates_from_dict(intents, ha_intents())[0]
    return Sampler("train").sample(template, random.Random(rng_seed))


def test_list_values_are_home_assistants_out_values():
    for seed in range(20):
        example = sample_one("open the {cover_classes:device_class}", seed)
        span = example.spans[0]
        assert span.slot == "device_class"
        assert example.text[span.start:span.end].rstrip("s").endswith(span.value.rstrip("s")) \
            or span.value == "garage"
        volume = sample_one("turn down by {volume_step_down:volume_step}%", seed).spans[0]
        assert int(volume.value) <= 0 and volume.slot == "volume_step"
        temperature = sample_one("set it to {temperature} degrees", seed).spans[0]
        assert float(temperature.value) * 2 == int(float(temperature.value) * 2)
    garage = [sample_one("open the {cover_classes:device_class}", s) for s in range(200)]
    assert any(e.slots["device_class"] == "garage" and "garage door" in e.text for e in garage)


def test_fixed_domain_gets_a_span_on_the_word_naming_it():
    example = sample_one("turn on the {area} (lights|lamp)", slots={"domain": "light"})
    domain = [s for s in example.spans if s.slot == "domain"]
    assert len(domain) == 1 and domain[0].value == "light"
    assert example.text[domain[0].start:domain[0].end] in ("lights", "lamp")


def test_name_is_filled_from_the_required_domain():
    locks = set(entities.device_names("lock", "train"))
    for seed in range(20):
        example = sample_one("unlock the {name}", seed, requires_context={"domain": ["lock"]})
        assert example.slots["name"] in locks


def test_every_ha_and_project_template_samples(templates):
    rng = random.Random(0)
    sampler = Sampler("heldout")
    for template in [*templates, *project_templates()]:
        sampler.sample(template, rng).check()


# --- augmentations ----------------------------------------------------------------------


def test_replace_range_moves_spans_with_the_text():
    example = Example("turn on the kitchen light", "HassTurnOn",
                      (Span(12, 19, "area", "kitchen"), Span(20, 25, "domain", "light")))
    before = replace_range(example, 0, 0, "please ")
    assert span_texts(before) == ["kitchen", "light"]
    inside = replace_range(example, 14, 15, "")
    assert span_texts(inside) == ["kichen", "light"] and inside.spans[0].value == "kitchen"
    after = replace_range(example, 25, 25, " now")
    assert span_texts(after) == ["kitchen", "light"]
    with pytest.raises(ValueError):
        replace_range(example, 10, 14, "x")


@pytest.mark.parametrize("kind", list(AUGMENTERS))
def test_each_augmentation_keeps_spans_exact(dataset, kind):
    rng = random.Random(kind)
    examples = [e for e in dataset.train if e.source in ("template", "augment:template")]
    applied = 0
    for example in rng.sample(examples, 1500):
        result = AUGMENTERS[kind](example, rng)
        if result is None:
            continue
        applied += 1
        result.check()
        meanings = [(s.slot, s.value) for s in example.spans]
        assert [(s.slot, s.value) for s in result.spans] == meanings
        for old, new in zip(span_texts(example), span_texts(result)):
            if kind == "typo":
                assert abs(len(old) - len(new)) <= 1
            elif kind == "number_words":
                assert old == new or new.replace("-", " ") == number_to_words(old)
            elif kind == "synonym":
                assert old == new or any(s.slot == "domain" for s in result.spans)
            else:
                assert old.lower() == new.lower()
    assert applied > 100


def test_combined_augmentations_name_what_they_did(dataset):
    rng = random.Random(1)
    for example in dataset.train[:2000]:
        result = augment_example(example, rng)
        if result is not None:
            result.check()
            assert result.source.startswith("augment:") and result.intent == example.intent


def test_numbers_are_spelled_out():
    assert number_to_words("21") == "twenty one"
    assert number_to_words("10") == "ten"
    assert number_to_words("21.5") == "twenty one point five"
    assert number_to_words("100") == "one hundred"
    assert number_to_words("2700") == "two thousand seven hundred"
    assert number_to_words("kitchen") is None


def test_dataset_does_not_depend_on_python_hash_seed():
    code = ("import hashlib; from squeezeedge.models.dataset import build_dataset; "
            "d = build_dataset(seed=1, samples_per_template=3); "
            "print(hashlib.sha256(repr((d.train, d.dev, d.test)).encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2")}
    assert len(digests) == 1
