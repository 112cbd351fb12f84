"""Results by subgroup (body site, age band, sex): is the model as good for everyone it is used on?

A model can look fine on the whole and still miss melanomas on one body site or in one age band,
where lesions look different or photos are harder. Each subgroup gets the numbers the whole gets,
with its counts; a subgroup whose melanoma sensitivity at the referral rule or whose balanced
accuracy falls more than ``FLAG_POINTS`` below the whole is flagged, when it is large enough for
the difference to mean something. Pure numpy: the web app shows what this computes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MELANOMA = "mel"
ATTRIBUTES = {"localization": "Body site", "age_band": "Age band", "sex": "Sex"}
# Values datasets use for "not recorded": such photos belong to no subgroup of that attribute.
UNKNOWN_VALUES = frozenset({"", "unknown", "nan", "none"})
AGE_BANDS = ((30, "under 30"), (45, "30-44"), (60, "45-59"), (75, "60-74"), (None, "75 and over"))
FLAG_POINTS = 0.10
# Below these counts a subgroup's number is listed but never flagged: the noise would be larger
# than the gap being looked for.
MIN_MELANOMAS = 8
MIN_IMAGES = 50
# Balanced accuracy within a subgroup averages the recall of the classes it has at least this
# many photos of (one photo's class would weigh as much as hundreds of nevi).
MIN_CLASS_IMAGES = 5


def age_band(age: str | None) -> str | None:
    try:
        years = float(age) if age not in (None, "") else None
    except ValueError:
        return None
    if years is None or not np.isfinite(years) or years < 0:
        return None
    return next(label for upper, label in AGE_BANDS if upper is None or years < upper)


def subgroup_values(attributes: Mapping[str, str]) -> dict[str, str | None]:
    """The subgroup of one photo per attribute (None: not recorded)."""
    values: dict[str, str | None] = {}
    for name in ATTRIBUTES:
        raw = attributes.get("age") if name == "age_band" else attributes.get(name)
        value = age_band(raw) if name == "age_band" else (raw or "").strip().lower()
        values[name] = None if value is None or value in UNKNOWN_VALUES else value
    return values


def _numbers(
    y: np.ndarray, predicted: np.ndarray, referred: np.ndarray, mel: int | None, classes: int
) -> dict[str, Any]:
    recalls = [
        float(np.mean(predicted[y == c] == c))
        for c in range(classes)
        if (y == c).sum() >= MIN_CLASS_IMAGES
    ]
    melanomas = int((y == mel).sum()) if mel is not None else 0
    return {
        "n": len(y),
        "melanomas": melanomas,
        "balanced_accuracy": float(np.mean(recalls)) if len(recalls) >= 2 else None,
        "classes_in_balanced_accuracy": len(recalls),
        "melanoma_sensitivity": float(referred[y == mel].mean()) if melanomas else None,
        "melanoma_recall_top_class": float(np.mean(predicted[y == mel] == mel))
        if melanomas
        else None,
    }


def subgroup_report(
    attributes: Sequence[Mapping[str, str]],
    y_true: np.ndarray,
    predicted: np.ndarray,
    referred: np.ndarray,
    class_names: Sequence[str],
) -> dict[str, Any]:
    """Per attribute and subgroup: counts, balanced accuracy, melanoma sensitivity at the
    referral rule (share of melanomas referred) and at the named class, and any flags."""
    y = np.asarray(y_true)
    predicted = np.asarray(predicted)
    referred = np.asarray(referred, dtype=bool)
    names = list(class_names)
    mel = names.index(MELANOMA) if MELANOMA in names else None
    whole = _numbers(y, predicted, referred, mel, len(names))
    values = [subgroup_values(a) for a in attributes]
    report: dict[str, Any] = {
        "whole": whole,
        "flag_points": FLAG_POINTS,
        "min_melanomas": MIN_MELANOMAS,
        "min_images": MIN_IMAGES,
        "attributes": {},
        "flagged": [],
    }
    for attribute, label in ATTRIBUTES.items():
        column = np.array([v[attribute] for v in values], dtype=object)
        groups = []
        for value in sorted({v for v in column if v is not None}):
            rows = column == value
            numbers = _numbers(y[rows], predicted[rows], referred[rows], mel, len(names))
            numbers.update(value=value, flags=_flags(numbers, whole))
            groups.append(numbers)
            report["flagged"] += [
                {"attribute": attribute, "label": label, "value": value, "reason": flag}
                for flag in numbers["flags"]
            ]
        report["attributes"][attribute] = {
            "label": label,
            "unknown": int(sum(1 for v in column if v is None)),
            "groups": groups,
        }
    return report


# What a subgroup is flagged on: the number, the count that must be large enough, its minimum,
# and how the flag reads.
_FLAG_CHECKS = (
    (
        "melanoma_sensitivity",
        "melanomas",
        MIN_MELANOMAS,
        "refers {value:.0%} of its {count} melanomas, against {overall:.0%} overall",
    ),
    (
        "balanced_accuracy",
        "n",
        MIN_IMAGES,
        "balanced accuracy {value:.2f} on {count} photos, against {overall:.2f} overall",
    ),
)


def _flags(numbers: dict[str, Any], whole: dict[str, Any]) -> list[str]:
    flags = []
    for key, count_key, minimum, reads in _FLAG_CHECKS:
        value, overall, count = numbers[key], whole[key], numbers[count_key]
        if value is None or overall is None or count < minimum:
            continue
        if overall - value > FLAG_POINTS:
            flags.append(reads.format(value=value, count=count, overall=overall))
    return flags
