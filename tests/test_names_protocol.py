"""The home's names on the device (firmware/PROTOCOL.md, "Home names"): an emulator told the
names answers exactly like ReferenceEngine(model, names); names_add / names_clear / names / info
over the protocol; every bad name, kind or full table is one clear error and the device keeps
answering."""

from __future__ import annotations

import argparse
import json

import pytest

import fw_support as fw
from squeezeedge.cli.emulate import run as cmd_emulate
from squeezeedge.emulator import Emulator, EmulatorError, build_emulator, prepare_package
from squeezeedge.models.engine import DEFAULT_MODEL, Encoder, ReferenceEngine
from squeezeedge.models.entities import home_names
from squeezeedge.models.gazetteer import HomeNames
from squeezeedge.models.model_file import IntModel
from squeezeedge.transport import DeviceEngine, open_transport


@pytest.fixture(scope="module")
def model_path():
    return DEFAULT_MODEL


@pytest.fixture(scope="module")
def model(model_path):
    return IntModel.load(model_path)


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "asan+ubsan"])
def binary(model, request):
    return build_emulator(prepare_package(model), sanitize=request.param)


@pytest.fixture(scope="module")
def all_names():
    return home_names("all")


@pytest.fixture(scope="module")
def named_device(binary, all_names):
    """The emulator told every name of the example home, as a DeviceEngine."""
    with Emulator(binary, "tcp:0", names=all_names) as emu:
        engine = DeviceEngine(open_transport(emu.url), "emulator")
        yield engine
        engine.close()
        assert_clean(emu)


@pytest.fixture()
def device(binary):
    """A fresh emulator told no names: its transport."""
    with Emulator(binary, "tcp:0") as emu:
        with open_transport(emu.url) as t:
            yield t
        assert_clean(emu)


def assert_clean(emu: Emulator) -> None:
    """Nothing the sanitizers (in the asan+ubsan build) had to say."""
    bad = [line for line in emu.stderr_lines if "runtime error" in line or "AddressSanitizer" in line]
    assert not bad and emu.alive(), bad[:5]


def spliced_sentences(texts: list[str], names: HomeNames, n: int) -> list[str]:
    """Held-out sentences with a listed name put in (so that most contain one)."""
    import random

    rng = random.Random(3)
    out = []
    for text in texts[:n]:
        words = text.split()
        words.insert(rng.randrange(len(words) + 1), rng.choice(names.entries)[1])
        out.append(" ".join(words))
    return out


def test_named_emulator_answers_like_the_reference(named_device, model, all_names):
    texts = fw.held_out_test_sentences(300)
    texts += spliced_sentences(texts, all_names, 100)
    plain, named = Encoder(model), Encoder(model, all_names)
    rewritten = sum(plain.encode(t.encode()).ids != named.encode(t.encode()).ids for t in texts)
    assert rewritten > 100, "the names should change the tokens of many of these sentences"
    reference = ReferenceEngine(model, all_names)
    assert fw.mismatches(named_device, reference, texts) == []
    t = named_device.transport
    stored = t.command("names")
    assert stored["names"] == len(named.gazetteer) and t.command("info")["names"] == stored["names"]
    assert 0 < stored["name_tokens"] <= stored["name_tokens_max"] and stored["names"] <= stored["names_max"]


def test_names_commands(device, model):
    assert device.command("names") == {"names": 0, "names_max": 600, "name_tokens": 0, "name_tokens_max": 2048}
    assert device.request({"cmd": "names_add", "kind": "area", "text": "sunroom"}) == {"names": 1}
    assert device.request({"cmd": "names_add", "kind": "area", "text": " SunRoom "}) == {"names": 1}  # duplicate
    assert device.request({"cmd": "names_add", "kind": "name:light", "text": "reading lamp"}) == {"names": 2}
    assert device.request({"cmd": "names_add", "kind": "name:camera", "text": "porch cam"}) == {"names": 3}
    assert device.command("info")["names"] == 3
    device.write_line(b"/names")
    plain = json.loads(device.read_line())
    assert plain["names"] == 3 and plain["name_tokens"] > 3
    names = HomeNames((("area", "sunroom"), ("name:light", "reading lamp"), ("name:camera", "porch cam")))
    named, unnamed = ReferenceEngine(model, names), ReferenceEngine(model)
    engine = DeviceEngine(device, "emulator")
    texts = ["turn on the reading lamp in the sunroom", "is the porch cam on", "turn off the sunroom lights"]
    assert fw.mismatches(engine, named, texts) == []
    assert device.command("names_clear") == {"names": 0}
    assert device.command("names")["name_tokens"] == 0
    assert fw.mismatches(engine, unnamed, texts) == []


