"""The training losses a run can choose, on the integer labels the datasets yield.

Keras is imported when a loss is built, not with this module: the training worker's prefork
parent imports ``ml.train`` and must stay free of TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ml.classes import NUM_CLASSES
from ml.datasets import Sample, sample_labels
from ml.training_config import check_label_smoothing


def training_loss(
    label_smoothing: float = 0.0, kind: str = "crossentropy", priors: np.ndarray | None = None
) -> Any:
    """The loss on the integer labels the datasets yield; one value per sample, so class weights
    still apply per sample.

    ``crossentropy``, optionally label-smoothed (Keras' sparse form cannot smooth, so targets
    are one-hot encoded inside the loss); ``focal`` (gamma 2: easy photos, mostly nevi, count
    less); ``logit_adjusted`` (Menon et al. 2021): the log of the training class frequencies
    ``priors`` is added to the model's log-probabilities inside the loss only, so the model is
    pushed to separate the rare classes as firmly as the common ones and serves unadjusted.
    """
    check_label_smoothing(label_smoothing)
    if kind == "crossentropy" and not label_smoothing:
        return "sparse_categorical_crossentropy"
    import keras

    ops = keras.ops

    def targets(y_true: Any, y_pred: Any) -> Any:
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        return ops.one_hot(labels, ops.shape(y_pred)[-1])

    if kind == "focal":

        def focal_crossentropy(y_true: Any, y_pred: Any) -> Any:
            return keras.losses.categorical_focal_crossentropy(
                targets(y_true, y_pred), y_pred, alpha=1.0, gamma=2.0,
                label_smoothing=label_smoothing,
            )  # fmt: skip

        return focal_crossentropy
    if kind == "logit_adjusted":
        if priors is None:
            raise ValueError("the logit-adjusted loss needs the training class frequencies")
        log_priors = ops.convert_to_tensor(np.log(np.maximum(priors, 1e-6)), "float32")

        def logit_adjusted_crossentropy(y_true: Any, y_pred: Any) -> Any:
            logits = ops.log(ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0)) + log_priors
            return keras.losses.categorical_crossentropy(
                targets(y_true, y_pred), logits, from_logits=True, label_smoothing=label_smoothing
            )

        return logit_adjusted_crossentropy

    def smoothed_crossentropy(y_true: Any, y_pred: Any) -> Any:
        return keras.losses.categorical_crossentropy(
            targets(y_true, y_pred), y_pred, label_smoothing=label_smoothing
        )

    return smoothed_crossentropy


def class_priors(samples: list[Sample]) -> np.ndarray:
    """Training class frequencies in class order (a class with no image counts as one)."""
    counts = np.bincount(sample_labels(samples), minlength=NUM_CLASSES).astype(np.float64)
    counts = np.maximum(counts, 1.0)
    return counts / counts.sum()
