"""Shared helpers of the firmware tests: a small model with a real vocabulary, its emulator."""

from __future__ import annotations

import functools
import zlib

from squeezeedge.models.config import ModelConfig

FW_CONFIG = ModelConfig(vocab_size=512, max_len=16, hidden=32, layers=1, heads=2, ffn=64, groups=4)
# Pieces that exercise the corners of the lookup table: a latin-1 character (matches byte 0xE9),
# a non-latin-1 one (never matches), a bare "##", a duplicate (the last id wins), mixed case.
EDGE_PIECES = ["\u00e9", "##\u00e9", "\u65e5\u672c", "##", "the", "Kitchen", "##\u00ff\u00fe", "[MASK]"]


@functools.lru_cache(maxsize=None)
def dataset():
    from squeezeedge.models.dataset import build_dataset

    return build_dataset(samples_per_template=3)


@functools.lru_cache(maxsize=None)
def vocab() -> tuple[str, ...]:
    from squeezeedge.models.tokenizer import train_vocab

    v = train_vocab([e.text for e in dataset().train], FW_CONFIG.vocab_size)
    v = v + [f"zz{i}" for i in range(FW_CONFIG.vocab_size - len(v))]
    v[-len(EDGE_PIECES):] = EDGE_PIECES
    return tuple(v)


def held_out_texts() -> list[str]:
    d = dataset()
    return [e.text for e in d.dev + d.test]


@functools.lru_cache(maxsize=None)
def model():
    """Random weights, real quantization, the real vocabulary; a value table and an
    out-of-scope threshold chosen so that both paths of each are taken; slot "-slot1" is the
    negated twin of slot1 (values "-...", one name, first mention wins across both)."""
    from squeezeedge.models.engine import ReferenceEngine
    from squeezeedge.models.synthetic import random_int_model

    m = random_int_model(FW_CONFIG, n_intents=8, n_slots=4, seed=3)
    m.vocab = list(vocab())
    m.slots = [*m.slots[:3], "-slot1"]
    if hasattr(m, "intent_slots"):  # per-intent slot restrictions; unlisted intents allow all
        m.intent_slots = {"Intent1": [], "Intent2": ["slot0"], "Intent5": ["slot1", "-slot1"],
                          "Intent7": ["slot0", "slot2", "-slot1"]}
    texts = held_out_texts()[:200]
    ref = ReferenceEngine(m)
    answers = [ref.classify(t.encode()) for t in texts]
    confs = sorted(a.confidence_q for a in answers)
    m.oos_threshold = confs[len(confs) // 3]
    table: dict[str, dict[str, str]] = {}
    for a in answers:
        for slot, phrase in a.slots.items():
            if slot == "slot1" and phrase.startswith("-"):  # (almost surely) said by the negated twin
                slot, phrase = "-slot1", phrase[1:]
            if len(table.get(slot, {})) < 6 and zlib.crc32(phrase.encode()) % 2 == 0:
                table.setdefault(slot, {})[phrase] = f"V\u00e9 \"{phrase}\"\\\t"
    m.value_table = table
    return m


@functools.lru_cache(maxsize=None)
def package():
    from squeezeedge.emulator import prepare_package

    return prepare_package(model())


@functools.lru_cache(maxsize=None)
def binary(sanitize: bool = False):
    from squeezeedge.emulator import build_emulator

    return build_emulator(package(), sanitize=sanitize)


# ---- board firmware (STM32, RV32, Xtensa) against the shipped model ----

def shipped_reference():
    """The integer reference engine of the shipped model: what every board must answer."""
    from squeezeedge.models.engine import DEFAULT_MODEL, ReferenceEngine
    from squeezeedge.models.model_file import IntModel

    return ReferenceEngine(IntModel.load(DEFAULT_MODEL))


def qemu_board_device(elf, board: str):
    """Generator for a module fixture: ``board``'s firmware under QEMU, as a DeviceEngine on its
    serial socket; QEMU stops when the fixture ends."""
    from squeezeedge import boards
    from squeezeedge.transport import DeviceEngine, open_transport

    q = boards.start_qemu_board(elf, board=board)
    try:
        t = open_transport(q.url)
        t.resync()
        yield DeviceEngine(t, "device", timeout=10.0)
        t.close()
    finally:
        q.stop()


def assert_answers_with_the_homes_names(device, n: int) -> None:
    """Tell the device every name of the example home (over its serial line, as `squeezeedge names
    push` does): it stores them all and answers ``n`` held-out sentences like the reference told
    the same names. The device's names are cleared again afterwards."""
    from squeezeedge.models.engine import DEFAULT_MODEL, ReferenceEngine
    from squeezeedge.models.entities import home_names
    from squeezeedge.models.model_file import IntModel
    from squeezeedge.names import push_names

    names = home_names("all")
    reference = ReferenceEngine(IntModel.load(DEFAULT_MODEL), names)
    try:
        assert push_names(device.transport, names) == len(reference.encoder.gazetteer)
        bad = mismatches(device, reference, held_out_test_sentences(n))
        assert not bad, bad[:3]
    finally:
        device.transport.command("names_clear")


def held_out_test_sentences(n: int) -> list[str]:
    """``n`` sentences of the real held-out test split (seed 0), spread over all of it."""
    from squeezeedge.models.dataset import build_dataset

    test = build_dataset(seed=0).test
    return [ex.text for ex in test[::max(1, len(test) // n)]][:n]


def mismatches(device, reference, texts) -> list[tuple]:
    """(text, reference answer, device answer) for every text the two answer differently, in any
    field (text, intent, confidence, slots; the device's own time_us is not compared)."""
    from squeezeedge.classify import classify_line

    out = []
    for text in texts:
        data = text.encode("utf-8")
        want, got = classify_line(reference, data), classify_line(device, data)
        if got != want:
            out.append((text, want, got))
    return out


def answered_after(device, garbage: bytes) -> None:
    """Send garbage (newline-terminated), then a normal request: it must be answered."""
    t = device.transport
    t._write(garbage + b"\n")
    reply = t.request({"text": "turn off the kitchen lights"}, timeout=15.0)
    assert reply["intent"] == "HassTurnOff", reply


def assert_survives_garbage(device) -> None:
    """Random bytes, a 10 KB line, invalid UTF-8, NULs, broken JSON: each is answered with an error
    (in the protocol's form) and the next request still gets its answer."""
    import json
    import random

    rng = random.Random(0)
    answered_after(device, bytes(rng.randrange(256) for _ in range(3000)))  # random bytes, newlines too
    answered_after(device, b"x" * 10_000)                                    # a 10 KB line
    answered_after(device, b"\xff\xfe\xc3(\xed\xa0\x80 \xf8\x88\x80\x80\x80")  # invalid UTF-8
    answered_after(device, b"\x00" * 700 + b"turn on\x00 the light")           # NULs
    answered_after(device, b'{"id": [1, {"text": "\\ud800"')                  # broken JSON
    t = device.transport
    t.drain()
    t.write_line(b"y" * 10_000)
    reply = json.loads(t.read_line(10.0))
    assert reply["code"] == "too_long" and "10000 bytes" in reply["error"]
    t.write_line(b"\xff bad")
    assert json.loads(t.read_line(10.0))["code"] == "invalid_utf8"
    assert t.command("stats")["lines"] > 0
