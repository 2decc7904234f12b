"""Decoding integer logits into the answer: spans over whole words, values, confidence."""

import numpy as np

from squeezeedge.models.decode import decode_spans, decode_slots
from squeezeedge.models.labels import LabelSpace, normalize_phrase, token_tags
from squeezeedge.models.examples import Example, Span

O, B_AREA, I_AREA, B_NAME, I_NAME = 0, 1, 2, 3, 4


def test_b_starts_i_continues_o_ends():
    tags = [0, B_AREA, I_AREA, O, B_NAME]
    assert decode_spans(tags, [False] * 5) == [(1, 2, 0), (4, 4, 1)]


def test_an_i_without_its_b_starts_a_span():
    assert decode_spans([0, O, I_NAME, I_NAME], [False] * 4) == [(2, 3, 1)]
    assert decode_spans([0, B_AREA, I_NAME], [False] * 3) == [(1, 1, 0), (2, 2, 1)]


def test_continuation_pieces_follow_their_word_whatever_their_own_tag():
    # "down ##stairs lights": the word "downstairs" is one span even if ##stairs says O
    assert decode_spans([0, B_AREA, O, O], [False, False, True, False]) == [(1, 2, 0)]
    # a continuation never starts a span on its own
    assert decode_spans([0, O, B_AREA], [False, False, True]) == []


def test_training_tags_only_the_first_piece_of_each_word():
    labels = LabelSpace((None, "HassTurnOn"), ("area",))
    ex = Example("turn on downstairs", "HassTurnOn", (Span(8, 18, "area", "downstairs"),))
    offsets = [(0, 0), (0, 4), (5, 7), (8, 12), (12, 18)]
    cont = [False, False, False, False, True]
    assert token_tags(ex, offsets, cont, labels) == [-100, 0, 0, 1, -100]


def test_phrases_are_lowercased_and_spaces_collapsed_but_punctuation_kept():
    assert normalize_phrase(b"Living   Room") == "living room"
    assert normalize_phrase(b"21.5") == "21.5"
    assert normalize_phrase(b"kid's\troom") == "kid's room"
    assert normalize_phrase("KÜCHE  Öl".encode()) == "küche öl"  # lowercased as the tokenizer does


def _model(intent_slots=None):
    from squeezeedge.models.config import ModelConfig
    from squeezeedge.models.model_file import IntModel

    vocab = ["[PAD]", "[UNK]", "[CLS]", "garage", "doors", "big", "##gest"]
    return IntModel(ModelConfig(vocab_size=len(vocab)), vocab, [None, "HassTurnOn"], ["device_class", "name"], {},
                    0, value_table={"device_class": {"garage doors": "garage"}}, intent_slots=intent_slots or {})


_Model = _model()


def _logits(tags, n_tags=5):
    out = np.full((len(tags), n_tags), -50)
    for row, tag in enumerate(tags):
        out[row, tag] = 50
    return out


def test_values_come_from_the_value_table_or_the_text_itself():
    data = b"open the Garage Doors"
    ids = [2, 3, 4]
    offsets = [(0, 0), (9, 15), (16, 21)]
    assert decode_slots(_Model, "HassTurnOn", data, ids, offsets, _logits([0, 1, 2])) == {"device_class": "garage"}
    assert decode_slots(_Model, "HassTurnOn", data, ids, offsets, _logits([0, 3, 4])) == {"name": "garage doors"}


def test_the_first_mention_of_a_slot_wins():
    data = b"big doors garage"
    ids = [2, 5, 4, 3]
    offsets = [(0, 0), (0, 3), (4, 9), (10, 16)]
    assert decode_slots(_Model, "HassTurnOn", data, ids, offsets, _logits([0, 3, 0, 3])) == {"name": "big"}


def test_a_word_only_takes_slots_of_the_answered_intent():
    data = b"open the garage doors"
    ids, offsets = [2, 3, 4], [(0, 0), (9, 15), (16, 21)]
    logits = _logits([0, 1, 2])
    logits[1, 3] = logits[2, 4] = 40  # name is the runner-up everywhere
    only_names = _model({"HassTurnOn": ["name"]})
    assert decode_slots(only_names, "HassTurnOn", data, ids, offsets, logits) == {"name": "garage doors"}
    assert decode_slots(_model(), "HassTurnOn", data, ids, offsets, logits) == {"device_class": "garage"}


def test_decoding_keeps_bio_consistent_an_i_never_follows_another_slot():
    # word 1 says B-name, word 2 says I-area: greedy would split "living | room" into two slots
    data = b"big doors"
    ids, offsets = [2, 5, 4], [(0, 0), (0, 3), (4, 9)]
    logits = np.full((3, 5), -50)
    logits[1, B_NAME], logits[1, B_AREA] = 40, 30
    logits[2, I_AREA], logits[2, I_NAME] = 45, 20
    # B-area I-area = 75 beats B-name I-name = 60 and the inconsistent B-name I-area
    assert decode_slots(_Model, "HassTurnOn", data, ids, offsets, logits) == {"device_class": "big doors"}


