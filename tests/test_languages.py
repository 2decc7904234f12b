"""Home Assistant's own intents in other languages (issue 13, item 3).

Each language we have data for (models/data/languages/<xx>/) has a home's names, out-of-scope
sentences and a people set, written by hand in that language; its dataset keeps held-out names
out of training as the English one does; a model trained on it answers alike on the integer
reference, the C engine and the host emulator; the shipped model of each language is what
`--language xx` runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from conftest import TINY
from squeezeedge.classify import classify_line
from squeezeedge.models import entities
from squeezeedge.models.dataset import OOS_HELD_OUT_FILES, build_dataset, load_lines, text_key
from squeezeedge.models.evaluate import load_people
from squeezeedge.models.languages import (ENGLISH, LanguageError, check_language, languages, shipped_languages,
                                          shipped_model)
from squeezeedge.models.model_file import IntModel
from squeezeedge.models.templates import load_templates

OTHER = [language for language in languages() if language != ENGLISH]


def test_english_and_four_more_languages_have_data_and_a_shipped_model():
    assert {"de", "fr", "es", "nl"} <= set(OTHER)
    assert set(shipped_languages()) == set(languages())
    for language in languages():
        model = IntModel.load(shipped_model(language))
        assert model.language == language
        assert model.weight_bytes() + model.vocab_bytes() <= 128 * 1024, language
        assert set(model.intents[1:]) == {t.intent for t in load_templates(language)}, language


def test_a_language_without_data_is_one_clear_sentence():
    with pytest.raises(LanguageError, match=r"no data for Home Assistant's intents in 'it'.*it has en, "):
        check_language("it")
    with pytest.raises(LanguageError, match=r"no shipped model for language 'it'"):
        shipped_model("it")


@pytest.mark.parametrize("language", OTHER)
def test_a_home_has_names_in_every_language_and_a_quarter_are_held_out(language):
    home = entities.home_names("all", language)
    kinds = Counter(kind.split(":")[0] for kind, _ in home.entries)
    assert kinds["area"] >= 50 and kinds["floor"] >= 12 and kinds["name"] >= 200
    for domain in entities.DEVICE_NAMES:
        train, held_out = (entities.device_names(domain, split, language) for split in ("train", "heldout"))
        assert train and held_out and not set(train) & set(held_out), domain
    area = entities.names("area", "train", language) + entities.names("area", "heldout", language)
    assert 0.15 <= len(entities.names("area", "heldout", language)) / len(area) <= 0.35
    # the names nearly every home uses are never held out
    assert not any(entities.is_held_out(name, language) for name in entities._lists(language)[1])


@pytest.mark.parametrize("language", OTHER)
def test_hand_written_sentences_are_many_distinct_and_in_no_two_sets(language):
    train = load_lines("out_of_scope_train.txt", language)
    held_out = {split: load_lines(name, language) for split, name in OOS_HELD_OUT_FILES.items()}
    people = load_people(language=language)
    assert len(train) >= 400 and all(len(lines) >= 120 for lines in held_out.values())
    commands = Counter(intent for _, intent, _ in people if intent)
    assert sum(commands.values()) >= 250 and sum(1 for _, intent, _ in people if intent is None) >= 100
    # every intent Home Assistant has in this language, at least four ways
    assert set(commands) == {t.intent for t in load_templates(language)}
    assert min(commands.values()) >= 4, commands.most_common()[-3:]
    sets = {"train": train, **held_out, "people": [text for text, _, _ in people]}
    owner: dict[str, str] = {}
    for name, lines in sets.items():
        for line in lines:
            key = text_key(line)
            assert owner.setdefault(key, name) == name, f"{line!r} is in {owner[key]} and {name}"


@pytest.mark.parametrize("language", OTHER)
def test_our_own_templates_of_each_language_cover_every_intent(language):
    from squeezeedge.models.augment import project_templates

    templates = project_templates(language)
    assert len(templates) >= 150
    assert {t.intent for t in templates} == {t.intent for t in load_templates(language)}


@pytest.mark.parametrize("language", OTHER)
def test_the_dataset_holds_out_names_and_is_in_its_language(language):
    dataset = build_dataset(seed=0, samples_per_template=6, language=language)
    assert dataset.language == language and not dataset.hand_written_sets
    held_out_names = {span.value for e in dataset.dev + dataset.test for span in e.spans
                      if span.slot in ("area", "floor", "name") and e.source == "template"}
    train_names = {span.value for e in dataset.train for span in e.spans if span.slot in ("area", "floor", "name")}
    assert held_out_names and not any(entities.is_held_out(n, language) for n in train_names)
    english = set(entities.AREAS) - set(entities._lists(language)[0]["area"])
    assert not any(span.value in english for e in dataset.train for span in e.spans if span.slot == "area")
    oos = {text_key(line) for line in load_lines("out_of_scope_train.txt", language)}
    assert oos <= {text_key(e.text) for e in dataset.train if e.intent is None}
    assert all(text_key(e.text) not in oos for e in dataset.dev + dataset.test)


@pytest.mark.parametrize("language, words", [("de", "fünfundsiebzig"), ("fr", "soixante-quinze"),
                                             ("es", "setenta y cinco"), ("nl", "vijfenzeventig")])
def test_numbers_are_also_written_as_words_of_the_language(language, words):
    from squeezeedge.models.augment import number_to_words

    assert number_to_words("75", language) == words
    dataset = build_dataset(seed=0, samples_per_template=6, language=language)
    spelled = [(e.text[s.start:s.end], s.value) for e in dataset.train
               if "number_words" in e.source and "typo" not in e.source for s in e.spans]
    # the digits' value, the language's words (some templates have their own number words too)
    assert sum(number_to_words(value, language).replace("-", " ") == text.lower().replace("-", " ")
               for text, value in spelled if value.isdigit()) >= 100


def test_a_german_spec_with_home_assistant_knows_both_in_german(tmp_path):
    from squeezeedge.models.sentence_spec import load_spec
    from squeezeedge.models.spec_dataset import build_spec_dataset

    from test_sentences_spec import GERMAN

    path = tmp_path / "ofen.yaml"
    path.write_text(GERMAN, encoding="utf-8")
    dataset = build_spec_dataset(load_spec([path], with_home_assistant=True), seed=0, samples_per_template=6,
                                 with_home_assistant=True)
    intents = {e.intent for e in dataset.train}
    assert {"OfenVorheizen", "HassTurnOn", "HassStartTimer"} <= intents
    areas = {s.value for e in dataset.train for s in e.spans if s.slot == "area"}
    assert "küche" in areas and "kitchen" not in areas


def test_a_tiny_spanish_model_answers_alike_on_reference_c_and_emulator():
    """Home Assistant's Spanish intents, trained tiny: the same answers, byte for byte, with and
    without the home's names, on the reference, the C engine and the host emulator."""
    from squeezeedge.emulator import build_emulator, prepare_package
    from squeezeedge.engines import open_engine
    from squeezeedge.models.engine import ReferenceEngine, tokenizer_for
    from squeezeedge.models.gazetteer import readable
    from squeezeedge.models.train import TrainOptions, run_training

    from test_emulator import run_stdio

    dataset = build_dataset(seed=0, samples_per_template=6, language="es")
    result = run_training(dataset, TrainOptions(config=TINY, epochs=2, progress=False, calibration_size=500))
    model = result.model
    assert model.language == "es" and "people" not in result.metrics
    names = readable(tokenizer_for(model), entities.home_names("all", "es"))
    texts = [text for text, _, _ in load_people(language="es")][::3] + [
        "ENCIENDE LA LUZ DE LA COCINA", "¿Qué hora es?", "baja la persiana del salón al 50 %", "ñandú"]
    for told in (None, names):
        reference, c = ReferenceEngine(model, told), open_engine("c", model, names=told)
        want = [classify_line(reference, t.encode()) for t in texts]
        assert [classify_line(c, t.encode()) for t in texts] == want
    emulator = build_emulator(prepare_package(model))
    reference = ReferenceEngine(model)
    want = [classify_line(reference, t.encode()) for t in texts]
    replies = run_stdio(emulator, "\n".join(texts).encode() + b"\n")
    assert [{k: r.get(k) for k in w} for r, w in zip(replies, want)] == want


