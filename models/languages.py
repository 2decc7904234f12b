"""The languages SqueezeEdge can train Home Assistant's own intents in, and their data.

Home Assistant ships sentence templates for dozens of languages, but its templates leave the
home's names to each installation (``{area}``, ``{name}``, ...) and say nothing about what is
*not* a command. A language is ours once ``models/data/languages/<xx>/`` holds, written by hand
in that language:

* ``names.yaml`` — the names a home has (rooms, floors, devices per domain, timer names,
  shopping items, ...), the words that name a device type (``domain_keywords``) and the names
  nearly every home uses (``always_train``, never held out);
* ``out_of_scope_train.txt``, ``out_of_scope_dev.txt``, ``out_of_scope_test.txt`` — things
  people say to a voice assistant that are no command;
* ``people.tsv`` — commands and non-commands written the way people talk, for evaluation only.

English is the original: its lists are :mod:`.entities`' own and its files sit in
``models/data/`` itself.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..resources import MODEL_DATA_DIR, PRETRAINED_DIR

ENGLISH = "en"
LANGUAGES_DIR = MODEL_DATA_DIR / "languages"
NAMES_FILE = "names.yaml"
PEOPLE_FILE = "people.tsv"

# Every list a names.yaml must have: the kinds Home Assistant leaves to the home (see
# entities.ENTITY_LISTS) and one device list per domain.
LIST_KINDS = ("area", "floor", "timer_name", "timer_command", "shopping_list_item", "todo_list_item",
              "search_query", "message", "zone")


class LanguageError(ValueError):
    """A language we have no data for, or a broken names file (the message says which and where)."""


@dataclass(frozen=True)
class LanguageNames:
    """One language's names, in the shape of :data:`entities.ENTITY_LISTS`."""

    lists: dict[str, tuple[str, ...]]  # kind ("area", "name:light", ...) → names
    always_train: frozenset[str]
    domain_keywords: dict[str, tuple[str, ...]]


def languages() -> tuple[str, ...]:
    """The languages whose Home Assistant intents we can train: English and every folder of
    ``models/data/languages/`` with a names file."""
    found = sorted(p.name for p in LANGUAGES_DIR.iterdir() if (p / NAMES_FILE).is_file()) \
        if LANGUAGES_DIR.is_dir() else []
    return (ENGLISH, *found)


def check_language(language: str) -> str:
    if language not in languages():
        raise LanguageError(f"SqueezeEdge has no data for Home Assistant's intents in {language!r} (names and "
                            f"out-of-scope sentences in models/data/languages/{language}/, see models/languages.py); "
                            f"it has {', '.join(languages())}")
    return language


def data_file(language: str, name: str) -> Path:
    """``name`` (e.g. ``out_of_scope_train.txt``) of ``language``: English in models/data/, the
    others in models/data/languages/<xx>/."""
    return MODEL_DATA_DIR / name if language == ENGLISH else LANGUAGES_DIR / language / name


def _pretrained(language: str) -> Path:
    return PRETRAINED_DIR / ("default.semodel" if language == ENGLISH else f"{language}.semodel")


def shipped_languages() -> tuple[str, ...]:
    """The languages with a pretrained model in the package."""
    return tuple(language for language in languages() if _pretrained(language).is_file())


def shipped_model(language: str) -> Path:
    """The pretrained model of ``language``: ``default.semodel`` is English, ``<xx>.semodel`` the others."""
    path = _pretrained(language)
    if not path.is_file():
        train = (f"train one: squeezeedge train --language {language} -o {language}.semodel"
                 if language in languages() else "SqueezeEdge has no data to train one in it yet")
        raise LanguageError(f"no shipped model for language {language!r}; shipped: "
                            f"{', '.join(shipped_languages())} ({train})")
    return path


@functools.cache
def load_names(language: str, domains: tuple[str, ...]) -> LanguageNames:
    """``names.yaml`` of ``language`` (not English), checked: every kind of :data:`LIST_KINDS`
    and a device list for each of ``domains``, each a list of distinct non-empty strings."""
    path = data_file(language, NAMES_FILE)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise LanguageError(f"{path}: {error}") from None

    def strings(value, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise LanguageError(f"{path}: {where} must be a non-empty list of names")
        names = tuple(" ".join(v.lower().split()) for v in value)
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise LanguageError(f"{path}: {where} names {', '.join(twice)} twice")
        return names

    if not isinstance(data, dict) or data.get("language") != language:
        raise LanguageError(f"{path}: expected a mapping with 'language: {language}'")
    lists = {kind: strings(data.get(kind), kind) for kind in LIST_KINDS}
    devices = data.get("name") or {}
    lists.update({f"name:{domain}": strings(devices.get(domain), f"name.{domain}") for domain in domains})
    keywords = {domain: tuple(sorted(strings(words, f"domain_keywords.{domain}"), key=len, reverse=True))
                for domain, words in (data.get("domain_keywords") or {}).items()}
    return LanguageNames(lists, frozenset(strings(data.get("always_train"), "always_train")), keywords)
