"""The C tokenizer (firmware/core/se_tokenizer.c) is byte-identical with models/tokenizer.py."""

from __future__ import annotations

import functools
import random
import struct
import subprocess

import pytest

import fw_support as fw
from squeezeedge.models.tokenizer import WordPieceTokenizer


def c_tokenize(binary, inputs: list[bytes]) -> list[tuple[tuple[int, ...], tuple[tuple[int, int], ...], bool]]:
    payload = b"".join(struct.pack("<I", len(d)) + d for d in inputs)
    r = subprocess.run([str(binary), "--tokenize"], input=payload, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    out = []
    for line in r.stdout.decode().splitlines():
        parts = line.split()
        n, trunc = int(parts[0]), parts[1] == "1"
        toks = [tuple(int(x) for x in p.split(":")) for p in parts[2:]]
        assert len(toks) == n
        out.append((tuple(t[0] for t in toks), tuple((t[1], t[2]) for t in toks), trunc))
    assert len(out) == len(inputs)
    return out


def py_tokenize(inputs):
    tok = WordPieceTokenizer(list(fw.vocab()), fw.FW_CONFIG.max_len)
    return [(e.ids, e.offsets, e.truncated) for e in (tok.encode(d) for d in inputs)]


def assert_same(binary, inputs):
    got, want = c_tokenize(binary, inputs), py_tokenize(inputs)
    for data, g, w in zip(inputs, got, want):
        assert g == w, f"C tokenizer differs on {data[:80]!r}"


def tokenizer_tool(model, directory):
    from squeezeedge.compiler.meta import write_meta
    from squeezeedge.emulator import build_tokenizer_tool

    return build_tokenizer_tool(write_meta(model, directory))


@pytest.fixture(scope="module")
def short_binary(tmp_path_factory):
    """The test model's tables (max_len 16: truncation is exercised)."""
    return tokenizer_tool(fw.model(), tmp_path_factory.mktemp("meta16"))


@pytest.fixture(scope="module")
def long_tokenizer_binary(tmp_path_factory):
    """The same vocabulary with max_len 128: whole sentences, no truncation hiding differences."""
    from squeezeedge.models.config import ModelConfig
    from squeezeedge.models.synthetic import random_int_model

    cfg = ModelConfig(vocab_size=fw.FW_CONFIG.vocab_size, max_len=128, hidden=8, layers=1, heads=1, ffn=8, groups=1)
    m = random_int_model(cfg, n_intents=2, n_slots=1)
    m.vocab = list(fw.vocab())
    return m, tokenizer_tool(m, tmp_path_factory.mktemp("meta128"))


def test_full_dataset_identical(long_tokenizer_binary, short_binary):
    m, binary = long_tokenizer_binary
    d = fw.dataset()
    texts = [e.text.encode("utf-8") for split in (d.train, d.dev, d.test) for e in split]
    assert len(texts) > 5000
    tok = WordPieceTokenizer(m.vocab, 128)
    want = [(e.ids, e.offsets, e.truncated) for e in (tok.encode(t) for t in texts)]
    got = c_tokenize(binary, texts)
    mismatches = [t for t, g, w in zip(texts, got, want) if g != w]
    assert not mismatches, f"{len(mismatches)} sentences differ, e.g. {mismatches[:3]}"
    # and the truncating (max_len 16) build of the test model
    assert_same(short_binary, texts)


EDGE_CASES = [
    b"", b" ", b"\t\n\r\x0b\x0c", b"\x00", b"\x00turn\x00on\x00", b"\x7f\x01\x1f",
    b"Set 21.5%!", b"TURN ON THE KITCHEN LIGHTS", b"tUrN oN", b"caf\xc3\xa9", b"\xe9", b"\xe9\xe9", b"x\xe9",
    "turn on the lights \U0001f4a1".encode(), "\u65e5\u672c\u8a9e".encode(), b"\xff\xfe\xfd", b"\xc3", b"\xe2\x82",
    b"\xed\xa0\x80", b"a" * 100, b"a" * 101, b"the" * 40, b"x" * 5000, b"##", b"#the", b"the##", b"[UNK] [CLS]",
    b"a b c d e f g h i j k l m n o p q r s t u v w x y z", b"1234567890" * 3, b"!!!???...", b"Kitchen kitchen",
    bytes(range(256)), b"0" * 10240,
]


def test_edge_cases(short_binary, long_tokenizer_binary):
    assert_same(short_binary, EDGE_CASES)
    m, binary = long_tokenizer_binary
    tok = WordPieceTokenizer(m.vocab, 128)
    assert c_tokenize(binary, EDGE_CASES) == [(e.ids, e.offsets, e.truncated) for e in map(tok.encode, EDGE_CASES)]


def test_random_bytes(short_binary):
    rng = random.Random(1)
    alphabet = b"abcdefghijklmnopqrstuvwxyzABC  \t\x00\x7f.,!#0123456789\xc3\xa9\xe9\xff\xfe\x80"
    inputs = [bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 200))) for _ in range(2000)]
    inputs += [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))) for _ in range(500)]
    assert_same(short_binary, inputs)


