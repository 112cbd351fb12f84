"""Evaluation metrics for the seven-class lesion classifier.

Everything here works on plain arrays (integer labels and softmax probabilities) and returns
plain Python numbers, so the results can go straight into ``metrics.json`` and into the web
app's model card without TensorFlow or Django being importable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from ml.classes import CLASSES

# Softmax outputs are float32 and rounded, so rows never sum to exactly 1; anything further off
# than this is almost certainly logits or log-probabilities passed by mistake.
_ROW_SUM_TOLERANCE = 1e-3
# Keeps log_loss finite when a model gives the true class a probability of exactly zero.
_LOG_EPS = 1e-15
MELANOMA = "mel"


def validate_inputs(y_true, probs, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Check labels and probabilities; return them as an int vector and a float matrix.

    Raises ValueError with a message that says what is wrong, because a silent broadcast or a
    transposed matrix would otherwise produce plausible-looking but meaningless numbers.
    """
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"y_true must be a 1-D array of class indices, got shape {y.shape}")
    if p.ndim != 2:
        raise ValueError(f"probs must be a 2-D array (n_samples, n_classes), got shape {p.shape}")
    if y.shape[0] != p.shape[0]:
        raise ValueError(
            f"y_true has {y.shape[0]} samples but probs has {p.shape[0]} rows; they must match"
        )
    if y.shape[0] == 0:
        raise ValueError("cannot evaluate an empty set: y_true and probs have no samples")
    if n_classes is not None and p.shape[1] != n_classes:
        raise ValueError(f"probs has {p.shape[1]} columns but there are {n_classes} class names")
    if not np.all(np.isfinite(p)):
        raise ValueError("probs contains NaN or infinite values")
    if np.any(p < 0) or np.any(p > 1 + _ROW_SUM_TOLERANCE):
        raise ValueError("probs must lie in [0, 1]; pass softmax probabilities, not logits")
    row_sums = p.sum(axis=1)
    bad = np.flatnonzero(np.abs(row_sums - 1.0) > _ROW_SUM_TOLERANCE)
    if bad.size:
        raise ValueError(
            f"{bad.size} rows of probs do not sum to 1 (row {bad[0]} sums to "
            f"{row_sums[bad[0]]:.6f}); pass softmax probabilities, not logits"
        )
    return as_labels(y, p.shape[1]), p


def as_labels(y_true, n_classes: int) -> np.ndarray:
    """y_true as an int64 vector, after checking every label is in 0..n_classes-1."""
    y = np.asarray(y_true)
    # Accept float arrays holding whole numbers (e.g. labels read back from CSV or tf.data),
    # but nothing that would be truncated silently.
    whole_numbers = np.issubdtype(y.dtype, np.number) and np.all(np.equal(np.mod(y, 1), 0))
    if not np.issubdtype(y.dtype, np.integer) and not whole_numbers:
        raise ValueError("y_true must hold integer class indices")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"y_true holds labels outside 0..{n_classes - 1} (min {y.min()}, max {y.max()})"
        )
    return y


def _ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is zero (metric undefined)."""
    return float(numerator / denominator) if denominator else None


def _top_class_bins(y: np.ndarray, p: np.ndarray, n_bins: int):
    """Per-bin count, mean confidence and accuracy of the top-class prediction."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    # Bins are [lower, upper); a confidence of exactly 1.0 belongs to the last bin.
    index = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    conf_sums = np.bincount(index, weights=confidence, minlength=n_bins)
    correct_sums = np.bincount(index, weights=correct, minlength=n_bins)
    return counts, conf_sums, correct_sums


def reliability_bins(y_true, probs, n_bins: int = 15) -> list[dict]:
    """Equal-width bins over top-class confidence, for a reliability diagram.

    Each bin is ``{lower, upper, count, confidence, accuracy}``; ``confidence`` and
    ``accuracy`` are the means over the bin's samples and None for an empty bin.
    """
    y, p = validate_inputs(y_true, probs)
    counts, conf_sums, correct_sums = _top_class_bins(y, p, n_bins)
    bins = []
    for b in range(n_bins):
        count = int(counts[b])
        bins.append(
            {
                "lower": b / n_bins,
                "upper": (b + 1) / n_bins,
                "count": count,
                "confidence": _ratio(conf_sums[b], count),
                "accuracy": _ratio(correct_sums[b], count),
            }
        )
    return bins


