"""A maker's own commands (issue 13): Home Assistant custom-sentence YAML in, a model that knows
exactly those intents out, answering the same on every engine.

Bad specs are refused before any training, in one sentence naming the file and line. A small
spec (examples/appliances/washer.yaml) is trained tiny here, then answered by the integer
reference, the C engine, the host emulator and the rv32 firmware in QEMU, all alike; a German
spec answers alike on reference, C and emulator."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import TINY
from squeezeedge import boards
from squeezeedge.classify import classify_line
from squeezeedge.models.sentence_spec import SpecError, load_spec, spec_sampler

import fw_support as fw

ROOT = Path(__file__).resolve().parents[1]
APPLIANCES = ROOT / "examples" / "appliances"
WASHER = APPLIANCES / "washer.yaml"
SAMPLES_PER_TEMPLATE = 12  # enough to split and learn the words, small enough to train in seconds

GOOD = """\
language: "en"
intents:
  OvenPreheat:
    data:
      - sentences:
          - "preheat [the oven] to {temperature} [degrees]"
          - "heat [the oven] (up|) to {temperature} [degrees]"
          - "warm up the oven [to {temperature} [degrees]]"
          - "get the oven (hot|ready) [at {temperature} [degrees]]"
lists:
  temperature:
    range:
      from: 100
      to: 250
      step: 10
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ---- bad input: one sentence naming file and line, before any training ----

# case → (spec text, the line the error names, words it must say)
BAD_SPECS = {
    "YAML syntax error": ('language: en\nintents:\n  A:\n    data:\n      - sentences: ["on", "off"\n', 6,
                          "YAML syntax error"),
    "unknown list": (GOOD.replace('to {temperature} [degrees]"', 'to {heat} [degrees]"', 1), 6,
                     "unknown list {heat}"),
    "undefined expansion rule": (GOOD.replace("[the oven]", "[<appliance>]", 1), 6,
                                 "unknown expansion rule <appliance>"),
    "intent with no sentences": (GOOD.replace("lists:", "  OvenOff:\n    data: []\nlists:"), 10,
                                 "intent OvenOff has no sentences"),
    "language Home Assistant does not have": (GOOD.replace('language: "en"', 'language: "xx"'), 1,
                                              "Home Assistant has no language 'xx'"),
    # one way to say it leaves nothing to hold out for evaluation; the line is the sentence's
    "too small to split": (GOOD.replace("lists:", '  OvenOff:\n    data:\n      - sentences:\n'
                                        '          - "turn off the oven"\nlists:'), 13,
                           "the spec is too small to split: intent OvenOff"),
    "fixed slot values": (GOOD.replace("      - sentences:", "      - slots: {mode: fan}\n        sentences:"), 5,
                          "fixed slot values ('slots:')"),
    "list without values": (GOOD.replace("    range:\n      from: 100\n      to: 250\n      step: 10\n",
                                         "    values: []\n"), 11, "list 'temperature' has no values"),
}


def test_a_good_spec_loads_with_its_lines(tmp_path):
    spec = load_spec([write(tmp_path, GOOD)])
    assert spec.language == "en" and spec.intents == ("OvenPreheat",)
    assert [line for _, line in spec.template_lines.values()] == [6, 7, 8, 9]


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_a_bad_spec_is_one_sentence_naming_file_and_line(tmp_path, case):
    text, line, words = BAD_SPECS[case]
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as error:
        load_spec([path])
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert words in message and "\n" not in message