@pytest.mark.parametrize("language", OTHER)
def test_each_shipped_language_model_answers_alike_in_c(language):
    """Every shipped model of another language, compiled to C, answers its people set and its
    held-out sentences exactly as the integer reference does."""
    from squeezeedge.engines import open_engine
    from squeezeedge.models.engine import ReferenceEngine, tokenizer_for
    from squeezeedge.models.gazetteer import readable

    model = IntModel.load(shipped_model(language))
    names = readable(tokenizer_for(model), entities.home_names("all", language))
    texts = [text for text, _, _ in load_people(language=language)]
    reference, c = ReferenceEngine(model, names), open_engine("c", model, names=names)
    want = [classify_line(reference, t.encode()) for t in texts]
    assert [classify_line(c, t.encode()) for t in texts] == want
    assert sum(a.get("intent") is not None for a in want) >= len(texts) // 2


def squeezeedge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "squeezeedge", *args], capture_output=True, text=True, timeout=600)


def test_language_picks_the_shipped_model_of_that_language():
    from squeezeedge.models.engine import ReferenceEngine

    text = "schalte das licht in der küche aus"
    r = squeezeedge("classify", "--language", "de", text)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == classify_line(ReferenceEngine(IntModel.load(shipped_model("de"))), text.encode())
    r = squeezeedge("classify", "--language", "it", "accendi la luce")
    assert r.returncode == 2 and "no shipped model for language 'it'" in r.stderr and "Traceback" not in r.stderr
    r = squeezeedge("classify", "--language", "de", "--model", str(shipped_model("de")), text)
    assert r.returncode == 2 and "pass one of them" in r.stderr
    r = squeezeedge("train", "--language", "it", "-o", "never.semodel")
    assert r.returncode == 2 and "no data for Home Assistant's intents in 'it'" in r.stderr


def test_eval_of_another_language_measures_its_own_sets():
    r = squeezeedge("eval", "--language", "fr", "--split", "people", "--json")
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)["people"]
    (people,) = metrics.values()
    from squeezeedge.models.evaluate import split_records

    # the French people set, less any sentence that equals a training one
    scored = split_records("people", build_dataset(seed=0, language="fr"))
    assert people["n_in_scope"] == sum(1 for _, i, _ in scored if i) > 0.8 * sum(
        1 for _, i, _ in load_people(language="fr") if i)
    assert people["n_gold_slots"] == 0
