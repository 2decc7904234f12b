"""The home's own names, and how a command's tokens that spell one become one placeholder token.

Home Assistant understands "turn on the sunroom lights" because the installation knows it has
an area called "sunroom"; a model that has never seen the word has to guess where the name
ends and what it is. A device can be told the same lists (areas, floors, entity names by
domain). Before the model runs, every run of tokens that spells a listed name is replaced by
one placeholder token — ``[area]``, ``[floor]``, ``[name:light]``, … — whose byte offsets cover
the whole name, so the slot decoder still returns the words as written. The model is trained
with placeholders in most sentences and without them in the rest, so it also works with no
lists, or with a name that is missing from them.

Matching (TOKENIZER.md §4 specifies it for the C implementation, ``se_names.c``):

* a name is tokenized like a command (without ``[CLS]``); names that tokenize to nothing or
  contain ``[UNK]`` are refused;
* scanning tokens 1.. left to right, at a token that starts a word take the longest name
  whose token ids follow and that ends where a word ends (the next token, if any, is not a
  ``##`` piece); replace those tokens by the name's placeholder and continue after them.
  Otherwise keep the token and move on;
* when two names tokenize the same, the first one added wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .tokenizer import UNK_ID, Encoding, WordPieceTokenizer

AREA, FLOOR, NAME = "area", "floor", "name"
# The entity domains with a placeholder of their own: what a name is tells the intent
# ("start the [name:vacuum]" vs "start the [name:lawn_mower]"). Other domains use [name].
NAME_DOMAINS = (
    "light", "switch", "fan", "cover", "lock", "media_player", "climate", "vacuum", "lawn_mower",
    "button", "scene", "script", "person", "weather", "todo", "sensor", "binary_sensor", "valve",
)
KINDS = (AREA, FLOOR, NAME, *(f"{NAME}:{d}" for d in NAME_DOMAINS))


def placeholder(kind: str) -> str:
    """The vocabulary entry a name of ``kind`` becomes: ``"[area]"``, ``"[name:light]"``."""
    return f"[{kind}]"


PLACEHOLDERS = tuple(placeholder(k) for k in KINDS)


class NamesError(ValueError):
    """A home names file or entry that cannot be used; the message says why."""


@dataclass(frozen=True)
class HomeNames:
    """An installation's names: (kind, text) pairs in the order they were given."""

    entries: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def from_lists(cls, areas: Iterable[str] = (), floors: Iterable[str] = (),
                   names: Mapping[str, Iterable[str]] | None = None) -> "HomeNames":
        """Areas, floors, then names per domain (``{"light": [...], ...}``; domain "" or
        "name" for names of no particular domain)."""
        entries = [(AREA, a) for a in areas] + [(FLOOR, f) for f in floors]
        for domain, values in (names or {}).items():
            entries += [(name_kind(domain), v) for v in values]
        return cls(tuple(entries))

    @classmethod
    def from_json(cls, obj) -> "HomeNames":
        """``{"area": [...], "floor": [...], "name": {"light": [...]} or [...]}``."""
        if not isinstance(obj, dict):
            raise NamesError("a names file holds one JSON object: "
                             '{"area": [...], "floor": [...], "name": {"light": [...], ...}}')
        unknown = set(obj) - {AREA, FLOOR, NAME}
        if unknown:
            raise NamesError(f"unknown key(s) {sorted(unknown)} in names file; expected area, floor, name")
        names = obj.get(NAME, {})
        if isinstance(names, list):
            names = {"": names}
        lists = [obj.get(AREA, []), obj.get(FLOOR, []), *names.values()] if isinstance(names, dict) else [None]
        if not all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in lists):
            raise NamesError("area and floor must be lists of strings, name a list of strings or "
                             "an object of domain → list of strings")
        return cls.from_lists(obj.get(AREA, []), obj.get(FLOOR, []), names)

    @classmethod
    def load(cls, path: str | Path) -> "HomeNames":
        try:
            obj = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise NamesError(f"cannot read names file {path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise NamesError(f"names file {path} is not valid JSON: {exc}") from exc
        return cls.from_json(obj)

    def to_json(self) -> dict:
        out: dict = {}
        for kind, text in self.entries:
            if kind in (AREA, FLOOR):
                out.setdefault(kind, []).append(text)
            else:
                out.setdefault(NAME, {}).setdefault(kind.partition(":")[2], []).append(text)
        return out


def name_kind(domain: str) -> str:
    """The kind of an entity name of a Home Assistant ``domain`` ("" for none)."""
    return f"{NAME}:{domain}" if domain in NAME_DOMAINS else NAME


def supports_names(vocab: Sequence[str]) -> bool:
    """True for a model trained with placeholders (one that can be told the home's names)."""
    return placeholder(AREA) in vocab


def model_kind(vocab: Sequence[str], kind: str) -> str | None:
    """The kind whose placeholder ``vocab`` has for ``kind`` (``name:<domain>`` falls back to
    ``name``), or None when the model knows no placeholders (trained before home names)."""
    if placeholder(kind) in vocab:
        return kind
    if kind.startswith(NAME) and placeholder(NAME) in vocab:
        return NAME
    return None


def readable(tokenizer: WordPieceTokenizer, names: HomeNames) -> HomeNames:
    """``names`` without the ones a model with ``tokenizer`` cannot hold (cut by its
    ``max_len`` or with a byte it cannot read): what a device told them keeps. Training and
    evaluation use it; a user's own names file is refused name by name instead."""
    def fits(text: str) -> bool:
        enc = tokenizer.encode(text.encode("utf-8"))
        return len(enc) > 1 and not enc.truncated and UNK_ID not in enc.ids

    return HomeNames(tuple((kind, text) for kind, text in names.entries if fits(text)))


class Gazetteer:
    """A home's names tokenized for one model; :meth:`apply` rewrites encodings."""

    def __init__(self, tokenizer: WordPieceTokenizer, names: HomeNames):
        self.tokenizer = tokenizer
        ids = {p: i for i, p in enumerate(tokenizer.vocab)}
        self._entries: dict[tuple[int, ...], int] = {}
        self._longest = 0
        for kind, text in names.entries:
            self.add(kind, text, ids)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, kind: str, text: str, ids: Mapping[str, int] | None = None) -> None:
        if ids is None:
            ids = {p: i for i, p in enumerate(self.tokenizer.vocab)}
        known = model_kind(self.tokenizer.vocab, kind)
        if kind not in KINDS and not kind.startswith(f"{NAME}:"):
            raise NamesError(f"unknown kind {kind!r}: use area, floor, name or name:<domain>")
        if known is None:
            raise NamesError("this model was trained without home names (no placeholder tokens); "
                             "retrain it with this version of squeezeedge")
        enc = self.tokenizer.encode(text.encode("utf-8"))
        tokens = enc.ids[1:]
        if not tokens:
            raise NamesError(f"name {text!r} has no words")
        if enc.truncated or UNK_ID in tokens:
            raise NamesError(f"name {text!r} is too long or has characters the model cannot read")
        self._entries.setdefault(tuple(tokens), ids[placeholder(known)])
        self._longest = max(self._longest, len(tokens))

    def apply(self, enc: Encoding) -> Encoding:
        """``enc`` with every listed name replaced by its placeholder (see the module doc)."""
        if not self._entries:
            return enc
        ids, offsets = list(enc.ids[:1]), list(enc.offsets[:1])
        cont = self.tokenizer.is_continuation
        n, i = len(enc.ids), 1
        while i < n:
            match = 0
            if not cont(enc.ids[i]):
                for length in range(min(self._longest, n - i), 0, -1):
                    end = i + length
                    if (end == n or not cont(enc.ids[end])) and tuple(enc.ids[i:end]) in self._entries:
                        match = length
                        break
            if match:
                ids.append(self._entries[tuple(enc.ids[i:i + match])])
                offsets.append((enc.offsets[i][0], enc.offsets[i + match - 1][1]))
                i += match
            else:
                ids.append(enc.ids[i])
                offsets.append(enc.offsets[i])
                i += 1
        return replace(enc, ids=tuple(ids), offsets=tuple(offsets))