def test_the_train_command_refuses_a_bad_spec_before_training(tmp_path):
    path = write(tmp_path, BAD_SPECS["unknown list"][0])
    out = tmp_path / "oven.semodel"
    r = subprocess.run([sys.executable, "-m", "squeezeedge", "train", "--sentences", str(path), "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and not out.exists()
    assert f"{path}:6: unknown list {{heat}}" in r.stderr and "Traceback" not in r.stderr
    assert "building the dataset" not in r.stderr


def test_a_folder_of_specs_is_every_yaml_in_it_and_languages_must_agree(tmp_path):
    write(tmp_path, GOOD, "oven.yaml")
    write(tmp_path, GOOD.replace("OvenPreheat", "GrillPreheat").replace("oven", "grill"), "grill.yaml")
    assert load_spec([tmp_path]).intents == ("GrillPreheat", "OvenPreheat")
    with pytest.raises(SpecError, match=r"oven.yaml:1: this file is language 'en' but the model's language is 'de'"):
        load_spec([tmp_path / "oven.yaml"], language="de")


WILDCARD = GOOD.replace("lists:", """\
  OvenNote:
    data:
      - sentences:
          - "(note|remember) that {note}"
          - "add a note [saying] {note}"
          - "write down {note}"
lists:
  note:
    wildcard: true""")


def test_a_wildcard_list_is_filled_with_free_text_of_its_language(tmp_path):
    import random

    from squeezeedge.models import entities

    for language in ("en", "de"):
        spec = load_spec([write(tmp_path, WILDCARD.replace('language: "en"', f'language: "{language}"'))])
        sampler = spec_sampler(spec, "train", with_home_assistant=False)
        notes = {sampler.sample(t, random.Random(i)).slots["note"] for i, t in enumerate(spec.templates[4:] * 10)}
        assert len(notes) > 10 and notes <= set(entities.free_text("train", language))
    # a language SqueezeEdge has no phrases of (Italian) cannot fill a wildcard
    with pytest.raises(SpecError, match=r"spec.yaml:13: wildcard \{note\}: training needs sample values"):
        load_spec([write(tmp_path, WILDCARD.replace('language: "en"', 'language: "it"'))])


# ---- the shipped examples ----

@pytest.mark.parametrize("name, language", [("washer", "en"), ("dishwasher", "en"), ("air_purifier", "en"),
                                            ("de/waschmaschine", "de")])
def test_the_example_appliances_load_and_their_test_sentences_name_their_intents(name, language):
    from squeezeedge.models.evaluate import load_tsv

    spec = load_spec([APPLIANCES / f"{name}.yaml"])
    assert spec.language == language and len(spec.intents) >= 5 and len(spec.templates) >= 40
    people = APPLIANCES / "people" / f"{Path(name).name}{'_' + language if language != 'en' else ''}.tsv"
    records = load_tsv(people)
    assert {intent for _, intent, _ in records} == {*spec.intents, None}
    assert {slot for _, _, slots in records for slot in slots} <= set(spec.lists)


def test_list_values_are_sampled_with_their_output_values():
    """'woollen' is said, 'wool' is meant: the span covers the words, the value is the list's out."""
    import random

    spec = load_spec([WASHER])
    sampler = spec_sampler(spec, "train", with_home_assistant=False)
    rng = random.Random(1)
    start = [t for t in spec.templates if t.intent == "WasherStart"]
    seen = {}
    for _ in range(400):
        example = sampler.sample(rng.choice(start), rng)
        for span in example.spans:
            seen.setdefault(span.slot, set()).add((example.text[span.start:span.end], span.value))
    assert ("woollen", "wool") in seen["program"] and ("gym clothes", "sport") in seen["program"]
    assert {value for _, value in seen["temperature"]} == {str(t) for t in range(20, 91, 10)}


# ---- a small spec trained, then answered alike everywhere ----

@pytest.fixture(scope="module")
def washer():
    from squeezeedge.models.spec_dataset import build_spec_dataset
    from squeezeedge.models.train import TrainOptions, train_spec

    spec = load_spec([WASHER])
    model = train_spec(spec, TrainOptions(config=TINY, epochs=12, progress=False), False, SAMPLES_PER_TEMPLATE).model
    return build_spec_dataset(spec, seed=0, samples_per_template=SAMPLES_PER_TEMPLATE), model


def test_the_model_knows_exactly_the_spec_and_carries_its_inventory(washer, tmp_path):
    from squeezeedge.models.model_file import IntModel

    _, model = washer
    path = tmp_path / "washer.semodel"
    model.save(path)
    loaded = IntModel.load(path)
    assert loaded.language == "en"
    assert sorted(i for i in loaded.intents if i) == sorted(load_spec([WASHER]).intents)
    assert {"program", "temperature"} <= set(loaded.slots)
    # the list's in → out pairs are data of the model, read by every engine alike
    assert loaded.value_table["program"]["woollen"] == "wool"
    assert loaded.value_table["program"]["gym clothes"] == "sport"


def test_start_a_wool_wash_at_30_degrees(washer):
    from squeezeedge.models.engine import ReferenceEngine

    _, model = washer
    answer = classify_line(ReferenceEngine(model), b"start a woollen wash at 30 degrees")
    assert answer["intent"] == "WasherStart"
    assert answer["slots"] == {"program": "wool", "temperature": "30"}


def _held_out_texts(dataset, n: int = 150) -> list[str]:
    texts = [e.text for e in dataset.test + dataset.dev]
    return texts[:n] + ["start a wool wash at 30 degrees", "turn on the kitchen light", "pause", "Wäsche!"]


def test_reference_c_and_emulator_answer_alike(washer):
    from squeezeedge.emulator import build_emulator, prepare_package
    from squeezeedge.engines import open_engine
    from squeezeedge.models.engine import ReferenceEngine

    from test_emulator import run_stdio

    dataset, model = washer
    reference, c = ReferenceEngine(model), open_engine("c", model)
    texts = _held_out_texts(dataset)
    want = [classify_line(reference, t.encode()) for t in texts]
    assert [classify_line(c, t.encode()) for t in texts] == want
    assert sum(a.get("intent") == "WasherStart" for a in want) >= 5
    replies = run_stdio(build_emulator(prepare_package(model)), "\n".join(texts).encode() + b"\n")
    assert [{k: r.get(k) for k in w} for r, w in zip(replies, want)] == want


@pytest.mark.skipif(not boards.toolchain_available("rv32-virt") or not boards.qemu_available("rv32-virt"),
                    reason="needs riscv64-unknown-elf-gcc (+ picolibc) and qemu-system-riscv32")
def test_rv32_firmware_in_qemu_answers_like_the_reference(washer, tmp_path_factory):
    from squeezeedge.models.engine import ReferenceEngine

    dataset, model = washer
    firmware = boards.build_board("rv32-virt", model=model, out_dir=tmp_path_factory.mktemp("washer-rv32"))
    for device in fw.qemu_board_device(firmware.elf, "rv32-virt"):
        assert fw.mismatches(device, ReferenceEngine(model), _held_out_texts(dataset, 60)) == []


def test_micropython_module_answers_like_the_reference(washer):
    """`import squeezeedge` on MicroPython's unix port (the x64 native module of this model)."""
    from squeezeedge.micropython.engine import MicroPythonEngine
    from squeezeedge.models.engine import ReferenceEngine

    dataset, model = washer
    with MicroPythonEngine(model) as engine:
        assert fw.mismatches(engine, ReferenceEngine(model), _held_out_texts(dataset, 100)) == []


# ---- measuring a model on the maker's own sentences ----

def test_eval_on_the_specs_held_out_sentences_and_on_a_tsv_file(washer, tmp_path):
    _, model = washer
    path = tmp_path / "washer.semodel"
    model.save(path)
    tsv = tmp_path / "mine.tsv"
    tsv.write_text("start a wool wash at 30 degrees\tWasherStart\t{\"program\": \"wool\", \"temperature\": \"30\"}\n"
                   "how long until it is done\tWasherTimeLeft\n"
                   "what is the weather tomorrow\tnull\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "squeezeedge", "eval", "--model", str(path), "--sentences", str(WASHER),
                        "--tsv", str(tsv), "--json"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    assert set(metrics) == {"test", "novel", "dev", "mine.tsv"}
    mine = metrics["mine.tsv"]["reference"]
    assert (mine["n_in_scope"], mine["n_out_of_scope"]) == (2, 1)
    assert metrics["test"]["reference"]["n_in_scope"] > 50 and metrics["test"]["reference"]["n_out_of_scope"] > 50

    tsv.write_text("start a wool wash\tWasherBegin\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "squeezeedge", "eval", "--model", str(path), "--tsv", str(tsv)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "expects intent 'WasherBegin', which the model does not know" in r.stderr


# ---- a language other than English ----

GERMAN = """\
language: "de"
intents:
  OfenVorheizen:
    data:
      - sentences:
          - "(heize|heiz) [den ofen] auf {temperatur} grad vor"
          - "ofen auf {temperatur} grad [vorheizen|aufheizen]"
          - "[bitte] (den ofen|ofen) (vorheizen|aufheizen) [auf {temperatur} grad]"
          - "mach den ofen (heiß|warm) [auf {temperatur} grad]"
  OfenAus:
    data:
      - sentences:
          - "(schalte|schalt|mach) den ofen aus"
          - "(schalte|mach) [die] {platte} aus"
          - "{platte} (aus|ausschalten) [bitte]"
          - "ofen aus [bitte]"
          - "(beende|stoppe) das (backen|garen)"
          - "(schluss|fertig) mit dem (backen|garen)"
  OfenRestzeit:
    data:
      - sentences:
          - "wie lange (noch|dauert es noch)"
          - "wann ist (der kuchen|das essen|es) fertig"
          - "wie viel zeit (bleibt|ist übrig)"
          - "(ist|wird) (der kuchen|das essen) bald fertig"
lists:
  platte:
    values:
      - in: "(große|grosse) platte"
        out: "gross"
      - in: "kleine platte"
        out: "klein"
      - in: "(grill|grillfläche)"
        out: "grill"
  temperatur:
    range:
      from: 50
      to: 250
      step: 10
"""


def test_a_german_spec_answers_alike_on_reference_c_and_emulator(tmp_path):
    from squeezeedge.emulator import build_emulator, prepare_package
    from squeezeedge.engines import open_engine
    from squeezeedge.models.engine import ReferenceEngine, tokenizer_for
    from squeezeedge.models.spec_dataset import build_spec_dataset
    from squeezeedge.models.train import TrainOptions, train_spec

    from test_emulator import run_stdio

    spec = load_spec([write(tmp_path, GERMAN, "ofen.yaml")])
    dataset = build_spec_dataset(spec, seed=0, samples_per_template=SAMPLES_PER_TEMPLATE)
    assert all(e.intent is None for e in dataset.train if "licht" in e.text.lower())  # HA's German is out of scope
    model = train_spec(spec, TrainOptions(config=TINY, epochs=8, progress=False), False, SAMPLES_PER_TEMPLATE).model
    assert model.language == "de"
    assert model.value_table["platte"]["grillfläche"] == "grill"
    tokens = tokenizer_for(model).encode("Wie viel Zeit ist ÜBRIG, heiß?")
    assert 1 not in tokens.ids, "umlauts and ß are in the vocabulary, upper or lower case"
    reference, c = ReferenceEngine(model), open_engine("c", model)
    texts = [e.text for e in dataset.test + dataset.dev][:120] + ["Heize den Ofen auf 180 Grad vor",
                                                                  "wie viel Zeit ist übrig", "ÜBRIG",
                                                                  "Schalte die GROSSE PLATTE aus", "mach GRILLFLÄCHE aus"]
    want = [classify_line(reference, t.encode()) for t in texts]
    assert [classify_line(c, t.encode()) for t in texts] == want
    replies = run_stdio(build_emulator(prepare_package(model)), "\n".join(texts).encode() + b"\n")
    assert [{k: r.get(k) for k in w} for r, w in zip(replies, want)] == want