BAD = [
    ({"kind": "room", "text": "sunroom"}, "unknown_kind", "unknown kind"),
    ({"kind": "Area", "text": "sunroom"}, "unknown_kind", "unknown kind"),
    ({"kind": "area\u0000", "text": "sunroom"}, "unknown_kind", "unknown kind"),
    ({"kind": "name:" + "x" * 500, "text": "sunroom"}, "unknown_kind", "unknown kind"),
    ({"kind": "\u00e9\u00e9 \\ \"", "text": "sunroom"}, "unknown_kind", "unknown kind"),
    ({"kind": "area", "text": ""}, "bad_name", "no words"),
    ({"kind": "area", "text": "  \t "}, "bad_name", "no words"),
    ({"kind": "floor", "text": "\u65e5\u672c\u8a9e"}, "bad_name", "cannot read"),
    ({"kind": "area", "text": "word " * 200}, "bad_name", "too long"),
    ({"text": "sunroom"}, "bad_request", "needs \"kind\""),
    ({"kind": "area"}, "bad_request", "needs \"kind\""),
]


@pytest.mark.parametrize("fields,code,message", BAD, ids=[f"{c}-{i}" for i, (_, c, _) in enumerate(BAD)])
def test_bad_names_are_one_clear_error(device, model, fields, code, message):
    reply = device.request({"cmd": "names_add", **fields})
    assert reply["code"] == code and message in reply["error"], reply
    assert device.command("names")["names"] == 0
    assert fw.mismatches(DeviceEngine(device, "emulator"), ReferenceEngine(model), ["turn on the kitchen lights"]) == []


def test_garbage_kinds_and_lines(device):
    """Non-string kinds are bad JSON; the device answers everything and then still works."""
    for line in [b'{"cmd":"names_add","kind":5,"text":"x"}', b'{"cmd":"names_add","kind":{"a":1},"text":"x"}',
                 b'{"cmd":"names_add","kind":"\\ud800","text":"x"}', b'{"cmd":"names_add","kind":"area","text":"\xff"}',
                 b'{"cmd":"names_add","kind":"area","text":"x"', b"/names_add", b'{"cmd":"names_addd"}']:
        device.write_line(line)
        reply = json.loads(device.read_line())
        assert "error" in reply or "intent" in reply, (line, reply)
    assert device.command("names") == {"names": 0, "names_max": 600, "name_tokens": 0, "name_tokens_max": 2048}
    assert device.request({"cmd": "names_add", "kind": "floor", "text": "attic"}) == {"names": 1}


def test_table_full(device):
    n, reply = 0, {}
    while "error" not in reply:
        assert n < 2000, "the table never filled"
        reply = device.request({"cmd": "names_add", "kind": "area", "text": f"zone {n} east wing"})
        n += 1
    assert reply["code"] == "names_full" and "names_clear" in reply["error"], reply
    full = device.command("names")
    assert full["names"] == n - 1 and full["names"] > 100
    # a duplicate is still no error; the device still classifies; names_clear makes room again
    assert device.request({"cmd": "names_add", "kind": "area", "text": "zone 0 east wing"}) == {"names": n - 1}
    assert "intent" in device.classify_json(b"turn on the lights in zone 3 east wing")
    assert device.command("names_clear") == {"names": 0}
    assert device.request({"cmd": "names_add", "kind": "area", "text": "sunroom"}) == {"names": 1}


def test_model_without_placeholders_refuses_names():
    """The synthetic test model knows no placeholders: names_add says so, the rest works."""
    with Emulator(fw.binary(), "tcp:0") as emu, open_transport(emu.url) as t:
        reply = t.request({"cmd": "names_add", "kind": "area", "text": "kitchen"})
        assert reply["code"] == "names_unsupported" and "trained without home names" in reply["error"]
        assert t.command("names")["names"] == 0 and t.command("ping") == {"pong": True}


def test_refused_name_stops_the_emulator_with_a_clear_error(binary):
    names = HomeNames((("area", "sunroom"), ("floor", "\u65e5\u672c")))
    with pytest.raises(EmulatorError, match=r"refused floor '\u65e5\u672c'.*cannot read"):
        Emulator(binary, "tcp:0", names=names).start()


