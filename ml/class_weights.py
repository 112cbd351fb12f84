"""Against HAM10000's imbalance: loss weights per class, or how often training draws each class."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from ml.classes import NUM_CLASSES
from ml.datasets import Sample

CLASS_WEIGHTINGS = ("balanced", "sqrt", "none")
# How training draws its photos: in proportion to the data ("shuffle"), or resampled so that each
# class is drawn in proportion to the square root of its count ("sqrt") or equally ("balanced").
SAMPLINGS = ("shuffle", "sqrt", "balanced")


def class_weights(
    samples: Sequence[Sample], num_classes: int = NUM_CLASSES, mode: str = "balanced"
) -> dict[int, float]:
    """Loss weights per class against HAM10000's imbalance (nv is 67% of images, df 1%).

    ``balanced`` is n / (k * count); ``sqrt`` its square root, a softer pull that trades less
    overall accuracy for minority-class recall; ``none`` weighs every class 1. Classes with no
    samples get 1.0 (never used).
    """
    if mode not in CLASS_WEIGHTINGS:
        raise ValueError(
            f"class weighting must be one of {', '.join(CLASS_WEIGHTINGS)}, not {mode!r}"
        )
    counts = Counter(s.label_index for s in samples)
    present = len(counts)
    total = len(samples)
    weights = {}
    for c in range(num_classes):
        balanced = total / (present * counts[c]) if counts[c] else 1.0
        weights[c] = {"balanced": balanced, "sqrt": balanced**0.5, "none": 1.0}[mode]
    return weights


def sampling_distribution(
    samples: Sequence[Sample], mode: str, num_classes: int = NUM_CLASSES
) -> np.ndarray | None:
    """The share of training draws per class under ``mode`` (None for plain shuffling); classes
    with no sample get none."""
    if mode not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, not {mode!r}")
    if mode == "shuffle":
        return None
    counts = np.bincount([s.label_index for s in samples], minlength=num_classes).astype(float)
    weights = np.sqrt(counts) if mode == "sqrt" else (counts > 0).astype(float)
    return weights / weights.sum()
