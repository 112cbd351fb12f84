"""Lesion-grouped, class-stratified splits, recorded by image id so they can be rebuilt."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml.datasets import DatasetError, Sample


@dataclass
class Split:
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    seed: int = 0
    val_fraction: float = 0.0
    test_fraction: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Image ids per split, stored in the bundle so evaluation can rebuild the test set."""
        return {
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "grouped_by": "lesion_id",
            **self.meta,
            "counts": {name: len(part) for name, part in self.parts().items()},
            **{name: [s.image_id for s in part] for name, part in self.parts().items()},
        }

    def parts(self) -> dict[str, list[Sample]]:
        return {"train": self.train, "val": self.val, "test": self.test}


def _take_group_fold(
    samples: list[Sample], fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Split off about ``fraction`` of ``samples`` as whole lesions, stratified by class."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups = {s.lesion_id for s in samples}
    if fraction <= 0 or len(groups) < 2:
        return samples, []
    largest_class = max(Counter(s.label_index for s in samples).values())
    # StratifiedGroupKFold needs some class with at least n_splits samples; on tiny data the
    # held-out share therefore grows beyond ``fraction`` rather than failing.
    n_splits = max(min(round(1.0 / fraction), len(groups), largest_class), 2)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    labels = [s.label_index for s in samples]
    lesions = [s.lesion_id for s in samples]
    with warnings.catch_warnings():
        # Rare classes with fewer lesions than folds are expected in small datasets.
        warnings.simplefilter("ignore", UserWarning)
        try:
            rest_index, held_index = next(splitter.split(np.zeros(len(samples)), labels, lesions))
        except ValueError as exc:
            raise DatasetError(f"too few images per class to split the dataset: {exc}") from exc
    return [samples[i] for i in rest_index], [samples[i] for i in held_index]


def grouped_stratified_split(
    samples: Sequence[Sample],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> Split:
    """Split by lesion (no lesion in two parts), stratified by class, reproducible per seed."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum below 1")
    if not samples:
        raise DatasetError("cannot split an empty dataset")
    ordered = sorted(samples, key=lambda s: s.image_id)
    rest, test = _take_group_fold(ordered, test_fraction, seed)
    # The validation fraction is of the whole dataset, so rescale it to what is left.
    val_of_rest = val_fraction / (1.0 - test_fraction) if test else val_fraction
    train, val = _take_group_fold(rest, val_of_rest, seed + 1)
    return Split(train, val, test, seed, val_fraction, test_fraction)


def select_by_image_ids(samples: Sequence[Sample], image_ids: Iterable[str]) -> list[Sample]:
    """Samples whose image id is listed; raises if any listed id is absent from ``samples``."""
    by_id = {s.image_id: s for s in samples}
    wanted = list(image_ids)
    absent = [i for i in wanted if i not in by_id]
    if absent:
        raise DatasetError(f"{len(absent)} image id(s) not in the dataset, e.g. {absent[0]}")
    return [by_id[i] for i in wanted]


def split_from_json(samples: Sequence[Sample], recorded: dict[str, Any]) -> Split:
    """Rebuild a recorded split over ``samples``; raises ``DatasetError`` if ids are missing."""
    parts = {
        name: select_by_image_ids(samples, recorded.get(name, []))
        for name in ("train", "val", "test")
    }
    return Split(
        parts["train"],
        parts["val"],
        parts["test"],
        int(recorded.get("seed", 0)),
        float(recorded.get("val_fraction", 0.0)),
        float(recorded.get("test_fraction", 0.0)),
    )