def emulate_args(**kw):
    from squeezeedge.cli.emulate import add_parser as add_emulate_parser

    sub = argparse.ArgumentParser().add_subparsers()
    add_emulate_parser(sub)
    return sub.choices["emulate"].parse_args([a for k, v in kw.items() for a in (f"--{k}", v)])


def test_emulate_cli_refuses_a_bad_names_file(tmp_path, capsys, model_path):
    bad = tmp_path / "names.json"
    bad.write_text('{"area": ["kitchen"], "rooms": []}')
    assert cmd_emulate(emulate_args(names=str(bad), serial="stdio")) == 2
    assert "unknown key(s) ['rooms']" in capsys.readouterr().err
    assert cmd_emulate(emulate_args(names=str(tmp_path / "missing.json"), serial="stdio")) == 2
    assert "cannot read names file" in capsys.readouterr().err
    bad.write_text('{"area": ["kitchen", "!"], "name": {"light": [" "]}}')  # the device refuses " "
    for serial in ("stdio", "tcp:0"):
        assert cmd_emulate(emulate_args(names=str(bad), serial=serial, model=str(model_path))) == 2
        assert "the device refused name:light ' ' from the home's names: name has no words" in capsys.readouterr().err


def test_emulate_stdio_with_names(tmp_path, model, binary):
    """The --init file the host tools write: one names_add line per name, answers unseen."""
    import subprocess

    from squeezeedge.emulator import write_names_init

    names = HomeNames.from_lists(areas=["sunroom"], names={"light": ["reading lamp"]})
    init = write_names_init(names, tmp_path)
    r = subprocess.run([str(binary), "--init", str(init), "--stdio"], input=b'{"cmd":"names"}\n/info\n',
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    replies = [json.loads(line) for line in r.stdout.splitlines()]
    assert replies[0]["names"] == 2 and replies[1]["names"] == 2
    init.write_text('{"cmd":"names_add","kind":"room","text":"x"}\n')
    r = subprocess.run([str(binary), "--init", str(init), "--stdio"], input=b"", capture_output=True, timeout=60)
    assert r.returncode == 2 and json.loads(r.stderr.splitlines()[0])["code"] == "unknown_kind"
    assert b"SE_READY" not in r.stderr


def test_names_push_cli_tells_a_running_device_the_example_home(tmp_path, model, binary, all_names):
    """`squeezeedge names example` writes the home; `names push` replaces a device's names by it."""
    import subprocess
    import sys

    home = tmp_path / "home.json"
    cli = [sys.executable, "-m", "squeezeedge", "names"]
    subprocess.run([*cli, "example", "-o", str(home)], check=True, capture_output=True, timeout=120)
    assert HomeNames.load(home) == all_names
    with Emulator(binary, "tcp:0", names=HomeNames.from_lists(areas=["not in the file"])) as emu:
        r = subprocess.run([*cli, "push", str(home), "--port", emu.url], capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr
        with open_transport(emu.url) as t:
            stored = t.command("names")["names"]
            assert f"knows {stored} names ({len(all_names)} sent)" in r.stdout.decode()
            assert stored == len(Encoder(model, all_names).gazetteer)
            engine = DeviceEngine(t, "emulator")
            assert fw.mismatches(engine, ReferenceEngine(model, all_names), ["start the roomba in the sunroom"]) == []
        r = subprocess.run([*cli, "push", str(home)], capture_output=True, timeout=120)
        assert r.returncode == 2 and "--port URL" in r.stderr.decode()


def test_a_name_readded_under_another_kind_is_reported(model, tmp_path):
    """The first kind stays (as in the reference), but the device says so, and `names push`
    shows it; the same name again under the same kind stays silent."""
    import subprocess
    import sys

    home = tmp_path / "home.json"
    home.write_text(json.dumps({"area": ["sunroom", "Sunroom"], "floor": ["sunroom"]}))
    with Emulator(build_emulator(prepare_package(model)), "tcp:0") as emu:
        r = subprocess.run([sys.executable, "-m", "squeezeedge", "names", "push", str(home), "--port", emu.url],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert r.stderr.strip() == ("names push: floor 'sunroom' was not added: the device already holds that name "
                                    "as area (a name can have one kind; rename one of them)")
        assert "knows 1 names (3 sent)" in r.stdout
        with open_transport(emu.url) as t:
            again = t.request({"cmd": "names_add", "kind": "name:light", "text": "SUNROOM"})
            assert again["names"] == 1 and again["kept_kind"] == "area" and "first kind stays" in again["note"]
            same = t.request({"cmd": "names_add", "kind": "area", "text": "sunroom"})
            assert same == {"names": 1}