def test_truncation_and_10kb(short_binary):
    data = (b"turn on the kitchen lights please " * 400)[:10240]
    assert len(data) == 10240
    got = c_tokenize(short_binary, [data])[0]
    assert got == py_tokenize([data])[0]
    assert got[2] and len(got[0]) == fw.FW_CONFIG.max_len


def test_meta_lookup_table_matches_python_dict():
    from squeezeedge.compiler.meta import lookup_entries

    v = list(fw.vocab())
    entries = lookup_entries(v)
    ids = {piece: i for i, piece in enumerate(v)}
    assert ids["the"] == max(i for i, p in enumerate(v) if p == "the")
    assert (0, b"the", ids["the"]) in entries
    assert all(not any(ord(c) > 255 for c in v[i]) for _, _, i in entries)


@pytest.mark.parametrize("cc", ["gcc", "arm-none-eabi-gcc"])
def test_core_is_strict_portable_c99(cc, tmp_path):
    """firmware/core and the generated tables: strict C99, no warnings, no float, no heap."""
    import re
    import shutil

    from squeezeedge.compiler.meta import write_meta
    from squeezeedge.emulator import CORE_DIR

    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    write_meta(fw.model(), tmp_path)
    flags = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Wconversion", "-Wno-sign-conversion", "-Werror", "-Os"]
    if cc.startswith("arm"):
        flags += ["-mcpu=cortex-m4", "-mthumb"]
    sources = sorted(CORE_DIR.glob("*.c")) + [tmp_path / "model_meta.c"]
    for src in sources:
        r = subprocess.run([cc, *flags, "-I", str(CORE_DIR), "-I", str(tmp_path), "-c", str(src), "-o",
                            str(tmp_path / (src.stem + ".o"))], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        code = re.sub(r"/\*.*?\*/", "", src.read_text(), flags=re.S)
        assert not re.search(r"\b(float|double|malloc|calloc|realloc|free|printf)\b", code), src.name


# ---- the home's names (firmware/core/se_names.c == models/gazetteer.py Gazetteer) ----

# se_name_result_t (se_names.h)
ADDED, DUPLICATE, BAD_KIND, NO_PLACEHOLDERS, NO_WORDS, UNREADABLE, FULL, OTHER_KIND = range(8)
# Kinds the C side must accept or refuse exactly as Python: every model kind, domains without a
# placeholder of their own (→ [name]), and near misses.
EXTRA_KINDS = ["name:camera", "name:", "name:weather", "name:todo", "Area", "room", "names", "", "nam", "name;light",
               " area", "area ", "[area]", "name:\u00e9", "name:light:x"]
# Placeholders left out of the test vocabulary: these domains fall back to [name].
MISSING_PLACEHOLDERS = ("[name:weather]", "[name:todo]")


@functools.lru_cache(maxsize=None)
def names_vocab() -> tuple[str, ...]:
    """The test vocabulary's pieces plus the home-name placeholders (two left out)."""
    from squeezeedge.models.gazetteer import PLACEHOLDERS
    from squeezeedge.models.tokenizer import train_vocab

    reserved = [p for p in PLACEHOLDERS if p not in MISSING_PLACEHOLDERS]
    v = train_vocab([e.text for e in fw.dataset().train], fw.FW_CONFIG.vocab_size, reserved=reserved)
    v = v + [f"zz{i}" for i in range(fw.FW_CONFIG.vocab_size - len(v))]
    v[-len(fw.EDGE_PIECES):] = fw.EDGE_PIECES
    assert all(p in v for p in reserved)
    return tuple(v)


def names_tokenizer_tool(max_len: int, directory, sanitize: bool = False):
    from squeezeedge.models.config import ModelConfig
    from squeezeedge.models.synthetic import random_int_model

    cfg = ModelConfig(vocab_size=fw.FW_CONFIG.vocab_size, max_len=max_len, hidden=8, layers=1, heads=1, ffn=8, groups=1)
    m = random_int_model(cfg, n_intents=2, n_slots=1)
    m.vocab = list(names_vocab())
    from squeezeedge.compiler.meta import write_meta
    from squeezeedge.emulator import build_tokenizer_tool

    return build_tokenizer_tool(write_meta(m, directory), sanitize=sanitize)


@pytest.fixture(scope="module")
def names_tools(tmp_path_factory):
    """{max_len: tokenizer tool} over the vocabulary with placeholders: 128 (whole sentences) and
    16 (long names are cut, so refused; built with ASan + UBSan)."""
    return {128: names_tokenizer_tool(128, tmp_path_factory.mktemp("names128")),
            16: names_tokenizer_tool(16, tmp_path_factory.mktemp("names16"), sanitize=True)}


def c_names_tokenize(binary, names, inputs, tmp_path):
    """(se_names_add result per name, tokens per input) from the C tool told ``names``."""
    path = tmp_path / "names.tsv"
    path.write_bytes(b"".join(f"{kind}\t{text}\n".encode() for kind, text in names))
    payload = b"".join(struct.pack("<I", len(d)) + d for d in inputs)
    r = subprocess.run([str(binary), "--names", str(path)], input=payload, capture_output=True, timeout=300)
    assert r.returncode == 0 and not r.stderr, r.stderr.decode(errors="replace")
    lines = r.stdout.decode().splitlines()
    results = [int(line.split()[1]) for line in lines[:len(names)]]
    assert all(line.startswith("name ") for line in lines[:len(names)])
    out = []
    for line in lines[len(names):]:
        parts = line.split()
        toks = [tuple(int(x) for x in p.split(":")) for p in parts[2:]]
        assert len(toks) == int(parts[0])
        out.append((tuple(t[0] for t in toks), tuple((t[1], t[2]) for t in toks), parts[1] == "1"))
    assert len(out) == len(inputs)
    return results, out


def py_names_tokenize(max_len: int, names, inputs):
    """What the Python reference does: each name added alone (refusals recorded, not raised)."""
    from squeezeedge.models.gazetteer import Gazetteer, HomeNames, NamesError, model_kind, placeholder

    tok = WordPieceTokenizer(list(names_vocab()), max_len)
    ids = {p: i for i, p in enumerate(tok.vocab)}

    def kept_elsewhere(kind: str, text: str) -> bool:
        """A duplicate the reference keeps under another placeholder (the device adds a note)."""
        kept = g.apply(tok.encode(text.encode("utf-8"))).ids
        return len(kept) == 2 and kept[1] != ids[placeholder(model_kind(tok.vocab, kind))]

    g = Gazetteer(tok, HomeNames())
    reasons = {"unknown kind": BAD_KIND, "trained without home names": NO_PLACEHOLDERS, "has no words": NO_WORDS,
               "too long or has characters": UNREADABLE}
    results = []
    for kind, text in names:
        before = len(g)
        try:
            g.add(kind, text)
            results.append(ADDED if len(g) > before else OTHER_KIND if kept_elsewhere(kind, text) else DUPLICATE)
        except NamesError as e:
            results.append(next(code for key, code in reasons.items() if key in str(e)))
    encs = [g.apply(tok.encode(d)) if len(g) else tok.encode(d) for d in inputs]
    return results, [(e.ids, e.offsets, e.truncated) for e in encs]


def assert_names_same(tools, names, inputs, tmp_path):
    for max_len, binary in tools.items():
        got_results, got = c_names_tokenize(binary, names, inputs, tmp_path)
        want_results, want = py_names_tokenize(max_len, names, inputs)
        refused = [(n, g, w) for n, g, w in zip(names, got_results, want_results) if g != w]
        assert not refused, f"max_len {max_len}: C and Python disagree on names (name, C, Python): {refused[:5]}"
        differ = [d for d, g, w in zip(inputs, got, want) if g != w]
        assert not differ, f"max_len {max_len}: {len(differ)} inputs differ, e.g. {differ[:3]}"


def test_home_names_all_match_python(names_tools, tmp_path):
    """The full example home (520 names): same refusals, same tokens on held-out sentences (with
    the home's own names put into them) and on random bytes."""
    from squeezeedge.models.entities import home_names

    names = list(home_names("all").entries)
    rng = random.Random(5)
    held_out = fw.held_out_texts()
    inputs = [t.encode() for t in held_out]
    for t in held_out[:600]:  # the sentence with a listed name spliced in, in various cases
        kind, text = rng.choice(names)
        words = t.split()
        words.insert(rng.randrange(len(words) + 1), rng.choice([text, text.upper(), text.title(), text + "s"]))
        inputs.append(" ".join(words).encode())
    inputs += [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120))) for _ in range(300)]
    want_results, want = py_names_tokenize(128, names, inputs)
    assert want_results.count(ADDED) > 400
    assert sum(len(ids) < len(py_tokenize_long(d)) for d, (ids, _, _) in zip(inputs, want)) > 300  # names were found
    assert_names_same(names_tools, names, inputs, tmp_path)


