from pathlib import Path

import numpy as np
import pytest

from ml.classes import CLASSES
from ml.operating_points import (
    best_tau,
    decision_metrics,
    plot_tradeoff,
    prior_shifted_decisions,
    tradeoff_curve,
)


def _skewed_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eight nv and two mel lesions; the model leans to nv, so both mel get called nv at tau 0."""
    priors = np.array([0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02])
    y = np.array([5] * 8 + [4] * 2)
    probs = np.full((10, 7), 0.01)
    probs[:8, 5] = 0.9
    probs[:8, 4] = 0.04
    probs[8:, 5] = 0.55
    probs[8:, 4] = 0.39
    return y, probs / probs.sum(axis=1, keepdims=True), priors


def test_tau_zero_is_the_most_probable_class() -> None:
    _y, probs, priors = _skewed_case()
    np.testing.assert_array_equal(prior_shifted_decisions(probs, priors, 0.0), probs.argmax(axis=1))


def test_prior_shift_recovers_the_rare_class_on_this_case() -> None:
    y, probs, priors = _skewed_case()
    plain = decision_metrics(y, prior_shifted_decisions(probs, priors, 0.0), CLASSES)
    shifted = decision_metrics(y, prior_shifted_decisions(probs, priors, 1.0), CLASSES)
    assert plain == {"accuracy": 0.8, "balanced_accuracy": 0.5, "melanoma_sensitivity": 0.0}
    assert shifted == {"accuracy": 1.0, "balanced_accuracy": 1.0, "melanoma_sensitivity": 1.0}


def test_best_tau_is_the_smallest_with_top_balanced_accuracy() -> None:
    y, probs, priors = _skewed_case()
    curve = tradeoff_curve(y, probs, priors, CLASSES, taus=[0.0, 0.25, 0.5, 0.75, 1.0])
    top = max(row["balanced_accuracy"] for row in curve)
    chosen = best_tau(curve)
    assert next(row["tau"] for row in curve if row["balanced_accuracy"] == top) == chosen
    assert chosen > 0


def test_mismatched_shapes_and_zero_priors_are_refused() -> None:
    _y, probs, priors = _skewed_case()
    with pytest.raises(ValueError, match="do not match"):
        prior_shifted_decisions(probs[:, :6], priors, 0.5)
    with pytest.raises(ValueError, match="positive prior"):
        prior_shifted_decisions(probs, np.zeros(7), 0.5)


def test_plot_is_written(tmp_path: Path) -> None:
    y, probs, priors = _skewed_case()
    curve = tradeoff_curve(y, probs, priors, CLASSES)
    path = plot_tradeoff(
        {"validation": curve, "test": curve}, 0.5, tmp_path / "t.png", {"accuracy": 0.86}
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
