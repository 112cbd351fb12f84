"""Test-time augmentation: each photo is scored as several views and the probabilities averaged.

A lesion has no up, down, left or right, so a model trained with flips and rotations should give
the same answer for a flipped photo; averaging over views cancels part of what it gets wrong on
any one of them. A bundle records its views in the manifest, and every scorer (training's
validation and test outputs, ``ml evaluate``, the serving ``Predictor``) goes through ``score``,
so the temperature and the decision rules are fitted on the very numbers that are served.

Views are exact pixel permutations (flips, quarter turns, transposes) plus an optional centred
zoom, all computed in numpy on the model's input batch, so they cost only model calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.preprocess import resize_image

# How much of the photo the zoomed view keeps (per side), centred.
ZOOM_KEEP = 0.8


def _zoom(batch: np.ndarray) -> np.ndarray:
    size = batch.shape[1]
    keep = max(1, round(size * ZOOM_KEEP))
    start = (size - keep) // 2
    crops = batch[:, start : start + keep, start : start + keep]
    out = np.empty_like(batch)
    for index, crop in enumerate(crops):
        out[index] = resize_image(crop, size)
    return out


# Each view maps a (N, H, W, 3) batch to a batch of the same shape.
VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda b: b,
    "flip_h": lambda b: b[:, :, ::-1],
    "flip_v": lambda b: b[:, ::-1],
    "rot180": lambda b: b[:, ::-1, ::-1],
    "transpose": lambda b: b.transpose(0, 2, 1, 3),
    "rot90": lambda b: b.transpose(0, 2, 1, 3)[:, ::-1],
    "rot270": lambda b: b.transpose(0, 2, 1, 3)[:, :, ::-1],
    "anti_transpose": lambda b: b.transpose(0, 2, 1, 3)[:, ::-1, ::-1],
    "zoom": _zoom,
}
# Named sets of views, for the command line and the presets.
VIEW_SETS: dict[str, tuple[str, ...]] = {
    "none": ("identity",),
    "flips": ("identity", "flip_h", "flip_v", "rot180"),
    "dihedral": (
        "identity",
        "flip_h",
        "flip_v",
        "rot180",
        "transpose",
        "rot90",
        "rot270",
        "anti_transpose",
    ),
    "flips-zoom": ("identity", "flip_h", "flip_v", "rot180", "zoom"),
}
MERGE = "mean_probability"


class UnsupportedAugmentation(ValueError):
    """A manifest asks for a test-time view or merge this code does not compute."""


@dataclass(frozen=True)
class TestTimeAugmentation:
    # Not a test class, though pytest would collect it by its name.
    __test__ = False

    views: tuple[str, ...] = ("identity",)

    def __post_init__(self) -> None:
        unknown = [view for view in self.views if view not in VIEWS]
        if unknown or not self.views:
            raise UnsupportedAugmentation(
                f"unknown test-time view(s) {', '.join(unknown) or '(none given)'}; "
                f"this code computes {', '.join(VIEWS)}"
            )

    @classmethod
    def named(cls, name: str) -> TestTimeAugmentation:
        try:
            return cls(VIEW_SETS[name])
        except KeyError:
            raise UnsupportedAugmentation(
                f"unknown test-time augmentation {name!r}; choose one of {', '.join(VIEW_SETS)}"
            ) from None

    @property
    def count(self) -> int:
        return len(self.views)

    def expand(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) -> (views * N, H, W, 3), view by view."""
        return np.concatenate(
            [np.ascontiguousarray(VIEWS[view](batch)) for view in self.views], axis=0
        )

    def merge(self, outputs: np.ndarray, n: int) -> np.ndarray:
        """The mean over views of (views * N, classes) probabilities, as (N, classes)."""
        return np.asarray(outputs, dtype=np.float64).reshape(self.count, n, -1).mean(axis=0)

    def score(self, run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> np.ndarray:
        """``run``'s softmax outputs for ``batch``, averaged over the views."""
        if self.views == ("identity",):
            return np.asarray(run(batch), dtype=np.float64)
        return self.merge(run(self.expand(batch)), len(batch))

    def to_manifest(self) -> dict[str, Any]:
        return {"views": list(self.views), "merge": MERGE}

    @classmethod
    def from_manifest(cls, recorded: Mapping[str, Any] | None) -> TestTimeAugmentation:
        """The manifest's ``test_time_augmentation``; none recorded means the photo alone."""
        if recorded is None:
            return cls()
        if not isinstance(recorded, Mapping) or set(recorded) - {"views", "merge"}:
            raise UnsupportedAugmentation(f"malformed test-time augmentation {recorded!r}")
        if recorded.get("merge") != MERGE:
            raise UnsupportedAugmentation(
                f"test-time merge {recorded.get('merge')!r} is not computed here (only {MERGE})"
            )
        views = recorded.get("views")
        if not isinstance(views, list) or not all(isinstance(v, str) for v in views):
            raise UnsupportedAugmentation(f"test-time views must be a list of names: {views!r}")
        return cls(tuple(views))
