"""How the decision rule trades overall accuracy against balanced accuracy, for one model.

A classifier trained on HAM10000 learns that 67 % of lesions are nv; taking the most probable
class then favours nv over rarer, more dangerous classes. Dividing the calibrated probabilities
by the training class frequencies raised to a power ``tau`` (0: plain argmax; 1: as if every
class were equally common) moves the decision towards the rare classes without retraining.
Sweeping ``tau`` shows what one trained model can give on both metrics; ``tau`` is chosen on the
validation split only, so the test numbers stay honest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MELANOMA = "mel"


def prior_shifted_decisions(probs: np.ndarray, priors: np.ndarray, tau: float) -> np.ndarray:
    """Class indices maximising log p - tau * log prior for each row."""
    probs = np.asarray(probs, dtype=np.float64)
    priors = np.asarray(priors, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != priors.shape[0]:
        raise ValueError(f"probs {probs.shape} and priors {priors.shape} do not match")
    if np.any(priors <= 0):
        raise ValueError("every class needs a positive prior")
    scores = np.log(np.clip(probs, 1e-12, None)) - tau * np.log(priors)
    return scores.argmax(axis=1)


def decision_metrics(
    y_true: np.ndarray, decisions: np.ndarray, class_names: Sequence[str]
) -> dict[str, float | None]:
    """Accuracy, balanced accuracy (mean recall of the classes present) and mel sensitivity."""
    y_true = np.asarray(y_true)
    recalls = [
        float(np.mean(decisions[y_true == c] == c))
        for c in range(len(class_names))
        if (y_true == c).any()
    ]
    mel = list(class_names).index(MELANOMA) if MELANOMA in class_names else None
    mel_rows = y_true == mel if mel is not None else np.zeros(len(y_true), bool)
    return {
        "accuracy": float(np.mean(decisions == y_true)),
        "balanced_accuracy": float(np.mean(recalls)),
        "melanoma_sensitivity": float(np.mean(decisions[mel_rows] == mel))
        if mel_rows.any()
        else None,
    }


def tradeoff_curve(
    y_true: np.ndarray,
    probs: np.ndarray,
    priors: np.ndarray,
    class_names: Sequence[str],
    taus: Sequence[float] = tuple(np.round(np.linspace(0, 1, 21), 2)),
) -> list[dict[str, Any]]:
    return [
        {
            "tau": float(tau),
            **decision_metrics(y_true, prior_shifted_decisions(probs, priors, tau), class_names),
        }
        for tau in taus
    ]


def best_tau(validation_curve: list[dict[str, Any]]) -> float:
    """The tau with the highest validation balanced accuracy (the smallest one on a tie)."""
    best = max(validation_curve, key=lambda row: (row["balanced_accuracy"], -row["tau"]))
    return float(best["tau"])


def plot_tradeoff(
    curves: dict[str, list[dict[str, Any]]],
    chosen_tau: float,
    path: str | Path,
    targets: dict[str, float] | None = None,
) -> Path:
    """Accuracy and balanced accuracy against tau, one line style per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    styles = {
        "accuracy": "tab:blue",
        "balanced_accuracy": "tab:orange",
        "melanoma_sensitivity": "tab:red",
    }
    for split, rows in curves.items():
        dashed = "--" if split != "test" else "-"
        taus = [row["tau"] for row in rows]
        for metric, colour in styles.items():
            values = [row[metric] for row in rows]
            if any(v is None for v in values):
                continue
            ax.plot(
                taus, values, dashed, color=colour, label=f"{metric.replace('_', ' ')} ({split})"
            )
    for metric, value in (targets or {}).items():
        ax.axhline(value, color=styles.get(metric, "grey"), linestyle=":", linewidth=1)
    ax.axvline(chosen_tau, color="grey", linewidth=1)
    ax.set_xlabel("tau (0: most probable class; 1: classes weighed as equally common)")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1)
    ax.set_title(f"Decision rule trade-off; tau chosen on validation: {chosen_tau:g}")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
