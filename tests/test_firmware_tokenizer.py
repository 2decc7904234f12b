"""The C tokenizer (firmware/core/se_tokenizer.c) is byte-identical with models/tokenizer.py."""

from __future__ import annotations

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
