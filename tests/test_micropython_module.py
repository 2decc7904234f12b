"""`import squeezeedge` on MicroPython's unix port: the native module (x64 .mpy + weights blob) and
the user C module compiled into the firmware answer exactly like the integer reference, raise the
documented exceptions on bad input and refuse a wrong weights blob before any inference."""

from __future__ import annotations

import json
import random
import subprocess
import zlib

import pytest

from fw_support import held_out_test_sentences, mismatches, shipped_reference
from squeezeedge.compiler import blob as blob_mod
from squeezeedge.micropython import natmod, ports
from squeezeedge.micropython.engine import MicroPythonEngine, MicroPythonEngineError
from squeezeedge.models.engine import DEFAULT_MODEL, ReferenceEngine
from squeezeedge.models.entities import home_names
from squeezeedge.models.model_file import IntModel

N_SENTENCES = 200


@pytest.fixture(scope="module", params=["native", "usermod"])
def engine(request):
    with MicroPythonEngine(usermod=request.param == "usermod") as eng:
        yield eng


@pytest.fixture(scope="module")
def reference():
    return shipped_reference()


def test_answers_like_the_reference(engine, reference):
    bad = mismatches(engine, reference, held_out_test_sentences(N_SENTENCES))
    assert not bad, bad[:3]


def test_answers_like_the_reference_told_the_homes_names(engine):
    names = home_names("all")
    reference = ReferenceEngine(IntModel.load(DEFAULT_MODEL), names)
    engine.names_clear()
    try:
        for kind, text in names.entries:
            engine.names_add(kind, text)
        bad = mismatches(engine, reference, held_out_test_sentences(N_SENTENCES))
        assert not bad, bad[:3]
    finally:
        engine.names_clear()


@pytest.mark.parametrize("data, message", [
    (b"", "empty command"),
    (b" \t\r\n", "empty command"),
    (b"x" * 513, "command too long: 513 bytes, the limit is 512"),
    (b"turn on \xff the light", "command is not valid UTF-8 (byte 0xff at offset 8)"),
    (b"\xed\xa0\x80", "command is not valid UTF-8 (byte 0xed at offset 0)"),
    (b"turn on\x00 the light", "command contains a control byte (0x00 at offset 7)"),
    (b"\x1b[2Jturn off", "command contains a control byte (0x1b at offset 0)"),
])
def test_bad_input_raises_value_error_with_the_protocols_message(engine, data, message):
    with pytest.raises(MicroPythonEngineError) as e:
        engine.classify(data)
    assert (e.value.type, e.value.message) == ("ValueError", message)


CONTROL = set(range(0x20)) - set(range(0x09, 0x0E)) | {0x7F}  # C0 controls and DEL; whitespace is fine


def test_random_bytes_never_crash(engine, reference):
    """Random bytes are answered as every engine answers them, refused with the contract's error,
    or (a control byte in an otherwise good command) refused with ValueError saying where;
    MicroPython keeps running."""
    rng = random.Random(12)
    texts = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80))) for _ in range(150)]
    texts += [b"\x00turn on\x00 the light", b"\x01\x02\x03", b"turn\toff\x0bthe\x1flights", b"turn\ton\r\n"]
    from squeezeedge.classify import classify_line

    for data in texts:
        want = classify_line(reference, data)
        if "error" not in want:
            bad = next((i for i, b in enumerate(data) if b in CONTROL), None)
            if bad is not None:
                want = {"text": want["text"], "error": f"command contains a control byte (0x{data[bad]:02x} at offset {bad})"}
        try:
            got = engine.classify(data).to_json(data.decode("utf-8", errors="replace"))
        except MicroPythonEngineError as e:
            assert e.type == "ValueError"
            got = {"text": data.decode("utf-8", errors="replace"), "error": e.message}
        assert got == want, data
    assert engine.classify(b"turn off the kitchen lights").intent == "HassTurnOff"


