"""Loss weights per class against HAM10000's imbalance."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ml.classes import NUM_CLASSES
from ml.datasets import Sample

CLASS_WEIGHTINGS = ("balanced", "sqrt", "none")


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
