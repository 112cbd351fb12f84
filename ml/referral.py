"""When a photo goes to a clinician: the referral rule that each bundle records.

Taking the most probable class loses malignant lesions: on photos from other sources the README's
MobileNetV2 recipe found melanoma at argmax 53 % of the time although its one-vs-rest AUC was 0.94
(the ranking is good, the argmax decision is not). So the decision does not use the argmax. A photo
is referred when the calibrated probability of a malignant class (mel + bcc + akiec) reaches a
threshold, chosen on the validation split as the highest one that still finds a target share of
its melanomas plus a margin (unseen sources run about 7 points lower), or when the model is unsure
(its top calibrated probability is low). Pure numpy: the web app reads rules, workers apply them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ml.classes import MALIGNANT_CLASSES

MELANOMA = "mel"
TARGET_MELANOMA_SENSITIVITY = 0.90
MARGIN = 0.05
MIN_CONFIDENCE = 0.50
RULE_VERSION = 1

# Why a photo is referred, as stored on a prediction.
MALIGNANT = "malignant"
LOW_CONFIDENCE = "low_confidence"
NO_RULE = "no_rule"


class ReferralRuleError(ValueError):
    """A referral rule cannot be chosen from this data, or a recorded one is malformed."""


@dataclass(frozen=True)
class ReferralRule:
    malignant_threshold: float
    min_confidence: float = MIN_CONFIDENCE
    target_melanoma_sensitivity: float = TARGET_MELANOMA_SENSITIVITY
    margin: float = MARGIN
    # What the rule gave on the split it was chosen on (see `referral_metrics`).
    validation: dict[str, Any] = field(default_factory=dict)
    # What it gave on the external photos it was also chosen on, when there were any: photos from
    # other sources, where a model ranks lesions worse than on its own data.
    external: dict[str, Any] = field(default_factory=dict)

    def to_manifest(self) -> dict[str, Any]:
        return {"version": RULE_VERSION, "refer": asdict(self)}

    @classmethod
    def from_manifest(cls, thresholds: Mapping[str, Any] | None) -> ReferralRule | None:
        """The rule a manifest's ``decision_thresholds`` records; None when it records none."""
        if not thresholds or "refer" not in thresholds:
            return None
        if thresholds.get("version") != RULE_VERSION:
            raise ReferralRuleError(
                f"decision_thresholds version {thresholds.get('version')!r} is not {RULE_VERSION}"
            )
        raw = thresholds["refer"]
        try:
            rule = cls(
                malignant_threshold=float(raw["malignant_threshold"]),
                min_confidence=float(raw.get("min_confidence", MIN_CONFIDENCE)),
                target_melanoma_sensitivity=float(
                    raw.get("target_melanoma_sensitivity", TARGET_MELANOMA_SENSITIVITY)
                ),
                margin=float(raw.get("margin", MARGIN)),
                validation=dict(raw.get("validation") or {}),
                external=dict(raw.get("external") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReferralRuleError(f"malformed referral rule {raw!r}: {exc}") from exc
        if not (0.0 <= rule.malignant_threshold <= 1.0 and 0.0 <= rule.min_confidence <= 1.0):
            raise ReferralRuleError(f"referral thresholds must lie in [0, 1]: {raw!r}")
        return rule


@dataclass(frozen=True)
class Decision:
    refer: bool
    reasons: tuple[str, ...]
    malignant_probability: float


def _malignant_columns(class_names: Sequence[str]) -> list[int]:
    columns = [list(class_names).index(c) for c in MALIGNANT_CLASSES if c in class_names]
    if not columns:
        raise ReferralRuleError(f"none of {MALIGNANT_CLASSES} is among the classes {class_names}")
    return columns


def malignant_scores(probs: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """P(mel) + P(bcc) + P(akiec) for each row of calibrated probabilities."""
    return np.asarray(probs, dtype=np.float64)[:, _malignant_columns(class_names)].sum(axis=1)


def malignant_probability(probabilities: Mapping[str, float]) -> float:
    """P(mel) + P(bcc) + P(akiec) of one photo's calibrated probabilities by class."""
    return sum(probabilities.get(code, 0.0) for code in MALIGNANT_CLASSES)


def refer_mask(
    probs: np.ndarray, class_names: Sequence[str], rule: ReferralRule
) -> tuple[np.ndarray, np.ndarray]:
    """(referred because malignant, referred because unsure) for each row."""
    probs = np.asarray(probs, dtype=np.float64)
    malignant = malignant_scores(probs, class_names) >= rule.malignant_threshold
    unsure = probs.max(axis=1) < rule.min_confidence
    return malignant, unsure


def referral_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], rule: ReferralRule
) -> dict[str, Any]:
    """How the rule does on labelled data: the share of melanomas and of all malignant lesions it
    refers, and the share of all photos (and of benign ones) it sends to a clinician."""
    y_true = np.asarray(y_true)
    malignant, unsure = refer_mask(probs, class_names, rule)
    referred = malignant | unsure
    names = list(class_names)
    is_mel = y_true == names.index(MELANOMA) if MELANOMA in names else np.zeros_like(referred)
    is_malignant = np.isin(y_true, _malignant_columns(class_names))

    def share(mask: np.ndarray, rows: np.ndarray) -> float | None:
        return float(mask[rows].mean()) if rows.any() else None

    return {
        "threshold": rule.malignant_threshold,
        "count": len(y_true),
        "melanomas": int(is_mel.sum()),
        "melanoma_sensitivity": share(referred, is_mel),
        "malignant_sensitivity": share(referred, is_malignant),
        "referral_rate": share(referred, np.ones_like(referred)),
        "benign_referral_rate": share(referred, ~is_malignant),
        "referred_as_unsure": share(unsure & ~malignant, np.ones_like(referred)),
    }


def _highest_threshold(
    y_true: np.ndarray, probs: np.ndarray, names: list[str], required: float, where: str
) -> float:
    """The highest malignant threshold that refers at least ``required`` of the melanomas."""
    mel_scores = malignant_scores(probs, names)[np.asarray(y_true) == names.index(MELANOMA)]
    if len(mel_scores) == 0:
        raise ReferralRuleError(f"the {where} has no melanoma: no threshold can be chosen")
    # At least `needed` melanomas must score at or above the threshold: the needed-th highest.
    needed = max(1, math.ceil(required * len(mel_scores) - 1e-9))
    return float(np.sort(mel_scores)[::-1][needed - 1])


def choose_referral_rule(
    y_true: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    *,
    target: float = TARGET_MELANOMA_SENSITIVITY,
    margin: float = MARGIN,
    min_confidence: float = MIN_CONFIDENCE,
    external: tuple[np.ndarray, np.ndarray] | None = None,
) -> ReferralRule:
    """The highest malignant threshold that refers at least ``target + margin`` of the melanomas
    in (y_true, probs), which must be the validation split with calibrated probabilities.

    With ``external`` (labels and calibrated probabilities of photos from other sources), the
    threshold must reach ``target + margin`` there too: the lower of the two thresholds is kept.
    """
    names = list(class_names)
    if MELANOMA not in names:
        raise ReferralRuleError(f"no {MELANOMA!r} class among {names}")
    required = min(1.0, target + margin)
    threshold = _highest_threshold(y_true, probs, names, required, "validation split")
    if external is not None:
        threshold = min(threshold, _highest_threshold(*external, names, required, "external set"))
    rule = ReferralRule(
        malignant_threshold=threshold,
        min_confidence=min_confidence,
        target_melanoma_sensitivity=target,
        margin=margin,
    )
    return ReferralRule(
        **{
            **asdict(rule),
            "validation": referral_metrics(y_true, probs, names, rule),
            "external": referral_metrics(*external, names, rule) if external else {},
        }
    )


def referral_tradeoff(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], rule: ReferralRule
) -> list[dict[str, Any]]:
    """What each malignant threshold would give, the rule's own confidence floor kept: the
    curve a person moves along when choosing how many photos a clinic can look at."""
    # Squared steps: thresholds that refer most melanomas are small, so the grid is finest there.
    grid = np.linspace(0.0, 1.0, 51) ** 2
    thresholds = np.unique(np.concatenate([grid, [rule.malignant_threshold]]))
    return [
        {
            "threshold": float(threshold),
            **referral_metrics(
                y_true, probs, class_names, replace(rule, malignant_threshold=float(threshold))
            ),
        }
        for threshold in thresholds
    ]


def decide(probabilities: Mapping[str, float], rule: ReferralRule | None) -> Decision:
    """Refer or not, and why, for one photo's calibrated probabilities."""
    score = malignant_probability(probabilities)
    if rule is None:
        # A model without a validated rule cannot be trusted to rule anything out.
        return Decision(True, (NO_RULE,), score)
    # The same mask as on validation, so a photo is decided exactly as the rule was measured.
    names = list(probabilities)
    row = np.array([[probabilities[name] for name in names]], dtype=np.float64)
    malignant, unsure = refer_mask(row, names, rule)
    reasons = tuple(
        reason for reason, hit in ((MALIGNANT, malignant[0]), (LOW_CONFIDENCE, unsure[0])) if hit
    )
    return Decision(bool(reasons), reasons, score)
