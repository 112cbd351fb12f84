"""The tf.data input pipeline that feeds training and evaluation, and scoring a model through it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ml.datasets import Sample
from ml.preprocess import Preprocessing
from ml.recipe import ServingRecipe


def make_dataset(
    samples: Sequence[Sample],
    preprocessing: Preprocessing,
    batch_size: int,
    *,
    training: bool,
    cache: bool | str = True,
    seed: int = 0,
    class_draws: np.ndarray | None = None,
) -> Any:
    """A ``tf.data.Dataset`` of (float32 0..255 images, int class labels) batches.

    Images go through ``preprocessing.from_file``, the serving preprocessing; the result is cached
    (``True``: memory, a string: that file prefix), so after the first epoch a batch costs a copy.
    With ``class_draws`` (per-class shares, ``ml.class_weights.sampling_distribution``), a training
    epoch draws the classes in those shares instead of the data's.
    Augmentation is not done here but in the training step (``ml.train.augmented``): on a 2-core
    machine every CPU cycle the pipeline spends is taken from the model, and inside the step it
    runs fused with the model.
    """
    import tensorflow as tf

    size = preprocessing.size
    paths = [str(s.path) for s in samples]
    labels = np.array([s.label_index for s in samples], dtype=np.int32)
    ds = tf.data.Dataset.from_tensor_slices((paths, labels))

    def load(path: Any, label: Any) -> tuple[Any, Any]:
        image = tf.numpy_function(preprocessing.from_file, [path], tf.float32, stateful=False)
        image.set_shape([size, size, 3])
        return image, label

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if training:
        ds = ds.shuffle(max(len(paths), 1), seed=seed, reshuffle_each_iteration=True)
        if class_draws is not None:
            ds = _resampled(ds, labels, class_draws, seed)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _resampled(ds: Any, labels: np.ndarray, class_draws: np.ndarray, seed: int) -> Any:
    """An epoch of as many photos as the data holds, drawn with each class's share ``class_draws``
    (rare classes repeated, common ones skipped). Reads come from the cache, so a skipped photo
    costs a copy, not a decode."""
    initial = np.bincount(labels, minlength=len(class_draws)).astype(np.float64)
    initial /= max(initial.sum(), 1.0)
    resampled = ds.repeat().rejection_resample(
        lambda _image, label: label,
        target_dist=np.asarray(class_draws, dtype=np.float64),
        initial_dist=initial,
        seed=seed,
    )
    return resampled.map(lambda _class, pair: pair).take(len(labels))


def score_dataset(model: Any, recipe: ServingRecipe, dataset: Any) -> np.ndarray:
    """The model's raw softmax outputs over an evaluation ``dataset`` (in its order), through the
    recipe's test-time views: the numbers a temperature is fitted on and a bundle serves."""
    outputs = [
        recipe.raw_probabilities(model.predict_on_batch, np.asarray(images))
        for images, _labels in dataset
    ]
    if not outputs:
        return np.zeros((0, len(recipe.class_names)), dtype=np.float64)
    return np.concatenate(outputs, axis=0)
