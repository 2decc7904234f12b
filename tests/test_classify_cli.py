"""`squeezeedge classify`: one JSON object per input line, whatever the bytes."""

import json
import subprocess
import sys

import pytest


def classify(model_path, stdin: bytes, *args):
    proc = subprocess.run([sys.executable, "-m", "squeezeedge", "classify", "--model", str(model_path), *args],
                          input=stdin, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    return [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]


def test_answers_follow_the_contract(tiny_model_path):
    (out,) = classify(tiny_model_path, b"turn on the kitchen lights\n")
    assert set(out) == {"text", "intent", "confidence", "slots"}
    assert out["text"] == "turn on the kitchen lights"
    assert out["intent"] is None or out["intent"].startswith("Hass")
    assert 0.0 <= out["confidence"] <= 1.0 and isinstance(out["slots"], dict)


def test_text_arguments_instead_of_stdin(tiny_model_path):
    outs = classify(tiny_model_path, b"", "turn off the fan", "start a timer")
    assert [o["text"] for o in outs] == ["turn off the fan", "start a timer"]


BAD_LINES = {
    "empty": (b"", "empty command"),
    "blank": (b" \t ", "empty command"),
    "10 KB": (b"turn on the light " * 570, "too long"),
    "invalid UTF-8": (b"turn on \xff\xfe the light", "not valid UTF-8"),
    "truncated UTF-8": (b"lights \xe2\x82", "not valid UTF-8"),
}


@pytest.mark.parametrize("name", BAD_LINES)
def test_a_bad_line_gets_an_error_and_the_stream_goes_on(tiny_model_path, name):
    line, message = BAD_LINES[name]
    outs = classify(tiny_model_path, b"turn off the fan\n" + line + b"\nstart a timer\n")
    assert len(outs) == 3
    assert "intent" in outs[0] and "intent" in outs[2]
    assert set(outs[1]) == {"text", "error"} and message in outs[1]["error"]


def test_odd_but_valid_lines_are_classified(tiny_model_path):
    lines = [b"turn\x00on the\x07 light", b"\x1b[31mlights on\x1b[0m", "lights on \U0001F4A1\U0001F525".encode(),
             "caf\u00e9 lights".encode(), b"!!!???", b"1234567890", b"turn on the lights\r"]
    outs = classify(tiny_model_path, b"\n".join(lines) + b"\n")
    assert len(outs) == len(lines)
    for out in outs:
        assert "error" not in out, out
        assert out["intent"] is None or isinstance(out["intent"], str)
    assert outs[-1]["text"] == "turn on the lights"  # CRLF input


def test_random_bytes_never_break_the_stream(tiny_model_path):
    import random

    rng = random.Random(7)
    blob = bytes(rng.randrange(256) for _ in range(20_000))
    n_lines = blob.count(b"\n") + (not blob.endswith(b"\n"))
    outs = classify(tiny_model_path, blob)
    assert len(outs) == n_lines
    assert all(("error" in o) != ("intent" in o) for o in outs)


def test_a_missing_model_file_is_one_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "squeezeedge", "classify", "--model", str(tmp_path / "nope.semodel"),
                           "hi"], capture_output=True, timeout=60)
    assert proc.returncode == 2
    assert b"no such model file" in proc.stderr and len(proc.stderr.splitlines()) == 1


def _not_models(tmp_path):
    import numpy as np

    rand = tmp_path / "random.semodel"
    rand.write_bytes(bytes(range(256)) * 7)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros((3, 4), np.int8), bias=np.ones(4))
    text = tmp_path / "notes.txt"
    text.write_text("turn on the kitchen lights\n")
    return {rand: "not a zip archive", other: "an archive of 2 arrays without meta.json", text: "not a zip archive"}


def test_a_file_that_is_not_a_model_is_named_as_such(tmp_path):
    """Not numpy's "allow_pickle" advice (issue 18): a random file, an .npz of other arrays, a text file."""
    from squeezeedge.models.model_file import IntModel, ModelFileError

    for path, why in _not_models(tmp_path).items():
        with pytest.raises(ModelFileError) as e:
            IntModel.load(path)
        assert str(e.value).startswith(f"{path} is not a SqueezeEdge model file ({why}")
        assert "pickle" not in str(e.value)
    rand = next(iter(_not_models(tmp_path)))
    proc = subprocess.run([sys.executable, "-m", "squeezeedge", "classify", "--model", str(rand), "hi"],
                          capture_output=True, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert b"is not a SqueezeEdge model file (not a zip archive" in proc.stderr and b"pickle" not in proc.stderr


def test_a_names_file_tells_classify_the_homes_names(tiny_model_path, tmp_path):
    from squeezeedge.classify import classify_line
    from squeezeedge.models.engine import ReferenceEngine
    from squeezeedge.models.gazetteer import HomeNames
    from squeezeedge.models.model_file import IntModel

    names = tmp_path / "home.json"
    names.write_text(json.dumps({"area": ["sunroom"], "name": {"light": ["reading lamp"]}}))
    text = b"turn on the reading lamp in the sunroom"
    engine = ReferenceEngine(IntModel.load(tiny_model_path), HomeNames.load(names))
    pieces = [engine.model.vocab[i] for i in engine.encoder.encode(text).ids]
    assert [p for p in pieces if p.startswith("[") and p != "[CLS]"] == ["[name:light]", "[area]"]
    (out,) = classify(tiny_model_path, text + b"\n", "--names", str(names))
    assert out == classify_line(engine, text)


def test_a_bad_names_file_is_one_clear_error(tiny_model_path, tmp_path):
    names = tmp_path / "home.json"
    names.write_text('{"rooms": ["sunroom"]}')
    proc = subprocess.run([sys.executable, "-m", "squeezeedge", "classify", "--model", str(tiny_model_path),
                           "--names", str(names), "hello"], capture_output=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.decode().count("\n") == 1 and "unknown key(s) ['rooms']" in proc.stderr.decode()


def test_eval_measures_with_the_example_homes_names_unless_told_otherwise(tiny_model_path):
    def eval_json(*args):
        proc = subprocess.run([sys.executable, "-m", "squeezeedge", "eval", "--model", str(tiny_model_path),
                               "--split", "paraphrase", "--json", *args], capture_output=True, timeout=300)
        assert proc.returncode == 0, proc.stderr.decode()
        (engine, metrics), = json.loads(proc.stdout)["paraphrase"].items()
        assert metrics["n_in_scope"] >= 200
        return engine

    from squeezeedge.models.engine import tokenizer_for
    from squeezeedge.models.gazetteer import readable
    from squeezeedge.models.model_file import IntModel
    from squeezeedge.names import example_home

    # every name the model can hold (this small test model's max_len cuts a long one)
    held = readable(tokenizer_for(IntModel.load(tiny_model_path)), example_home())
    assert 500 < len(held) <= len(example_home())
    assert eval_json() == f"reference, {len(held)} home names"
    assert eval_json("--no-names") == "reference, no home names"