def py_tokenize_long(data: bytes):
    return WordPieceTokenizer(list(names_vocab()), 128).encode(data).ids


WORDS = ["the", "kitchen", "light", "lights", "living", "room", "front", "yard", "door", "tv", "tvs", "on", "off",
         "set", "to", "21", "2", "2nd", "floor", "up", "stairs", "upstairs", "x", "\u00e9t\u00e9", "caf\u00e9",
         "\u65e5\u672c", "r2-d2", "a.b", "o'brien", "#1", "100%", "", " ", "##", "s", "kitch", "en"]
KINDS_FOR_TEST = ["area", "floor", "name", "name:light", "name:switch", "name:fan", "name:media_player",
                  "name:binary_sensor", *EXTRA_KINDS]


def random_names(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """Overlapping names, prefixes of each other, duplicates (also in other cases/spacing),
    digits, punctuation, non-ASCII, empty and overlong ones."""
    names: list[tuple[str, str]] = []
    for _ in range(n):
        r = rng.random()
        if names and r < 0.25:  # extend or repeat an earlier name
            kind, text = rng.choice(names)
            text = rng.choice([text + " " + rng.choice(WORDS), text.upper(), "  " + text + "\t", text, text + "s"])
        elif r < 0.3:
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(8, 20)))  # cut at max_len 16
        else:
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 4)))
        names.append((rng.choice(KINDS_FOR_TEST), text))
    return names


