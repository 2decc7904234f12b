"""Byte-level lowercase WordPiece, specified in TOKENIZER.md so that C can match it exactly.

Everything works on the UTF-8 *bytes* of the input, never on decoded characters: the device
receives bytes, invalid UTF-8 included, and must tokenize them exactly as this module does.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections import Counter, defaultdict
from typing import Iterable, Sequence

from .case_fold import fold_case

PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
SPECIAL_TOKENS = (PAD, UNK, CLS)
PAD_ID, UNK_ID, CLS_ID = 0, 1, 2
CONTINUATION = "##"
# A word longer than this many bytes becomes one [UNK] (BERT's max_input_chars_per_word).
MAX_WORD_BYTES = 100

_SPACE, _PUNCT, _DIGIT, _WORD = 0, 1, 2, 3


def _byte_class(b: int) -> int:
    if b <= 0x20 or b == 0x7F:  # whitespace and every other control byte separate words
        return _SPACE
    if 0x30 <= b <= 0x39:
        return _DIGIT
    if b < 0x80 and not (0x61 <= b <= 0x7A or 0x41 <= b <= 0x5A):
        return _PUNCT
    return _WORD  # ASCII letters and every byte >= 0x80


_CLASS = bytes(_byte_class(b) for b in range(256))


def pre_tokenize(data: bytes) -> list[tuple[int, int]]:
    """Split ``data`` into words; return their (start, end) byte offsets.

    A word is a maximal run of letters / non-ASCII bytes; each digit and each ASCII
    punctuation byte is a word of its own; whitespace and control bytes separate words.
    """
    words: list[tuple[int, int]] = []
    start = -1
    for i, b in enumerate(data):
        cls = _CLASS[b]
        if cls == _WORD:
            if start < 0:
                start = i
            continue
        if start >= 0:
            words.append((start, i))
            start = -1
        if cls != _SPACE:
            words.append((i, i + 1))
    if start >= 0:
        words.append((start, len(data)))
    return words


def normalize_word(word: bytes) -> str:
    """Lowercased (:func:`.case_fold.fold_case`), one character per byte (latin-1): vocabulary
    pieces are byte strings written that way, so a piece may also be part of a character."""
    return fold_case(word).decode("latin-1")


@dataclass(frozen=True)
class Encoding:
    """Token ids (starting with [CLS]) and each token's (start, end) byte offsets in the input."""

    ids: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]
    truncated: bool

    def __len__(self) -> int:
        return len(self.ids)