def test_handle_is_the_firmwares_line_protocol(engine, reference):
    """squeezeedge.handle answers a request line as the C firmware does (firmware/PROTOCOL.md)."""
    from squeezeedge.classify import classify_line

    text = "turn off the kitchen lights"
    got = engine.handle(b'{"id": 7, "text": "%s"}\r\n' % text.encode())
    assert got.pop("time_us") >= 0 and got.pop("id") == 7
    assert got == classify_line(reference, text.encode())
    assert engine.handle(b"/ping") == {"pong": True}
    assert engine.handle(b"") == {"text": "", "error": "empty command", "code": "empty"}
    assert engine.handle(b'{"cmd": "nope"}')["code"] == "unknown_command"
    assert engine.handle(b"{" + b" " * 2000 + b"}")["code"] == "line_too_long"
    info = engine.handle(b"/info")
    assert (info["device"], info["max_line"], info["arena_bytes"]) == ("micropython", 1024, engine.info["arena_bytes"])
    assert engine.handle(b"/stats")["classified"] >= 1


def test_names_errors(engine):
    def refused(kind, text):
        with pytest.raises(MicroPythonEngineError) as e:
            engine.names_add(kind, text)
        return e.value.type, e.value.message

    assert refused("room", "kitchen") == ("ValueError", "unknown kind: use area, floor, name or name:<domain>")
    assert refused("area", "   ") == ("ValueError", "name has no words")
    assert engine.names_add("area", "sunroom") >= 1
    engine.names_clear()
    assert engine._request({"cmd": "names_clear"})["names"] == 0


def test_a_full_names_table_raises_runtime_error(engine):
    engine.names_clear()
    try:
        with pytest.raises(MicroPythonEngineError) as e:
            for i in range(engine.info["names_max"] + 1):
                engine.names_add("area", f"room {i} " + "x" * (i % 7))
        assert e.value.type == "RuntimeError" and e.value.message.startswith("the names table is full (600 names")
    finally:
        engine.names_clear()


# ---- the weights blob: checked before any inference ----

