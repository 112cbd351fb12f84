"""How the decision rule trades overall accuracy against balanced accuracy, for one model.

A classifier trained on HAM10000 learns that 67 % of lesions are nv; taking the most probable
class then favours nv over rarer, more dangerous classes. Dividing the calibrated probabilities
by the training class frequencies raised to a power ``tau`` (0: plain argmax; 1: as if every
class were equally common) moves the decision towards the rare classes without retraining.
Sweeping ``tau`` shows what one trained model can give on both metrics; ``tau`` is chosen on the
validation split only, so the test numbers stay honest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MELANOMA = "mel"
PRIOR_SHIFT = "prior_shift"


class TopClassRuleError(ValueError):
    """A recorded top-class rule is malformed or does not fit the model's classes."""


def prior_shifted_decisions(
    probs: np.ndarray, priors: np.ndarray, tau: float, min_probability: float = 0.0
) -> np.ndarray:
    """Class indices maximising log p - tau * log prior for each row, among the classes with at
    least ``min_probability`` (the most probable class always qualifies)."""
    probs = np.asarray(probs, dtype=np.float64)
    priors = np.asarray(priors, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != priors.shape[0]:
        raise ValueError(f"probs {probs.shape} and priors {priors.shape} do not match")
    if np.any(priors <= 0):
        raise ValueError("every class needs a positive prior")
    scores = np.log(np.clip(probs, 1e-12, None)) - tau * np.log(priors)
    eligible = (probs >= min_probability) | (probs == probs.max(axis=1, keepdims=True))
    return np.where(eligible, scores, -np.inf).argmax(axis=1)


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


TAUS = tuple(np.round(np.linspace(0, 1, 21), 2))
# The named class needs at least this calibrated probability (the most probable class always
# qualifies): a prior shift strong enough for balanced accuracy would otherwise name a rare class
# the model gives 2%. A fixed safety bound, like the referral's confidence floor, not a tuned knob:
# chosen on validation, floors of 10-30% differed by less than a point there but by up to 4 points
# on photos from other sources (docs/model-card.md).
NAMED_CLASS_FLOOR = 0.10


def tradeoff_curve(
    y_true: np.ndarray,
    probs: np.ndarray,
    priors: np.ndarray,
    class_names: Sequence[str],
    taus: Sequence[float] = TAUS,
    min_probability: float = 0.0,
) -> list[dict[str, Any]]:
    return [
        {
            "tau": float(tau),
            **decision_metrics(
                y_true,
                prior_shifted_decisions(probs, priors, tau, min_probability),
                class_names,
            ),
        }
        for tau in taus
    ]


def best_tau(validation_curve: list[dict[str, Any]]) -> float:
    """The tau with the highest validation balanced accuracy (the smallest one on a tie)."""
    best = max(validation_curve, key=lambda row: (row["balanced_accuracy"], -row["tau"]))
    return float(best["tau"])


@dataclass(frozen=True)
class TopClassRule:
    """Which class a result names: the one maximising log p - tau * log prior.

    The probabilities shown and the referral decision stay the calibrated ones; only the named
    class moves towards the rare classes, by the amount that gave the best balanced accuracy on
    validation.
    """

    tau: float
    # Training class frequencies, by class code.
    priors: dict[str, float]
    validation: dict[str, Any] = field(default_factory=dict)
    # A class below this calibrated probability is never named (unless it is the most probable).
    min_probability: float = 0.0

    def decide(self, probs: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
        """The class index named for each row of calibrated probabilities."""
        missing = [name for name in class_names if name not in self.priors]
        if missing:
            raise TopClassRuleError(f"the top-class rule has no prior for {', '.join(missing)}")
        priors = np.array([self.priors[name] for name in class_names], dtype=np.float64)
        return prior_shifted_decisions(probs, priors, self.tau, self.min_probability)

    def to_manifest(self) -> dict[str, Any]:
        return {"rule": PRIOR_SHIFT, **asdict(self)}

    @classmethod
    def from_manifest(cls, raw: Mapping[str, Any]) -> TopClassRule:
        if not isinstance(raw, Mapping) or raw.get("rule") != PRIOR_SHIFT:
            raise TopClassRuleError(f"unknown top-class rule {raw!r}; only {PRIOR_SHIFT} is known")
        try:
            rule = cls(
                tau=float(raw["tau"]),
                priors={str(k): float(v) for k, v in dict(raw["priors"]).items()},
                validation=dict(raw.get("validation") or {}),
                # Bundles made before the floor existed name classes without one.
                min_probability=float(raw.get("min_probability", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TopClassRuleError(f"malformed top-class rule {raw!r}: {exc}") from exc
        if not 0.0 <= rule.tau <= 1.0 or any(p <= 0 for p in rule.priors.values()):
            raise TopClassRuleError(f"tau must lie in [0, 1] and every prior be positive: {raw!r}")
        if not 0.0 <= rule.min_probability < 1.0:
            raise TopClassRuleError(f"min_probability must lie in [0, 1): {raw!r}")
        return rule


def choose_top_class_rule(
    y_val: np.ndarray, val_probs: np.ndarray, train_labels: np.ndarray, class_names: Sequence[str]
) -> TopClassRule:
    """The prior shift with the best balanced accuracy on validation (calibrated probabilities),
    never naming a class below NAMED_CLASS_FLOOR."""
    counts = np.bincount(np.asarray(train_labels), minlength=len(class_names)).astype(np.float64)
    # A class absent from training would get an infinite boost; give it one image's worth.
    priors = np.maximum(counts, 1.0) / max(counts.sum(), 1.0)
    curve = tradeoff_curve(y_val, val_probs, priors, class_names, min_probability=NAMED_CLASS_FLOOR)
    tau = best_tau(curve)
    return TopClassRule(
        tau=tau,
        priors={name: float(p) for name, p in zip(class_names, priors, strict=True)},
        validation=next(row for row in curve if row["tau"] == tau),
        min_probability=NAMED_CLASS_FLOOR,
    )


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
