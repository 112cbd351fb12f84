"""What a bundle's manifest says about turning photos into calibrated answers, checked once.

Training (its validation and test outputs), ``ml evaluate`` and the serving ``Predictor`` all score
through a ``ServingRecipe``: the same preprocessing, test-time views and temperature, so the
decision rules fitted when a bundle is made hold for what it serves. No Keras here: ``run`` is
whatever computes the model's softmax for a batch (ONNX Runtime, a Keras model).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ml.bundle import BundleError
from ml.calibration import calibrate
from ml.decisions import DecisionRuleError, DecisionRules
from ml.preprocess import Preprocessing, UnsupportedPreprocessing
from ml.tta import TestTimeAugmentation, UnsupportedAugmentation

# Keeps peak memory bounded when a caller hands over a large list at once: at most this many
# model inputs (photos times test-time views) go into one model call.
MAX_BATCH = 32

Run = Callable[[np.ndarray], np.ndarray]


class ServingRecipe:
    """What a manifest says about turning photos into calibrated answers, checked once."""

    def __init__(self, manifest: Mapping[str, Any]) -> None:
        self.input_size = int(manifest["input_size"])
        self.class_names: list[str] = list(manifest["class_names"])
        self.preprocessing = Preprocessing.from_manifest(manifest["preprocessing"], self.input_size)
        self.tta = TestTimeAugmentation.from_manifest(manifest.get("test_time_augmentation"))
        self.temperature = float(manifest.get("calibration_temperature") or 1.0)
        # No referral rule: every photo the bundle classifies is referred.
        self.rules = DecisionRules.from_manifest(manifest.get("decision_thresholds"))

    @classmethod
    def checked(cls, manifest: Mapping[str, Any], where: str | Path) -> ServingRecipe:
        try:
            return cls(manifest)
        except (UnsupportedPreprocessing, UnsupportedAugmentation, DecisionRuleError) as exc:
            raise BundleError(f"bundle {where}: {exc}") from exc

    def raw_probabilities(self, run: Run, batch: np.ndarray) -> np.ndarray:
        """``run``'s softmax outputs for a (N, size, size, 3) batch, merged over the views."""
        if len(batch) == 0:
            return np.zeros((0, len(self.class_names)), dtype=np.float64)
        step = max(1, MAX_BATCH // self.tta.count)
        outputs = [
            self.tta.score(run, np.ascontiguousarray(batch[start : start + step]))
            for start in range(0, len(batch), step)
        ]
        return np.concatenate(outputs, axis=0)

    def probabilities(self, run: Run, batch: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape (N, num_classes)."""
        return calibrate(self.raw_probabilities(run, batch), self.temperature)
