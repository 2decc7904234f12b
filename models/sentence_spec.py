"""A maker's own commands: Home Assistant custom-sentence YAML files, checked and parsed.

The format is the one Home Assistant users already write in ``custom_sentences/<lang>/*.yaml``
(hassil syntax): ``language``, ``intents: {Name: {data: [{sentences: [...], lists, expansion_rules}]}}``,
top-level ``lists`` (values with ``in``/``out``, ``range`` with ``from``/``to``/``step``,
``wildcard``) and ``expansion_rules``. Several files merge as Home Assistant merges them.

Everything that would stop training later is found here first, before any training starts,
and reported as one sentence naming the file and line (:class:`SpecError`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from hassil.expression import Alternative, Expression, ListReference, Permutation, RuleReference, Sequence
from hassil.intents import Intents, TextSlotList, WildcardSlotList
from hassil.parse_expression import parse_sentence

from .languages import languages
from .templates import OWN_LISTS, Sampler, SampleStats, Template, ha_intents, templates_from_dict

MIN_DISTINCT_SENTENCES = 3  # one to train on, one for dev, one for test
BLOCK_KEYS_IGNORED = frozenset({"requires_context", "excludes_context", "response", "metadata"})
BLOCK_KEYS = frozenset({"sentences", "lists", "expansion_rules"}) | BLOCK_KEYS_IGNORED
TOP_KEYS = frozenset({"language", "intents", "lists", "expansion_rules", "skip_words", "responses"})


class SpecError(ValueError):
    """A problem in a spec file, as ``file:line: what is wrong; what to do``."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        self.path, self.line = Path(path), line
        super().__init__(f"{path}{f':{line}' if line else ''}: {message}")


# ---- YAML with line numbers ----

class _Map(dict):
    line: int = 0
    key_lines: dict


class _List(list):
    line: int = 0
    item_lines: list


class _LineLoader(yaml.SafeLoader):
    """A safe loader whose mappings and lists remember their lines (1-based)."""


def _map(loader: _LineLoader, node: yaml.MappingNode) -> _Map:
    out = _Map(loader.construct_mapping(node, deep=True))
    out.line = node.start_mark.line + 1
    out.key_lines = {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    return out


def _list(loader: _LineLoader, node: yaml.SequenceNode) -> _List:
    out = _List(loader.construct_sequence(node, deep=True))
    out.line = node.start_mark.line + 1
    out.item_lines = [item.start_mark.line + 1 for item in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _map)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _list)


def _line(container: Any, key: Any = None) -> int | None:
    if key is None:
        return getattr(container, "line", None)
    if isinstance(container, _Map):
        return container.key_lines.get(key, container.line)
    if isinstance(container, _List) and isinstance(key, int) and key < len(container.item_lines):
        return container.item_lines[key]
    return getattr(container, "line", None)


