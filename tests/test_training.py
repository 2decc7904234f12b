"""A tiny but real training run, end to end: data → vocabulary → float → int8 → metrics."""

import numpy as np
import torch

from squeezeedge.models import reference
from squeezeedge.models.model_file import IntModel


def test_training_produces_a_valid_model_file_that_round_trips(tiny_training, tiny_model_path):
    loaded = IntModel.load(tiny_model_path)
    original = tiny_training.model
    assert loaded.vocab == original.vocab and loaded.intents == original.intents
    assert loaded.arrays.keys() == original.arrays.keys()
    assert all(np.array_equal(loaded[k], original[k]) for k in original.arrays)
    assert loaded.info["metrics"]["test"]["int8"]["n_in_scope"] > 0


def test_a_short_run_learns_far_above_chance(tiny_training):
    """42 intents + out of scope: chance is about 2%; a 32-wide one-layer model on a tenth of
    the data for a few seconds gets past 40% on held-out templates."""
    test = tiny_training.metrics["test"]
    assert test["float"].intent_accuracy > 0.4
    assert test["int8"].intent_accuracy > 0.4
    assert test["int8"].oos_rejection > 0.5


def test_int8_reference_agrees_with_the_float_model(tiny_training, tiny_dataset):
    """Quantization may move a borderline answer, but the int8 logits must track the float ones."""
    from squeezeedge.models.engine import tokenizer_for

    model = tiny_training.model
    tok = tokenizer_for(model)
    float_model = tiny_training.float_model
    agree, n = 0, 0
    for ex in tiny_dataset.test[:300]:
        enc = tok.encode(ex.text)
        ints = reference.run(model, enc.ids)
        with torch.no_grad():
            floats, _ = float_model(torch.tensor([enc.ids]), torch.tensor([len(enc)]))
        agree += int(np.argmax(ints.intent)) == int(torch.argmax(floats[0]))
        n += 1
    assert agree / n >= 0.95


def test_the_same_seed_gives_the_same_model(tiny_dataset, tiny_training):
    from squeezeedge.models.train import TrainOptions, run_training
    from conftest import TINY

    again = run_training(tiny_dataset, TrainOptions(config=TINY, epochs=10, progress=False))
    assert all(np.array_equal(again.model[k], tiny_training.model[k]) for k in tiny_training.model.arrays)


def test_another_init_seed_is_another_run_on_the_same_split(tiny_dataset, tiny_training):
    from squeezeedge.models.train import TrainOptions, run_training
    from conftest import TINY

    other = run_training(tiny_dataset, TrainOptions(config=TINY, epochs=10, init_seed=7, progress=False))
    assert other.model.info["seed"] == 0 and other.model.info["init_seed"] == 7  # eval rebuilds split 0
    assert tiny_training.model.info["init_seed"] == 0
    assert not np.array_equal(other.model["embed.token"], tiny_training.model["embed.token"])
