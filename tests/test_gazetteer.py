"""The home's names: listed names become one placeholder token (models/TOKENIZER.md §4)."""

import json

import pytest

from squeezeedge.models.gazetteer import PLACEHOLDERS, Gazetteer, HomeNames, NamesError, supports_names
from squeezeedge.models.tokenizer import WordPieceTokenizer, train_vocab

TEXTS = ["turn on the living room tv", "timer in the front yard", "open the garden gate",
         "the dens lights", "set the den to 20", "start the roomba", "frontyard"] * 3


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer(train_vocab(TEXTS, 160, reserved=PLACEHOLDERS), max_len=32)


def rewrite(tokenizer, names: HomeNames, text: str) -> list[tuple[str, str]]:
    enc = Gazetteer(tokenizer, names).apply(tokenizer.encode(text))
    data = text.encode()
    return [(tokenizer.vocab[i], data[a:b].decode()) for i, (a, b) in zip(enc.ids[1:], enc.offsets[1:])]


def test_a_listed_name_becomes_one_placeholder_covering_its_words(tokenizer):
    home = HomeNames.from_lists(areas=["front yard"])
    out = rewrite(tokenizer, home, "timer in the front yard")
    assert out[-1] == ("[area]", "front yard")
    assert out[:-1] == rewrite(tokenizer, home, "timer in the")  # the other tokens are untouched


def test_the_longest_listed_name_wins(tokenizer):
    home = HomeNames.from_lists(areas=["living room"], names={"media_player": ["living room tv"]})
    assert rewrite(tokenizer, home, "turn on the living room tv")[-1] == ("[name:media_player]", "living room tv")
    assert rewrite(tokenizer, home, "turn on the living room")[-1] == ("[area]", "living room")


def test_names_match_whole_words_only(tokenizer):
    home = HomeNames.from_lists(areas=["den", "front"])
    assert ("[area]", "den") in rewrite(tokenizer, home, "set the den to 20")
    assert all(piece != "[area]" for piece, _ in rewrite(tokenizer, home, "the dens lights"))
    assert all(piece != "[area]" for piece, _ in rewrite(tokenizer, home, "frontyard"))


def test_names_are_matched_without_case_and_punctuation_splits_them(tokenizer):
    home = HomeNames.from_lists(areas=["front yard"])
    assert rewrite(tokenizer, home, "FRONT  Yard, please")[0] == ("[area]", "FRONT  Yard")


def test_a_name_listed_twice_keeps_its_first_kind(tokenizer):
    home = HomeNames.from_lists(areas=["den"], floors=["den"])
    assert Gazetteer(tokenizer, home).__len__() == 1
    assert ("[area]", "den") in rewrite(tokenizer, home, "set the den to 20")


def test_an_unknown_domain_uses_the_generic_name_placeholder(tokenizer):
    home = HomeNames.from_lists(names={"camera": ["front yard"], "vacuum": ["roomba"]})
    assert rewrite(tokenizer, home, "timer in the front yard")[-1] == ("[name]", "front yard")
    assert rewrite(tokenizer, home, "start the roomba")[-1] == ("[name:vacuum]", "roomba")


@pytest.mark.parametrize("text, why", [("", "no words"), ("   ", "no words"), ("café", "cannot read"),
                                       ("lamp " * 40, "too long")])
def test_unusable_names_are_refused_with_the_reason(tokenizer, text, why):
    with pytest.raises(NamesError, match=why):
        Gazetteer(tokenizer, HomeNames.from_lists(areas=[text]))


def test_a_model_without_placeholders_cannot_take_names():
    old = WordPieceTokenizer(train_vocab(TEXTS, 120), max_len=32)
    assert not supports_names(old.vocab)
    with pytest.raises(NamesError, match="retrain"):
        Gazetteer(old, HomeNames.from_lists(areas=["den"]))


def test_no_names_change_nothing(tokenizer):
    enc = tokenizer.encode("timer in the front yard")
    assert Gazetteer(tokenizer, HomeNames()).apply(enc) == enc


def test_names_files_round_trip_and_bad_ones_say_what_is_wrong(tmp_path):
    home = HomeNames.from_lists(["kitchen"], ["upstairs"], {"light": ["desk lamp"], "": ["thing"]})
    path = tmp_path / "home.json"
    path.write_text(json.dumps(home.to_json()))
    assert HomeNames.load(path) == home
    for bad, why in [("[1, 2]", "one JSON object"), ('{"rooms": []}', "unknown key"),
                     ('{"area": "kitchen"}', "lists of strings"), ("{", "not valid JSON")]:
        path.write_text(bad)
        with pytest.raises(NamesError, match=why):
            HomeNames.load(path)
    with pytest.raises(NamesError, match="cannot read"):
        HomeNames.load(tmp_path / "missing.json")