def test_random_name_lists_match_python(names_tools, tmp_path):
    rng = random.Random(7)
    for trial in range(25):
        names = random_names(rng, rng.randrange(1, 40))
        listed = [t for _, t in names]
        inputs = [" ".join(rng.choice(listed + WORDS) for _ in range(rng.randrange(0, 25))).encode()
                  for _ in range(150)]
        inputs += [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80))) for _ in range(20)]
        inputs += [t.encode() for t in listed] + [b"", b" ", b"\x00"]
        assert_names_same(names_tools, names, inputs, tmp_path)


def test_name_refusals_are_pythons(names_tools, tmp_path):
    """One of each refusal, in both builds; kinds are checked before the text."""
    names = [("area", "sunroom"), ("area", "Sunroom"), ("room", "sunroom"), ("name:weather", "forecast home"),
             ("name:camera", "porch cam"), ("name:", "thing"), ("area", ""), ("area", " \t "), ("floor", "\u65e5\u672c"),
             ("area", "x" * 101), ("name", "a b c d e f g h i j k l m n o p q"), ("Area", ""), ("floor", "!!!")]
    assert py_names_tokenize(128, names, [])[0] == [ADDED, DUPLICATE, BAD_KIND, ADDED, ADDED, ADDED, NO_WORDS, NO_WORDS, UNREADABLE,
                               UNREADABLE, ADDED, BAD_KIND, ADDED]
    assert py_names_tokenize(16, names, [])[0][10] == UNREADABLE  # 17 tokens with [CLS] > max_len 16
    inputs = [b"turn on the sunroom lights", b"forecast home", b"porch cam off", b"a b c d e f g h i j k l m n o p q"]
    assert_names_same(names_tools, names, inputs, tmp_path)


