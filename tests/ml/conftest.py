"""Shared fixtures for the ml/ tests: tiny synthetic data, one tiny trained bundle."""

from __future__ import annotations

import os

# Must be set before TensorFlow is first imported by any test module.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TINY_SIZE = 32


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.ml.synthetic import write_tiny_dataset

    return write_tiny_dataset(tmp_path_factory.mktemp("tiny") / "ham", per_class=6, size=TINY_SIZE)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path) -> Path:
    """A basic_cnn trained for one epoch on the tiny dataset; returns the bundle path."""
    from ml.train import TrainConfig, train

    config = TrainConfig(
        data_dir=tiny_dataset,
        out_dir=tmp_path_factory.mktemp("run") / "basic",
        architecture="basic_cnn",
        image_size=TINY_SIZE,
        epochs=1,
        batch_size=8,
        val_fraction=0.25,
        test_fraction=0.25,
    )
    return train(config, progress=False)


@pytest.fixture(scope="session", autouse=True)
def local_services() -> None:
    """ml/ talks to no database, broker or S3: shadow tests/conftest.py's service start-up.

    This keeps the ml tests runnable without Django settings (``-p no:django``) and fast.
    """
    return None