def _run_unix(module_dir, script: str) -> subprocess.CompletedProcess:
    env = ports.unix_env(first=[module_dir])
    return subprocess.run([str(ports.unix()), "-c", script], env=env, cwd=module_dir, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def native_dir(tmp_path_factory):
    """The x64 native module in a folder of its own, without its blob (so that import finds none)."""
    built = natmod.build_native_module(None, "x64")
    d = tmp_path_factory.mktemp("natmod")
    (d / natmod.MPY_FILE).write_bytes(built.mpy.read_bytes())
    return d, built.weights.read_bytes()


def _tiny_blob() -> bytes:
    from squeezeedge.compiler.package import compile_model

    tiny = IntModel.load(DEFAULT_MODEL.parent / "tiny.semodel")
    return compile_model(tiny, "host", weights="blob", measure=False).blob


def _patched(blob: bytes, offset: int, value: bytes) -> bytes:
    return blob[:offset] + value + blob[offset + len(value):]


def test_a_module_without_weights_says_where_to_put_them(native_dir):
    d, _ = native_dir
    r = _run_unix(d, "import squeezeedge as s\nprint(s.weights_path)\ntry:\n s.classify('turn on the light')\n"
                     "except RuntimeError as e:\n print('RuntimeError', e)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["None", "RuntimeError no weights: put squeezeedge.bin in /rom or beside "
                                     "squeezeedge.mpy, or call squeezeedge.load(buffer)"]


@pytest.mark.parametrize("case, message", [
    ("other model", "weights blob of another model: use the squeezeedge.bin built with this module"),
    ("other version", "weights blob of another format version: rebuild it with this squeezeedge"),
    ("truncated", "weights blob truncated: copy the whole file again"),
    ("corrupt", "weights blob corrupt (CRC-32 mismatch): copy the file again"),
    ("not a blob", "not a SqueezeEdge weights blob (no SEWB header)"),
])
def test_a_wrong_blob_raises_before_any_inference(native_dir, case, message):
    d, good = native_dir
    bad = {"other model": _tiny_blob() if case == "other model" else b"",
           "other version": _patched(good, 4, b"\x02\x00"),
           "truncated": good[:-100],
           "corrupt": _patched(good, 5000, bytes([good[5000] ^ 0x40])),
           "not a blob": b"PK\x03\x04" + good[4:]}[case]
    (d / "bad.bin").write_bytes(bad)
    script = ("import squeezeedge as s\ntry:\n s.load(open('bad.bin','rb').read())\nexcept ValueError as e:\n"
              " print('ValueError', e)\ntry:\n s.classify('turn on the light')\nexcept RuntimeError as e:\n"
              " print('RuntimeError', str(e)[:10])")
    r = _run_unix(d, script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"ValueError {message}", "RuntimeError no weights"]
    # the toolchain's own reader says the same thing about the same file
    if case != "other model":
        with pytest.raises(blob_mod.BlobError):
            blob_mod.read_header(bad)


def test_the_blob_beside_the_module_is_found_and_bound_at_import(native_dir):
    d, good = native_dir
    (d / natmod.WEIGHTS_FILE).write_bytes(good)
    try:
        r = _run_unix(d, "import squeezeedge as s\nprint(s.weights_path)\nprint(s.classify('turn off the "
                         "kitchen lights')['intent'])")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["squeezeedge.bin", "HassTurnOff"]
    finally:
        (d / natmod.WEIGHTS_FILE).unlink()


def test_blob_header_and_model_h_agree():
    """The header written by compiler/blob.py is what the generated model.h expects."""
    from squeezeedge.compiler.package import compile_model

    pkg = compile_model(IntModel.load(DEFAULT_MODEL), "host", weights="blob", measure=False)
    h = blob_mod.read_header(pkg.blob)
    assert f"#define SE_MODEL_BLOB_ID 0x{h.model_id:08x}u" in pkg.model_h
    assert f"#define SE_MODEL_BLOB_PAYLOAD_BYTES {h.payload_bytes}u" in pkg.model_h
    assert h.crc32 == zlib.crc32(pkg.blob[blob_mod.HEADER_BYTES:])
    assert "static const" not in pkg.model_c.split("/* ---- helpers")[0]  # no weights in the code


# ---- the command line ----

def test_build_micropython_writes_module_blob_and_manifest(tmp_path):
    from squeezeedge.cli import main

    assert main(["build", "--micropython", "--arch", "x64", "-o", str(tmp_path / "dist")]) == 0
    m = json.loads((tmp_path / "dist" / natmod.MANIFEST_FILE).read_text())
    assert m["arch"] == "x64" and m["mpy_version"] == [6, 3]
    assert (tmp_path / "dist" / natmod.MPY_FILE).stat().st_size == m["mpy_bytes"]
    blob_mod.read_header((tmp_path / "dist" / natmod.WEIGHTS_FILE).read_bytes())
    assert main(["build", "--micropython", "-o", str(tmp_path / "x")]) == 2  # --arch is required


def test_build_micropython_usermod_writes_both_build_systems_files(tmp_path):
    from squeezeedge.cli import main

    out = tmp_path / "usermods"
    assert main(["build", "--micropython-usermod", "-o", str(out)]) == 0
    mk = (out / "squeezeedge" / "micropython.mk").read_text()
    cmake = (out / "squeezeedge" / "micropython.cmake").read_text()
    for src in natmod.CORE_SOURCES + ("model_o2.c", "model_meta.c"):
        assert src in mk and src in cmake and (out / "squeezeedge" / src).is_file()
    assert "squeezeedge/micropython.cmake" in (out / "micropython.cmake").read_text()
    assert "static const int8_t se_const0" in (out / "squeezeedge" / "model.c").read_text()  # weights in flash
    (out / "squeezeedge" / "micropython.mk").write_text("# mine\n")
    assert main(["build", "--micropython-usermod", "-o", str(out)]) == 2  # never overwrites a foreign folder
    assert (out / "squeezeedge" / "micropython.mk").read_text() == "# mine\n"


def test_classify_engine_micropython(capsys):
    from squeezeedge.cli import main

    assert main(["classify", "--engine", "micropython", "turn off the kitchen lights", ""]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["intent"] == "HassTurnOff" and lines[1] == {"text": "", "error": "empty command"}
