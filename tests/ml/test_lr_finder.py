import itertools
import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest

from ml import fitting
from ml.architecture_defaults import ARCHITECTURE_DEFAULTS
from ml.cli import build_parser
from ml.lr_finder import (
    MIN_POINTS_FOR_SLOPE,
    LrRangeResult,
    find_learning_rate,
    plot_lr_range,
    suggest_learning_rate,
)
from ml.train import LR_RANGE_PLOT, REPORT_SUBDIR, TrainConfig, train
from ml.training_config import options_from_args

FEATURES = 8
CLASSES = 3


def _separable_batches(batch_size: int = 16, count: int = 64) -> object:
    """Gaussian blobs around one-hot centres: a linear model learns them in a few steps."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    labels = rng.integers(0, CLASSES, count)
    centres = np.eye(CLASSES, FEATURES) * 4.0
    x = (centres[labels] + rng.normal(0, 1, (count, FEATURES))).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, labels.astype("int32"))).batch(batch_size)


def _small_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((FEATURES,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    outputs = keras.layers.Dense(CLASSES, activation="softmax")(hidden)
    return keras.Model(inputs, outputs)


def _sgd(rate: float) -> keras.optimizers.Optimizer:
    return keras.optimizers.SGD(learning_rate=rate)


def assert_weights_unchanged(before: list[np.ndarray], model: keras.Model) -> None:
    after = model.get_weights()
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)


def test_range_test_grows_the_rate_and_restores_weights() -> None:
    model = _small_model()
    before = model.get_weights()
    # 4 batches per pass, 30 steps: the dataset is gone through several times.
    result = find_learning_rate(
        model,
        _separable_batches(),
        optimizer_factory=_sgd,
        min_lr=1e-4,
        max_lr=1.0,
        steps=30,
        class_weight={0: 1.0, 1: 2.0, 2: 0.5},
    )
    rates = result.learning_rates
    assert len(rates) == len(result.losses) > MIN_POINTS_FOR_SLOPE
    assert rates[0] == pytest.approx(1e-4)
    assert all(later > earlier for earlier, later in itertools.pairwise(rates))
    np.testing.assert_allclose(rates, np.geomspace(1e-4, 1.0, 30)[: len(rates)])
    assert all(math.isfinite(loss) for loss in result.losses)
    assert 1e-4 <= result.suggested <= 1.0
    assert_weights_unchanged(before, model)


def test_range_test_stops_when_the_loss_diverges() -> None:
    model = _small_model()
    before = model.get_weights()
    result = find_learning_rate(
        model,
        _separable_batches(),
        optimizer_factory=_sgd,
        min_lr=1e-3,
        max_lr=1e6,
        steps=60,
        smoothing=0.5,
    )
    assert 0 < len(result.learning_rates) < 60
    assert all(math.isfinite(loss) for loss in result.losses)
    assert 1e-3 <= result.suggested <= 1e6
    assert_weights_unchanged(before, model)


def test_range_test_rejects_an_empty_dataset_and_bad_ranges() -> None:
    empty = _separable_batches().take(0)
    with pytest.raises(ValueError, match="at least 1 batch"):
        find_learning_rate(_small_model(), empty, optimizer_factory=_sgd, steps=3)
    with pytest.raises(ValueError, match="min_lr < max_lr"):
        find_learning_rate(_small_model(), [], optimizer_factory=_sgd, min_lr=1.0, max_lr=0.1)


def test_suggestion_is_the_steepest_fall_before_the_minimum() -> None:
    rates = list(np.geomspace(1e-6, 1.0, 61))
    log_rates = np.log10(rates)
    # Falls fastest at 1e-3, bottoms out near 1e-1, then rises with a noise spike whose far side
    # is the steepest fall of the whole curve but lies past the minimum, so must not be chosen.
    losses = list(2.0 - np.tanh(2 * (log_rates + 3)) + 0.5 * np.maximum(log_rates + 1, 0) ** 2)
    losses[-3] += 2.0
    suggested = suggest_learning_rate(rates, losses, 1e-6, 1.0)
    assert suggested == pytest.approx(1e-3, rel=0.3)


def test_suggestion_falls_back_on_short_curves_and_is_clipped() -> None:
    assert suggest_learning_rate([1e-3, 1e-2, 1e-1], [2.0, 1.0, 3.0], 1e-5, 1.0) == pytest.approx(
        1e-3
    )
    # The fallback would be below the tested range: clipped to its bottom.
    assert suggest_learning_rate([1e-3, 1e-2], [1.0, 5.0], 1e-3, 1.0) == pytest.approx(1e-3)
    assert suggest_learning_rate([], [], 1e-5, 1.0) == pytest.approx(1e-5)


def test_plot_is_written(tmp_path: Path) -> None:
    result = LrRangeResult([1e-4, 1e-3, 1e-2, 1e-1], [2.0, 1.5, 1.0, 4.0], 1e-3)
    path = plot_lr_range(result, tmp_path / "nested" / "lr_range.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_only_densenet_runs_the_range_test_by_default() -> None:
    defaults = {name: spec.find_learning_rate for name, spec in ARCHITECTURE_DEFAULTS.items()}
    assert defaults == {"basic_cnn": False, "mobilenet_v2": False, "densenet169": True}


@pytest.mark.parametrize(
    ("flag", "expected"), [([], None), (["--find-lr"], True), (["--no-find-lr"], False)]
)
def test_cli_flag(flag: list[str], expected: bool | None) -> None:
    args = build_parser().parse_args(["train", "--data", "d", *flag])
    assert TrainConfig.from_options(options_from_args(args)).find_lr is expected


def test_train_uses_and_records_the_suggestion(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fitting, "LR_FINDER_STEPS", 12)
    out = tmp_path / "run"
    config = TrainConfig(
        data_dir=tiny_dataset,
        out_dir=out,
        architecture="basic_cnn",
        image_size=32,
        epochs=1,
        batch_size=8,
        val_fraction=0.25,
        test_fraction=0.25,
        find_lr=True,
    )
    bundle = train(config, progress=False)
    training = json.loads((bundle / "training.json").read_text())
    lr_range = training["lr_range"]
    assert 0 < len(lr_range["learning_rates"]) == len(lr_range["losses"]) <= 12
    assert training["phases"][0]["learning_rate"] == lr_range["suggested"]
    assert 1e-7 <= lr_range["suggested"] <= 1.0
    report = out / REPORT_SUBDIR
    assert (report / LR_RANGE_PLOT).is_file()
    assert (report / "summary.md").is_file()