def expected_calibration_error(y_true, probs, n_bins: int = 15) -> float:
    """ECE (Guo et al. 2017): sample-weighted mean |accuracy - confidence| over the bins."""
    y, p = validate_inputs(y_true, probs)
    _, conf_sums, correct_sums = _top_class_bins(y, p, n_bins)
    # sum_b (n_b / n) * |acc_b - conf_b| = sum_b |correct_b - conf_b| / n; empty bins add 0.
    return float(np.abs(correct_sums - conf_sums).sum() / y.shape[0])


def _roc_auc(y: np.ndarray, p: np.ndarray, class_names: Sequence[str]) -> dict:
    """One-vs-rest ROC AUC per class; None where a class is absent or is the only class."""
    aucs: dict[str, float | None] = {}
    for k, name in enumerate(class_names):
        positives = y == k
        if positives.all() or not positives.any():
            aucs[name] = None
        else:
            aucs[name] = float(roc_auc_score(positives, p[:, k]))
    defined = [v for v in aucs.values() if v is not None]
    aucs["macro"] = float(np.mean(defined)) if defined else None
    return aucs


def classification_metrics(
    y_true, probs, class_names: Sequence[str] = CLASSES, predicted=None
) -> dict:
    """All the numbers reported for a model on one labelled set, as a JSON-ready dict.

    ``y_true`` holds class indices into ``class_names``; ``probs`` is (n, len(class_names))
    softmax output. The named classes are ``predicted`` (a bundle's top-class rule) or, when it is
    not given, the argmax of ``probs``; calibration and AUC always use the probabilities.
    """
    class_names = list(class_names)
    k = len(class_names)
    y, p = validate_inputs(y_true, probs, n_classes=k)
    n = int(y.shape[0])
    pred = p.argmax(axis=1) if predicted is None else as_labels(predicted, k)
    if pred.shape != y.shape:
        raise ValueError(f"predicted has shape {pred.shape}, y_true {y.shape}; they must match")

    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm)

    per_class = {}
    f1s = []
    recalls = []
    for i, name in enumerate(class_names):
        recall = _ratio(tp[i], support[i])
        if recall is not None:
            recalls.append(recall)
        # Undefined precision/recall (class never predicted / never present) reads as 0, the
        # usual convention, so the JSON stays numeric for plots and tables.
        precision = _ratio(tp[i], predicted[i]) or 0.0
        recall = recall or 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": precision,
            "recall": recall,
            "f1": float(f1),
            "support": int(support[i]),
        }
        # A class neither present nor predicted has no meaningful F1; leave it out of the mean
        # rather than dragging macro F1 down with a zero.
        if support[i] or predicted[i]:
            f1s.append(f1)

    if MELANOMA in class_names:
        m = class_names.index(MELANOMA)
        true_pos = cm[m, m]
        false_neg = support[m] - true_pos
        false_pos = predicted[m] - true_pos
        true_neg = n - true_pos - false_neg - false_pos
        melanoma = {
            "sensitivity": _ratio(true_pos, true_pos + false_neg),
            "specificity": _ratio(true_neg, true_neg + false_pos),
        }
    else:
        melanoma = {"sensitivity": None, "specificity": None}

    true_class_prob = np.clip(p[np.arange(n), y], _LOG_EPS, 1.0)
    return {
        "n": n,
        "accuracy": float(tp.sum() / n),
        # Mean recall over the classes that occur: the ISIC 2018 challenge metric, which is
        # not dominated by the nevus majority the way plain accuracy is.
        "balanced_accuracy": float(np.mean(recalls)),
        "per_class": per_class,
        "macro_f1": float(np.mean(f1s)),
        "confusion_matrix": cm.tolist(),
        "roc_auc": _roc_auc(y, p, class_names),
        "melanoma": melanoma,
        "ece": expected_calibration_error(y, p),
        "log_loss": float(-np.log(true_class_prob).mean()),
    }