def test_a_slot_never_starts_again_right_after_itself():
    # "eggs and bread": the model is surer that "bread" starts an item than that it continues
    # one; a second span right after the first would be dropped (first mention wins)
    data = b"big doors"
    ids, offsets = [2, 5, 4], [(0, 0), (0, 3), (4, 9)]
    logits = np.full((3, 5), -50)
    logits[1, B_NAME] = 50
    logits[2, B_NAME], logits[2, I_NAME] = 45, 40
    assert decode_slots(_Model, "HassTurnOn", data, ids, offsets, logits) == {"name": "big doors"}
    logits[2, B_AREA] = 41  # another slot may start there (B_AREA is device_class's B here)
    assert decode_slots(_Model, "HassTurnOn", data, ids, offsets, logits) == {"name": "big", "device_class": "doors"}


def _volume_model():
    from squeezeedge.models.config import ModelConfig
    from squeezeedge.models.model_file import IntModel

    vocab = ["[PAD]", "[UNK]", "[CLS]", "down", "up", "by", "three", "3"]
    return IntModel(ModelConfig(vocab_size=len(vocab)), vocab, [None, "HassSetVolumeRelative"],
                    ["-volume_step", "volume_step"], {}, 0,
                    value_table={"-volume_step": {"three": "3"}, "volume_step": {"three": "3"}})


def test_a_decrease_comes_back_negative_under_home_assistants_slot_name():
    # tags: O=0, B--volume_step=1, I=2, B-volume_step=3, I=4
    data, ids, offsets = b"down by three", [2, 3, 5, 6], [(0, 0), (0, 4), (5, 7), (8, 13)]
    assert decode_slots(_volume_model(), "HassSetVolumeRelative", data, ids, offsets,
                        _logits([0, 0, 0, 1])) == {"volume_step": "-3"}
    data, ids, offsets = b"up by 3", [2, 4, 5, 7], [(0, 0), (0, 2), (3, 5), (6, 7)]
    assert decode_slots(_volume_model(), "HassSetVolumeRelative", data, ids, offsets,
                        _logits([0, 0, 0, 3])) == {"volume_step": "3"}
    assert decode_slots(_volume_model(), "HassSetVolumeRelative", data, ids, offsets,
                        _logits([0, 0, 0, 1])) == {"volume_step": "-3"}


def test_a_slot_and_its_negated_twin_are_one_slot_the_first_mention_wins():
    data, ids, offsets = b"up 3 down 3", [2, 4, 7, 3, 7], [(0, 0), (0, 2), (3, 4), (5, 9), (10, 11)]
    assert decode_slots(_volume_model(), "HassSetVolumeRelative", data, ids, offsets,
                        _logits([0, 0, 3, 0, 1])) == {"volume_step": "3"}


def test_training_labels_a_negative_number_as_the_negated_slot_with_the_plain_value():
    from squeezeedge.models.labels import negated_labels

    down = Example("turn the volume down by 3", "HassSetVolumeRelative", (Span(24, 25, "volume_step", "-3"),))
    assert negated_labels(down).spans == (Span(24, 25, "-volume_step", "3"),)
    words = Example("volume down ninety eight", "HassSetVolumeRelative", (Span(12, 24, "volume_step", "-98"),))
    assert negated_labels(words).spans == (Span(12, 24, "-volume_step", "98"),)
    for unchanged in (Example("volume up by 3", "HassSetVolumeRelative", (Span(13, 14, "volume_step", "3"),)),
                      Example("turn the volume down", "HassSetVolumeRelative", (Span(16, 20, "volume_step", "down"),)),
                      Example("set it to -3", "HassClimateSetTemperature", (Span(10, 12, "temperature", "-3"),))):
        assert negated_labels(unchanged) is unchanged


def test_a_device_told_no_names_uses_its_own_out_of_scope_threshold(tmp_path):
    import dataclasses

    from squeezeedge.models import intmath as im
    from squeezeedge.models.engine import DEFAULT_MODEL, ReferenceEngine
    from squeezeedge.models.gazetteer import HomeNames
    from squeezeedge.models.model_file import IntModel

    m = dataclasses.replace(IntModel.load(DEFAULT_MODEL), oos_threshold=im.CONF_ONE + 1, oos_threshold_without_names=0)
    text = b"turn on the lights in the kitchen"
    home = HomeNames.from_lists(areas=["kitchen"])
    assert ReferenceEngine(m).classify(text).intent == "HassTurnOn"
    assert ReferenceEngine(m, HomeNames()).classify(text).intent == "HassTurnOn"  # an empty list is no names
    assert ReferenceEngine(m, home).classify(text).intent is None  # every answer is below the names' threshold
    m.save(tmp_path / "m.semodel")
    assert IntModel.load(tmp_path / "m.semodel").threshold(False) == 0
    older = dataclasses.replace(m, oos_threshold_without_names=None)  # files from before: one threshold
    assert older.threshold(False) == older.threshold(True) == im.CONF_ONE + 1
