"""Shared fixtures: models small enough to build in seconds, real enough to mean something."""

from __future__ import annotations

import pytest

from squeezeedge.models.config import ModelConfig

TINY = ModelConfig(vocab_size=256, max_len=16, hidden=32, layers=1, heads=2, ffn=64, groups=4)


@pytest.fixture(scope="session")
def tiny_dataset():
    from squeezeedge.models.dataset import build_dataset

    return build_dataset(seed=0, samples_per_template=3)


@pytest.fixture(scope="session")
def tiny_training(tiny_dataset):
    """A real (if short) run of the whole training pipeline on the real data."""
    from squeezeedge.models.train import TrainOptions, run_training

    return run_training(tiny_dataset, TrainOptions(config=TINY, epochs=10, progress=False))


@pytest.fixture(scope="session")
def tiny_model_path(tiny_training, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.semodel"
    tiny_training.model.save(path)
    return path
