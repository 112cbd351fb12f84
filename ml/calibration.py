"""Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks").

A single scalar T divides the logits before the softmax. T > 1 softens over-confident
predictions, T < 1 sharpens under-confident ones, and because dividing by a positive number
never changes which logit is largest, accuracy and the confusion matrix are untouched.

Our models end in a softmax layer, so callers pass log-probabilities,
``np.log(np.clip(probs, 1e-12, 1))``; these differ from the logits only by a per-row constant,
which the softmax ignores.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from ml.metrics import as_labels

# Wide enough for any sane network; the bounds only stop a degenerate validation set (e.g. all
# predictions correct) from pushing T towards 0 or infinity.
T_MIN = 0.05
T_MAX = 20.0


def _check_log_probs(log_probs) -> np.ndarray:
    z = np.asarray(log_probs, dtype=np.float64)
    if z.ndim not in (1, 2):
        raise ValueError(f"log_probs must be 1-D or 2-D, got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError(
            "log_probs contains NaN or infinite values; clip probabilities before the log, "
            "e.g. np.log(np.clip(probs, 1e-12, 1))"
        )
    return z


def _log_softmax(z: np.ndarray) -> np.ndarray:
    # Subtracting the row maximum keeps exp() from overflowing at small temperatures.
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def apply_temperature(log_probs, temperature: float) -> np.ndarray:
    """softmax(log_probs / temperature), computed stably; rows sum to 1."""
    temperature = float(temperature)
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a positive finite number, got {temperature}")
    z = _check_log_probs(log_probs)
    return np.exp(_log_softmax(z / temperature))


def log_probabilities(probs) -> np.ndarray:
    """Log of softmax outputs, clipped so a hard 0 does not become -inf."""
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0))


def calibrate(probs, temperature: float) -> np.ndarray:
    """Temperature-scaled class probabilities from a model's softmax outputs."""
    return apply_temperature(log_probabilities(probs), temperature)


def _nll(z: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the true labels after scaling by 1/temperature."""
    return float(-_log_softmax(z / temperature)[np.arange(y.shape[0]), y].mean())


def fit_temperature(log_probs, y_true, *, bounds: tuple[float, float] = (T_MIN, T_MAX)) -> float:
    """The temperature in ``bounds`` that minimises the NLL of ``y_true`` on this data.

    Fit it on a held-out validation split, never on the test split that is then reported.
    """
    z = _check_log_probs(log_probs)
    if z.ndim != 2:
        raise ValueError(f"log_probs must be 2-D (n_samples, n_classes), got shape {z.shape}")
    y = np.asarray(y_true)
    if y.ndim != 1 or y.shape[0] != z.shape[0]:
        raise ValueError(
            f"y_true must be 1-D with one label per row of log_probs: got {y.shape} "
            f"for log_probs {z.shape}"
        )
    if y.shape[0] == 0:
        raise ValueError("cannot fit a temperature on an empty set")
    y = as_labels(y, z.shape[1])
    low, high = bounds
    if not 0 < low < high:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}")

    # The NLL is convex in 1/T, hence unimodal in log T, which is what a bounded Brent search
    # needs; searching in log T also gives equal resolution to 0.1..1 and 1..10.
    result = minimize_scalar(
        lambda log_t: _nll(z, y, np.exp(log_t)),
        bounds=(np.log(low), np.log(high)),
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(np.exp(result.x))
