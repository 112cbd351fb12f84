"""Optional regularisers of ml.train: label smoothing, decoupled weight decay, colour jitter."""

from __future__ import annotations

import colorsys
from pathlib import Path

import keras
import numpy as np
import pytest

from ml.architectures import ARCHITECTURES
from ml.augment import build_augmenter
from ml.losses import training_loss
from ml.train import TrainConfig, train


def _probabilities(rows: int = 8, seed: int = 0) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(size=(rows, 7))
    return (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype("float32")


def test_smoothed_loss_mixes_the_target_with_a_uniform_one() -> None:
    probs = _probabilities()
    labels = np.arange(8) % 7
    losses = np.asarray(training_loss(0.1)(labels, probs))
    # One value per image, so class weights still weigh each image.
    assert losses.shape == (8,)
    log_p = np.log(probs)
    expected = -(0.9 * log_p[np.arange(8), labels] + 0.1 * log_p.mean(axis=1))
    np.testing.assert_allclose(losses, expected, rtol=1e-5)


def test_unsmoothed_loss_is_plain_sparse_crossentropy() -> None:
    assert training_loss(0.0) == "sparse_categorical_crossentropy"


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_label_smoothing_outside_zero_to_one_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="label smoothing must be at least 0 and below 1"):
        training_loss(value)


def _kernel_and_bias_after_a_zero_gradient_step(
    optimizer: keras.optimizers.Optimizer,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kernel before, kernel after, bias after) one step whose gradients are all zero."""
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    layer.bias.assign(np.ones(3, dtype="float32"))
    before = np.asarray(layer.kernel).copy()
    optimizer.apply_gradients([(np.zeros(v.shape, dtype="float32"), v) for v in layer.weights])
    return before, np.asarray(layer.kernel), np.asarray(layer.bias)


@pytest.mark.parametrize("architecture", ["mobilenet_v2", "basic_cnn"])
def test_weight_decay_shrinks_kernels_but_not_biases(architecture: str) -> None:
    optimizer = ARCHITECTURES[architecture].make_optimizer(0.1, weight_decay=0.5)
    if architecture == "mobilenet_v2":
        assert isinstance(optimizer, keras.optimizers.AdamW)
    before, after, bias = _kernel_and_bias_after_a_zero_gradient_step(optimizer)
    # With a zero gradient only the decay moves a weight: w * (1 - learning rate * decay).
    np.testing.assert_allclose(after, before * (1 - 0.1 * 0.5), rtol=1e-6)
    np.testing.assert_array_equal(bias, np.ones(3))


def test_without_weight_decay_nothing_moves_on_a_zero_gradient() -> None:
    optimizer = ARCHITECTURES["mobilenet_v2"].make_optimizer(0.1)
    assert type(optimizer) is keras.optimizers.Adam
    before, after, _ = _kernel_and_bias_after_a_zero_gradient_step(optimizer)
    np.testing.assert_array_equal(after, before)


def test_negative_weight_decay_is_refused() -> None:
    with pytest.raises(ValueError, match="weight decay must not be negative"):
        ARCHITECTURES["basic_cnn"].make_optimizer(0.01, weight_decay=-1e-4)


def _flat_colour_batch(rgb: tuple[int, int, int], count: int = 16) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype="float32"), (count, 24, 24, 3)).copy()


def test_colour_jitter_changes_colour_but_not_hue() -> None:
    # A flat colour survives flips, rotation and zoom (reflect fill) unchanged, so any
    # change seen here comes from the colour steps.
    batch = _flat_colour_batch((150, 90, 70))
    plain = np.asarray(build_augmenter(seed=1)(batch, training=True))
    np.testing.assert_allclose(plain, batch, atol=1e-3)
    jittered = np.asarray(build_augmenter(seed=1, colour_jitter=0.3)(batch, training=True))
    means = jittered.mean(axis=(1, 2))
    assert np.ptp(means, axis=0).max() > 5, "colour jitter left every image as it was"
    # Still valid pixels: serving never sees values outside 0..255.
    assert jittered.min() >= -1e-3 and jittered.max() <= 255 + 1e-3
    hue = colorsys.rgb_to_hsv(*(np.array((150, 90, 70)) / 255))[0]
    for red, green, blue in means / 255:
        assert colorsys.rgb_to_hsv(red, green, blue)[0] == pytest.approx(hue, abs=0.02)


def test_colour_jitter_is_off_outside_training() -> None:
    batch = _flat_colour_batch((150, 90, 70), count=4)
    served = np.asarray(build_augmenter(seed=1, colour_jitter=0.3)(batch, training=False))
    np.testing.assert_array_equal(served, batch)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("label_smoothing", 1.5, "label smoothing must be at least 0 and below 1"),
        ("weight_decay", -0.01, "weight decay must not be negative"),
        ("colour_jitter", 1.0, "colour jitter must be at least 0 and below 1"),
    ],
)
def test_bad_regulariser_fails_before_any_data_is_read(
    tmp_path: Path, field: str, value: float, message: str
) -> None:
    config = TrainConfig(data_dir=tmp_path / "absent", out_dir=tmp_path / "run", **{field: value})
    with pytest.raises(ValueError, match=message):
        train(config, progress=False)
    assert not (tmp_path / "run").exists()
