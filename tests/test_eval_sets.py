"""The hand-written evaluation sets stay valid and are never trained on."""

import subprocess
import sys
from pathlib import Path

from squeezeedge.models.dataset import text_key

DATA = Path(__file__).resolve().parents[1] / "models" / "data"


def test_evaluation_sets_pass_their_checker():
    proc = subprocess.run([sys.executable, str(DATA / "check_eval_sets.py")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_the_people_set_passes_its_checker():
    proc = subprocess.run([sys.executable, str(DATA / "check_people_set.py")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_the_people_set_is_scored_without_sentences_training_has(tiny_dataset):
    from squeezeedge.models.evaluate import load_people, people_set_present, split_records

    assert people_set_present()
    train = {text_key(e.text) for e in tiny_dataset.train}
    everything = load_people()
    kept = split_records("people", tiny_dataset)
    assert kept == [r for r in everything if text_key(r[0]) not in train]
    assert sum(r[1] is None for r in kept) >= 500 and sum(r[1] is not None for r in kept) >= 1500


def test_no_held_out_sentence_is_in_the_training_split(tiny_dataset):
    train = {text_key(e.text) for e in tiny_dataset.train}
    for split in (tiny_dataset.dev, tiny_dataset.test):
        assert not [e.text for e in split if text_key(e.text) in train]


def test_diagnostics_separate_typing_errors_from_missed_spans():
    from squeezeedge.models.evaluate import merge_entity_types

    # a span found but typed wrong counts once the types merge
    assert merge_entity_types({"floor": "sauna", "domain": "light"}) == merge_entity_types({"area": "sauna",
                                                                                             "domain": "light"})
    assert merge_entity_types({"floor": "sauna"}) != merge_entity_types({"area": "sauna ii"})


def test_hand_written_sets_are_scored_without_the_sentences_training_has(tiny_dataset):
    """A paraphrase that equals a training sentence (case and punctuation aside) is not held out:
    split_records drops it, as build_dataset drops such dev and test sentences."""
    from squeezeedge.models.evaluate import load_paraphrases, split_records

    train = {text_key(e.text) for e in tiny_dataset.train}
    all_of_them = load_paraphrases()
    kept = split_records("paraphrase", tiny_dataset)
    assert kept == [r for r in all_of_them if text_key(r[0]) not in train]
    assert len(kept) < len(all_of_them)  # some do equal training sentences: the reason for the rule
    assert [r[0] for r in split_records("novel", tiny_dataset)] == [e.text for e in tiny_dataset.novel]
