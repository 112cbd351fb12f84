"""The numbers a model is judged by on one labelled set, with its decision rules applied.

Training (the held-out split and the external photos), ``ml evaluate`` and the portal's
evaluations all call ``judge``, so a number means the same wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ml.decisions import DecisionRules
from ml.metrics import classification_metrics
from ml.operating_points import decision_metrics
from ml.referral import refer_mask, referral_metrics, referral_tradeoff
from ml.subgroups import subgroup_report


def judge(
    y_true: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    rules: DecisionRules,
    attributes: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """``classification_metrics`` on the classes ``rules`` name, plus the referral rule's numbers
    and trade-off curve, and the subgroup report when ``attributes`` (one mapping per photo, see
    ``ml.subgroups``) record any."""
    names = list(class_names)
    probs = np.asarray(probs, dtype=np.float64)
    predicted = rules.top_classes(probs, names)
    metrics = classification_metrics(y_true, probs, names, predicted=predicted)
    metrics["top_class_rule"] = (
        {"rule": "prior_shift", "tau": rules.top_class.tau}
        if rules.top_class is not None
        else {"rule": "most_probable"}
    )
    if rules.top_class is not None:
        # What naming the most probable class would have given, for comparison.
        metrics["at_most_probable"] = decision_metrics(y_true, probs.argmax(axis=1), names)
    if rules.referral is not None:
        metrics["referral"] = referral_metrics(y_true, probs, names, rules.referral)
        metrics["referral_tradeoff"] = referral_tradeoff(y_true, probs, names, rules.referral)
        malignant, unsure = refer_mask(probs, names, rules.referral)
        referred = malignant | unsure
    else:
        referred = np.ones(len(probs), dtype=bool)
    if attributes is not None and any(attributes):
        metrics["subgroups"] = subgroup_report(attributes, y_true, predicted, referred, names)
    return metrics


def headline(metrics: dict[str, Any]) -> str:
    """One line of the numbers a model is judged by first."""
    referral = metrics.get("referral") or {}

    def fmt(value: Any) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    return (
        f"n {metrics['n']}, balanced accuracy {fmt(metrics['balanced_accuracy'])}, accuracy "
        f"{fmt(metrics['accuracy'])}, melanoma recall {fmt(metrics['melanoma']['sensitivity'])}, "
        f"macro AUC {fmt(metrics['roc_auc'].get('macro'))}, ECE {fmt(metrics['ece'])}; referral: "
        f"melanomas {fmt(referral.get('melanoma_sensitivity'))}, benign "
        f"{fmt(referral.get('benign_referral_rate'))}, all {fmt(referral.get('referral_rate'))}"
    )
