"""The tokenizer's rules (TOKENIZER.md), one behaviour per test."""

import random

import pytest

from squeezeedge.models.tokenizer import (CLS_ID, MAX_WORD_BYTES, UNK_ID, WordPieceTokenizer, pre_tokenize,
                                          train_vocab)

BASE = ["[PAD]", "[UNK]", "[CLS]"] + [chr(c) for c in range(0x21, 0x7F) if not 0x41 <= c <= 0x5A] + \
    ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
VOCAB = BASE + ["turn", "on", "the", "kitchen", "light", "##s", "un", "##lock", "unlock", "lamp"]


@pytest.fixture
def tok():
    return WordPieceTokenizer(VOCAB, max_len=16)


def words(data: bytes):
    return [data[s:e] for s, e in pre_tokenize(data)]


def test_ascii_letters_are_lowercased(tok):
    assert tok.tokens("Turn ON the KITCHEN Lights") == ["[CLS]", "turn", "on", "the", "kitchen", "light", "##s"]


def test_each_digit_and_punctuation_byte_is_a_word():
    assert words(b"set 21.5% now!") == [b"set", b"2", b"1", b".", b"5", b"%", b"now", b"!"]


def test_whitespace_and_control_bytes_separate_words():
    assert words(b"a\tb\nc\x00d\x07e\x7ff  g") == [b"a", b"b", b"c", b"d", b"e", b"f", b"g"]


def test_non_ascii_bytes_belong_to_words_and_make_them_unknown(tok):
    enc = tok.encode("caf\u00e9 lamp \U0001F4A1")
    assert [tok.vocab[i] for i in enc.ids] == ["[CLS]", "[UNK]", "lamp", "[UNK]"]
    assert enc.offsets[1] == (0, 5) and enc.offsets[3] == (11, 15)


def test_invalid_utf8_is_tokenized_not_rejected(tok):
    enc = tok.encode(b"\xff\xfe lamp \xc3")
    assert [tok.vocab[i] for i in enc.ids] == ["[CLS]", "[UNK]", "lamp", "[UNK]"]


def test_greedy_longest_match_first(tok):
    assert tok.tokens("unlock") == ["[CLS]", "unlock"]
    assert tok.tokens("unlocks") == ["[CLS]", "unlock", "##s"]


def test_unseen_ascii_word_falls_back_to_letters_never_unk(tok):
    assert tok.tokens("zq") == ["[CLS]", "z", "##q"]


def test_overlong_word_is_one_unknown(tok):
    enc = tok.encode(b"a" * (MAX_WORD_BYTES + 1) + b" lamp")
    assert enc.ids[1] == UNK_ID and enc.offsets[1] == (0, MAX_WORD_BYTES + 1)
    assert tok.vocab[enc.ids[2]] == "lamp"
    assert tok.encode(b"a" * MAX_WORD_BYTES).ids[1] != UNK_ID


def test_offsets_point_at_the_original_bytes(tok):
    data = b"  Turn ON lamps"
    enc = tok.encode(data)
    assert [data[s:e] for s, e in enc.offsets[1:]] == [b"Turn", b"ON", b"lamp", b"s"]


def test_sequence_starts_with_cls_and_is_truncated_at_max_len(tok):
    enc = tok.encode(" ".join(["lamp"] * 40))
    assert enc.ids[0] == CLS_ID and len(enc) == 16 and enc.truncated
    assert not tok.encode("lamp").truncated


def test_empty_input_is_just_cls(tok):
    assert tok.encode(b"").ids == (CLS_ID,)
    assert tok.encode(b" \t\r\n").ids == (CLS_ID,)


def test_vocabulary_training_is_deterministic_and_keeps_the_alphabet():
    texts = ["turn on the kitchen lights", "turn off the living room lamp", "set a 10 minute timer"] * 30
    a, b = train_vocab(texts, 160), train_vocab(list(reversed(texts)), 160)
    assert a == b
    assert a[:len(BASE)] == BASE
    assert "kitchen" in a and len(a) <= 160


def test_vocabulary_must_start_with_special_tokens():
    with pytest.raises(ValueError):
        WordPieceTokenizer(["a", "b"])


# ---- lowercasing beyond ASCII (models/case_fold.py, TOKENIZER.md §2) ----

def test_the_fold_table_is_unicodes_lowercase_for_every_two_byte_letter():
    from squeezeedge.models.case_fold import LOWER

    def same_length_lowercase(cp: int) -> bool:  # so every byte offset still holds
        low = chr(cp).lower()
        return len(low) == 1 and low != chr(cp) and len(low.encode()) == len(chr(cp).encode())

    assert LOWER == {cp: ord(chr(cp).lower()) for cp in range(0x800) if same_length_lowercase(cp)}


def test_folding_keeps_length_accents_and_everything_it_does_not_know():
    from squeezeedge.models.case_fold import fold_case

    assert fold_case("KÜCHE Éte ΣΑΣ ЖУК Ÿ".encode()) == "küche éte σασ жук ÿ".encode()
    assert fold_case("é ß € 日本 İ".encode()) == "é ß € 日本 İ".encode()
    assert fold_case(b"\xc3 \x9c \xc3\x9c\xc3") == b"\xc3 \x9c \xc3\xbc\xc3"  # cut sequences stay
    rng = random.Random(5)
    for _ in range(500):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(50)))
        assert len(fold_case(data)) == len(data)


def test_the_firmwares_fold_table_is_generated_from_the_python_one():
    from pathlib import Path

    from squeezeedge.models.case_fold import c_header

    header = Path(__file__).resolve().parents[1] / "firmware" / "core" / "se_case_table.h"
    assert header.read_text() == c_header(), "regenerate: python -m squeezeedge.models.case_fold > " + str(header)