def test_fallback_placeholder_and_longest_match(names_tools, tmp_path):
    """name:<domain> without its own placeholder becomes [name]; the longest name ending at a
    word end wins; a name never ends inside a word; offsets cover the whole name."""
    v = names_vocab()
    names = [("area", "front"), ("area", "front yard"), ("name:weather", "home"), ("name:light", "kitch")]
    _, got = c_names_tokenize(names_tools[128], names, [b"timer in Front Yard", b"weather at home", b"kitchen"],
                              tmp_path)
    ids, offsets, _ = got[0]
    assert v[ids[-1]] == "[area]" and offsets[-1] == (9, 19)
    assert v[got[1][0][-1]] == "[name]"
    assert "[name:light]" not in [v[i] for i in got[2][0]]


# ---- text beyond ASCII (issue 13): lowercasing of one- and two-byte letters, in C as in Python ----

WORDS_BEYOND_ASCII = ("Küche Wohnzimmer schließe Öffne GRÜN straße Çà déjà façade ÉTÉ mañana Señor "
                      "ΣΑΛΌΝΙ σαλόνι κουζίνα ВКЛЮЧИ свет КУХНЯ Ґанок їдальня Ÿvette œuvre Ǆ ǅ ǆ İstanbul")


@pytest.fixture(scope="module")
def beyond_ascii_binary(tmp_path_factory):
    """A vocabulary learned from German, French, Spanish, Greek, Ukrainian and Russian words (so
    its pieces hold non-ASCII bytes, some of them half a character), max_len 128."""
    from squeezeedge.models.config import ModelConfig
    from squeezeedge.models.synthetic import random_int_model
    from squeezeedge.models.tokenizer import train_vocab

    vocab = train_vocab([WORDS_BEYOND_ASCII] * 3, vocab_size=400)
    cfg = ModelConfig(vocab_size=len(vocab), max_len=128, hidden=8, layers=1, heads=1, ffn=8, groups=1)
    m = random_int_model(cfg, n_intents=2, n_slots=1)
    m.vocab = vocab
    return m, tokenizer_tool(m, tmp_path_factory.mktemp("meta-beyond-ascii"))


def test_every_one_and_two_byte_code_point_is_lowercased_alike(beyond_ascii_binary):
    """U+0000..U+07FF, each alone and inside a word, in upper- and lowercase: exhaustive."""
    m, binary = beyond_ascii_binary
    tok = WordPieceTokenizer(m.vocab, m.config.max_len)
    inputs = [chr(cp).encode() for cp in range(0x800)]
    inputs += [f"k{chr(cp)}che {chr(cp).upper()}x".encode() for cp in range(0x80, 0x800)]
    inputs += [WORDS_BEYOND_ASCII.encode(), WORDS_BEYOND_ASCII.upper().encode(), WORDS_BEYOND_ASCII.lower().encode()]
    assert c_tokenize(binary, inputs) == [(e.ids, e.offsets, e.truncated) for e in map(tok.encode, inputs)]


def test_random_bytes_beyond_ascii_tokenize_alike(beyond_ascii_binary):
    """Two-byte letters mixed with cut sequences, stray continuation bytes and three-byte ones."""
    m, binary = beyond_ascii_binary
    tok = WordPieceTokenizer(m.vocab, m.config.max_len)
    rng = random.Random(13)
    pieces = [w.encode() for w in WORDS_BEYOND_ASCII.split()] + [b"\xc3", b"\x9c", b"\xc4\xb0", b"\xe2\x82\xac",
                                                               b"\xdf\xbf", b"\xc2\x80", b" ", b"1", b"!", b"\xff"]
    inputs = [b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 12))) for _ in range(3000)]
    assert c_tokenize(binary, inputs) == [(e.ids, e.offsets, e.truncated) for e in map(tok.encode, inputs)]


def test_upper_and_lower_case_words_are_the_same_tokens(beyond_ascii_binary):
    m, _ = beyond_ascii_binary
    tok = WordPieceTokenizer(m.vocab, m.config.max_len)
    for word in ("Küche", "ÖFFNE", "ΣΑΛΌΝΙ", "КУХНЯ", "Ґанок", "ÉTÉ"):
        assert tok.encode(word).ids == tok.encode(word.lower()).ids, word
        assert 1 not in tok.encode(word).ids, f"{word} is [UNK]: its letters are in the vocabulary"
    assert tok.encode("İstanbul").ids != tok.encode("istanbul").ids  # İ's lowercase is two code points: kept
