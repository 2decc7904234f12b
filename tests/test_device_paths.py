"""The whole held-out test split, answered by the firmware over serial and over MQTT, equals
the integer reference — and the end-to-end benchmark loses nothing with requests in flight."""

import pytest

from squeezeedge.classify import classify_line
from squeezeedge.e2e_bench import measure
from squeezeedge.models.dataset import build_dataset
from squeezeedge.models.engine import DEFAULT_MODEL, ReferenceEngine
from squeezeedge.models.model_file import IntModel
from squeezeedge.engines import open_device_engine, open_mqtt_engine


@pytest.fixture(scope="module")
def held_out_test():
    model = IntModel.load(DEFAULT_MODEL)
    texts = [ex.text for ex in build_dataset(seed=model.info.get("seed", 0)).test]
    reference = ReferenceEngine(model)
    return texts, [classify_line(reference, t.encode()) for t in texts]


def _answers(device, texts):
    fields = ("text", "intent", "confidence", "slots")
    return [{k: reply[k] for k in fields if k in reply} for reply in map(device.classify_json, (t.encode() for t in texts))]


def test_every_held_out_sentence_over_serial_equals_the_reference(held_out_test):
    texts, expected = held_out_test
    with open_device_engine("emulator") as device:
        assert _answers(device, texts) == expected


def test_every_held_out_sentence_over_mqtt_equals_the_reference(held_out_test):
    texts, expected = held_out_test
    with open_mqtt_engine(None, "e2e-test") as device:
        assert _answers(device, texts) == expected


def test_the_benchmark_keeps_requests_in_flight_and_loses_none(held_out_test):
    texts = held_out_test[0][:60]
    with open_device_engine("emulator") as device:
        result = measure("serial", device.transport, texts, in_flight=20)
    assert (result.requests, result.lost, result.duplicated) == (60, 0, 0)
    assert result.p50_ms > 0 and result.per_second > 0