class WordPieceTokenizer:
    """Greedy longest-match-first WordPiece over a fixed vocabulary (list index = token id)."""

    def __init__(self, vocab: Sequence[str], max_len: int = 32):
        if tuple(vocab[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"vocabulary must start with {SPECIAL_TOKENS}")
        if max_len < 2:
            raise ValueError("max_len must leave room for [CLS] and one token")
        self.vocab = list(vocab)
        self.max_len = max_len
        self._ids = {piece: i for i, piece in enumerate(self.vocab)}
        self._longest = max(len(p) for p in self.vocab)
        self._continuation = [p.startswith(CONTINUATION) for p in self.vocab]

    def __len__(self) -> int:
        return len(self.vocab)

    def is_continuation(self, token_id: int) -> bool:
        """True for "##" pieces: they continue the word of the token before them."""
        return self._continuation[token_id]

    def word_pieces(self, word: bytes) -> list[tuple[int, int, int]]:
        """(id, start, end) of the pieces of one word, offsets relative to the word."""
        if len(word) > MAX_WORD_BYTES:
            return [(UNK_ID, 0, len(word))]
        text = normalize_word(word)
        pieces = []
        start = 0
        while start < len(text):
            prefix = CONTINUATION if start else ""
            for end in range(min(len(text), start + self._longest), start, -1):
                piece_id = self._ids.get(prefix + text[start:end])
                if piece_id is not None:
                    pieces.append((piece_id, start, end))
                    start = end
                    break
            else:
                return [(UNK_ID, 0, len(word))]
        return pieces

    def encode(self, data: bytes | str) -> Encoding:
        if isinstance(data, str):
            data = data.encode("utf-8")
        ids, offsets = [CLS_ID], [(0, 0)]
        truncated = False
        for w_start, w_end in pre_tokenize(data):
            for piece_id, p_start, p_end in self.word_pieces(data[w_start:w_end]):
                if len(ids) == self.max_len:
                    truncated = True
                    break
                ids.append(piece_id)
                offsets.append((w_start + p_start, w_start + p_end))
            if truncated:
                break
        return Encoding(tuple(ids), tuple(offsets), truncated)

    def tokens(self, data: bytes | str) -> list[str]:
        return [self.vocab[i] for i in self.encode(data).ids]


_NUMBER_SEPARATORS = b".,"


def _is_digit(b: int) -> bool:
    return 0x30 <= b <= 0x39


def word_continuation(data: bytes, ids: Sequence[int], offsets: Sequence[tuple[int, int]],
                      is_continuation) -> list[bool]:
    """For each token: does it continue the word of the token before it (FORMAT.md "Decoding")?

    A "##" piece does, and so does every part of a number written without spaces: a digit
    right after a digit ("23" is the tokens 2 and 3), and one "." or "," right between two
    digits with the digit after it ("21.5"). The tokenizer keeps digits apart (a vocabulary
    cannot hold every number), but a slot's value must never lose digits: a word is tagged
    as a whole, so a number is. Defined on the input bytes, so that a home-name placeholder
    (whose offsets cover the whole name) follows the same rule. [CLS] (token 0) continues
    nothing.
    """
    n = len(ids)
    out = [False] * n

    def adjacent(pos: int) -> bool:  # token pos starts where token pos-1 ends
        return pos >= 2 and offsets[pos][0] == offsets[pos - 1][1]

    def ends_with_digit(pos: int) -> bool:
        return _is_digit(data[offsets[pos][1] - 1])

    def is_separator(pos: int) -> bool:
        start, end = offsets[pos]
        return end - start == 1 and data[start] in _NUMBER_SEPARATORS

    for pos in range(1, n):
        if is_continuation(ids[pos]):
            out[pos] = True
        elif not adjacent(pos):
            continue
        elif _is_digit(data[offsets[pos][0]]):
            out[pos] = ends_with_digit(pos - 1) or (is_separator(pos - 1) and out[pos - 1])
        elif is_separator(pos):
            out[pos] = (ends_with_digit(pos - 1) and pos + 1 < n and offsets[pos + 1][0] == offsets[pos][1]
                        and _is_digit(data[offsets[pos + 1][0]]))
    return out


def training_words(texts: Iterable[str]) -> Iterable[str]:
    """The words the vocabulary is learned from: pre-tokenized and normalized as the tokenizer
    does it (:func:`normalize_word`), so "Küche" and "küche" are learned as one word."""
    for text in texts:
        data = text.encode("utf-8")
        for start, end in pre_tokenize(data):
            yield normalize_word(data[start:end])


def train_vocab(texts: Iterable[str], vocab_size: int = 1024, reserved: Sequence[str] = ()) -> list[str]:
    """Learn a WordPiece vocabulary by byte-pair merges over our own pre-tokenized words.

    Deterministic (ties go to the alphabetically first pair), which Hugging Face's trainer is
    not: the same data must give the same vocabulary, or a model cannot be reproduced from a
    seed. Every ASCII letter, digit and punctuation byte is in the vocabulary, alone and (for
    letters) as a continuation, so no ASCII word ever becomes [UNK]. ``reserved`` entries
    (tokens the tokenizer never produces: the home-name placeholders) follow the alphabet.
    """
    alphabet = [chr(c) for c in range(0x21, 0x7F) if not 0x41 <= c <= 0x5A]
    vocab = list(SPECIAL_TOKENS) + alphabet + [CONTINUATION + c for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab += [r for r in reserved if r not in vocab]
    if vocab_size < len(vocab) + 16:
        raise ValueError(f"vocab_size must be at least {len(vocab) + 16}")
    known = set(vocab)
    counts = Counter(training_words(texts))
    words = [[w[0]] + [CONTINUATION + c for c in w[1:]] for w in sorted(counts)]
    freq = [counts[w] for w in sorted(counts)]
    for symbols in words:  # characters outside the base alphabet (rare) still get pieces
        for sym in symbols:
            if sym not in known:
                known.add(sym)
                vocab.append(sym)
    pairs: Counter = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pairs[pair] += freq[i]
            where[pair].add(i)
    while len(vocab) < vocab_size and pairs:
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merged = best[0] + best[1][len(CONTINUATION):]
        for i in sorted(where.pop(best, ())):
            old = words[i]
            for pair in zip(old, old[1:]):
                pairs[pair] -= freq[i]
                if pairs[pair] <= 0:
                    del pairs[pair]
            new, j = [], 0
            while j < len(old):
                if j + 1 < len(old) and (old[j], old[j + 1]) == best:
                    new.append(merged)
                    j += 2
                else:
                    new.append(old[j])
                    j += 1
            words[i] = new
            for pair in zip(new, new[1:]):
                pairs[pair] += freq[i]
                where[pair].add(i)
        pairs.pop(best, None)
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
    return vocab