def read_yaml(path: Path) -> _Map:
    """One spec file as nested dicts/lists that know their lines; syntax errors as SpecError."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except UnicodeDecodeError as error:
        raise SpecError(path, None, f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SpecError(path, mark.line + 1 if mark else None, f"YAML syntax error: {problem}") from None
    if not isinstance(data, _Map):
        raise SpecError(path, _line(data), "expected a mapping with 'language' and 'intents' "
                        "(Home Assistant's custom sentences format)")
    return data


# ---- the spec ----

@dataclass
class Spec:
    """The checked, merged spec: its language, its templates, where each came from."""

    language: str
    files: tuple[Path, ...]
    templates: list[Template]
    lists: Mapping[str, Any]
    template_lines: Mapping[str, tuple[Path, int]]
    """template id → (file, line) of its sentence."""

    @property
    def intents(self) -> tuple[str, ...]:
        return tuple(sorted({t.intent for t in self.templates}))

    def model_info(self, with_home_assistant: bool = False) -> dict:
        """What a model trained on this spec records of it (``eval --sentences`` checks it)."""
        return {"spec": {"files": [str(p) for p in self.files], "intents": list(self.intents),
                         "with_home_assistant": with_home_assistant}}


def spec_files(paths: Iterable[str | Path]) -> list[Path]:
    """The YAML files named: each PATH is a file or a folder (its *.yaml and *.yml, sorted)."""
    out = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                raise SpecError(path, None, "this folder holds no .yaml files")
            out += found
        elif path.is_file():
            out.append(path)
        else:
            raise SpecError(path, None, "no such file or folder")
    return out


def check_language(language: Any, path: Path, line: int | None) -> str:
    from home_assistant_intents import get_languages

    if not isinstance(language, str) or language not in get_languages():
        raise SpecError(path, line, f"Home Assistant has no language {language!r}; "
                        f"it has {', '.join(get_languages())}")
    return language


def load_spec(paths: Iterable[str | Path], language: str | None = None,
              with_home_assistant: bool = False) -> Spec:
    """Read, merge and check the spec files; raise :class:`SpecError` at the first problem.

    ``language`` (``--language``) must agree with the files' ``language``; either one is
    needed. ``with_home_assistant``: Home Assistant's own lists and expansion rules of that
    language may be used (``{area}``, ``{name}``, ``<turn>``), as in Home Assistant.
    """
    files = spec_files(paths)
    docs = [(path, read_yaml(path)) for path in files]
    for path, doc in docs:
        for key in doc:
            if key not in TOP_KEYS:
                raise SpecError(path, _line(doc, key), f"unknown top-level key {key!r}; a custom sentences "
                                f"file has {', '.join(sorted(TOP_KEYS))}")
        if "language" in doc:
            file_language = check_language(doc["language"], path, _line(doc, "language"))
            if language is not None and file_language != language:
                raise SpecError(path, _line(doc, "language"), f"this file is language {file_language!r} "
                                f"but the model's language is {language!r}")
            language = file_language
        if not isinstance(doc.get("intents"), dict) or not doc["intents"]:
            raise SpecError(path, _line(doc, "intents"), "no intents: add 'intents:' with at least one "
                            "intent and its 'data: - sentences:'")
    if language is None:
        raise SpecError(files[0], 1, "no language: add 'language: en' (or another Home Assistant "
                        "language) to the file, or pass --language")
    check_language(language, files[0], None)
    if with_home_assistant and language not in languages():
        raise SpecError(files[0], None, f"--with-home-assistant needs SqueezeEdge's data for {language!r} "
                        f"(it has {', '.join(languages())}); train the spec alone, without it")

    lists: dict[str, tuple[Path, int, Any]] = {}
    rules: dict[str, tuple[Path, int, Any]] = {}
    for path, doc in docs:
        for section, into in (("lists", lists), ("expansion_rules", rules)):
            body = doc.get(section) or {}
            if not isinstance(body, dict):
                raise SpecError(path, _line(doc, section), f"'{section}' must be a mapping of names")
            for name, value in body.items():
                into[name] = (path, _line(body, name), value)

    base = _base_intents(language, lists, rules, with_home_assistant)
    templates, template_lines = [], {}
    for path, doc in docs:
        for intent, intent_dict in doc["intents"].items():
            line = _line(doc["intents"], intent)
            blocks = intent_dict.get("data") if isinstance(intent_dict, dict) else None
            if not isinstance(blocks, list) or not blocks:
                raise SpecError(path, line, f"intent {intent} has no sentences: give it "
                                "'data: - sentences: [...]'")
            for block_index, block in enumerate(blocks):
                block_templates = _block_templates(path, intent, block, _line(blocks, block_index), base)
                for sentence_index, (template, sentence_line) in enumerate(block_templates):
                    template.id = f"{path.name}:{intent}/{block_index}/{sentence_index}"
                    if template.id in template_lines:  # two folders' files of one name
                        template.id = f"{path}:{intent}/{block_index}/{sentence_index}"
                    templates.append(template)
                    template_lines[template.id] = (path, sentence_line)
    spec = Spec(language, tuple(files), templates, base.slot_lists, template_lines)
    for template in templates:
        _check_references(spec, template)
    _check_splittable(spec, with_home_assistant)
    return spec


def _base_intents(language: str, lists: dict, rules: dict, with_home_assistant: bool) -> Intents:
    """hassil's view of the spec's global lists and rules (plus Home Assistant's, if asked)."""
    for name, (path, line, value) in lists.items():
        if not isinstance(value, dict) or not ({"values", "range", "wildcard"} & value.keys()):
            raise SpecError(path, line, f"list {name!r} needs 'values:', 'range:' (from/to[/step]) "
                            "or 'wildcard: true'")
        if isinstance(value.get("values"), list) and not value["values"]:
            raise SpecError(path, line, f"list {name!r} has no values")
        try:
            Intents.from_dict({"language": language, "intents": {}, "lists": {name: value}})
        except Exception as error:  # hassil's messages name the construct, not the place
            raise SpecError(path, line, f"list {name!r} cannot be read: {error}") from None
    for name, (path, line, body) in rules.items():
        if not isinstance(body, str):
            raise SpecError(path, line, f"expansion rule <{name}> must be one template string")
        _parse(body, path, line, f"expansion rule <{name}>")
    base = {"language": language, "intents": {},
            "lists": {name: value for name, (_, _, value) in lists.items()},
            "expansion_rules": {name: body for name, (_, _, body) in rules.items()}}
    if with_home_assistant:
        ha = ha_intents(language)
        merged = Intents.from_dict(base)
        merged.slot_lists = {**ha.slot_lists, **merged.slot_lists}
        merged.expansion_rules = {**ha.expansion_rules, **merged.expansion_rules}
        return merged
    return Intents.from_dict(base)


def _parse(text: str, path: Path, line: int | None, what: str):
    try:
        return parse_sentence(text, keep_text=True)
    except Exception as error:
        raise SpecError(path, line, f"{what} {text!r} is not a valid template: {error}") from None


def _block_templates(path: Path, intent: str, block: Any, line: int | None,
                     base: Intents) -> list[tuple[Template, int | None]]:
    if not isinstance(block, dict):
        raise SpecError(path, line, f"each 'data' entry of {intent} must be a mapping with 'sentences:'")
    for key in block:
        if key == "slots":
            raise SpecError(path, _line(block, key), f"fixed slot values ('slots:') in {intent} are not supported: "
                            "the model only answers slots it finds in the words; put the words in a list "
                            "(e.g. {program}) instead")
        if key not in BLOCK_KEYS:
            raise SpecError(path, _line(block, key), f"unknown key {key!r} in a data block of {intent}; "
                            f"a block has {', '.join(sorted(BLOCK_KEYS))}")
    sentences = block.get("sentences")
    if not isinstance(sentences, list) or not sentences:
        raise SpecError(path, _line(block, "sentences") or line, f"intent {intent} has a data block with no "
                        "sentences: add 'sentences: [...]'")
    for index, text in enumerate(sentences):
        if not isinstance(text, str) or not text.strip():
            raise SpecError(path, _line(sentences, index), f"a sentence of {intent} must be non-empty text")
        _parse(text, path, _line(sentences, index), f"sentence of {intent}")
    for name, body in (block.get("expansion_rules") or {}).items():
        _parse(body, path, _line(block["expansion_rules"], name), f"expansion rule <{name}>")
    if block.get("lists"):
        _base_intents(base.language, {name: (path, _line(block["lists"], name), value)
                                      for name, value in block["lists"].items()}, {}, False)
    block_dict = {k: v for k, v in block.items() if k not in BLOCK_KEYS_IGNORED}
    templates = templates_from_dict({intent: {"data": [block_dict]}}, base)
    return [(t, _line(sentences, i)) for i, t in enumerate(templates)]


def _check_references(spec: Spec, template: Template) -> None:
    """Every {list} and <rule> a template uses exists; wildcards only where we can fill them."""
    seen_rules: set[str] = set()

    def walk(expr: Expression) -> None:
        if isinstance(expr, (Alternative, Permutation, Sequence)):
            for item in expr.items:
                walk(item)
        elif isinstance(expr, RuleReference):
            if expr.rule_name not in template.rules:
                raise SpecError(*spec.template_lines[template.id], f"unknown expansion rule <{expr.rule_name}>: "
                                "define it under 'expansion_rules:'")
            if expr.rule_name not in seen_rules:
                seen_rules.add(expr.rule_name)
                walk(template.rules[expr.rule_name].expression)
        elif isinstance(expr, ListReference):
            if expr.is_inline_range:
                return
            slot_list = template.lists.get(expr.list_name)
            if slot_list is None:
                raise SpecError(*spec.template_lines[template.id], f"unknown list {{{expr.list_name}}}: define it "
                                "under 'lists:' (values, range or wildcard)")
            if isinstance(slot_list, WildcardSlotList) and spec.language not in languages():
                raise SpecError(*spec.template_lines[template.id], f"wildcard {{{expr.list_name}}}: training needs "
                                f"sample values, which exist for {', '.join(languages())} only so far; "
                                "use a list of values")
            if isinstance(slot_list, TextSlotList):
                for value in slot_list.values:
                    walk(value.text_in)

    walk(template.sentence.expression)


def spec_sampler(spec: Spec, split: str, with_home_assistant: bool, stats: SampleStats | None = None) -> Sampler:
    """A sampler for the spec's templates: its own lists always win; Home Assistant's home lists
    ({area}, {name}, ...) are filled from ours only when the model includes Home Assistant."""
    own = OWN_LISTS - set(spec.lists) if with_home_assistant else frozenset()
    return Sampler(split, stats, own_lists=frozenset(own), language=spec.language)


def _check_splittable(spec: Spec, with_home_assistant: bool) -> None:
    """Each intent must have enough distinct sentences to hold some out for evaluation."""
    from .dataset import text_key

    sampler = spec_sampler(spec, "train", with_home_assistant)
    rng = random.Random(0)
    by_intent: dict[str, list[Template]] = {}
    for template in spec.templates:
        by_intent.setdefault(template.intent, []).append(template)
    for intent, templates in by_intent.items():
        seen: set[str] = set()
        for _ in range(200):
            seen.add(text_key(sampler.sample(rng.choice(templates), rng).text))
            if len(seen) >= MIN_DISTINCT_SENTENCES:
                break
        else:
            raise SpecError(*spec.template_lines[templates[0].id], f"the spec is too small to split: intent "
                            f"{intent} has only {len(seen)} distinct sentence(s); write at least "
                            f"{MIN_DISTINCT_SENTENCES} ways to say it so some can be held out for evaluation")
