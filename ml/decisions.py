"""What a bundle decides from calibrated probabilities: whether to refer, and which class to name.

Both rules are chosen when the bundle is made and recorded in its manifest under
``decision_thresholds``; this module is the one reader of that record, and it refuses a record it
does not understand rather than serving a decision that was never measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.operating_points import TopClassRule, TopClassRuleError
from ml.referral import RULE_VERSION, Decision, ReferralRule, ReferralRuleError, decide

_KNOWN_KEYS = frozenset({"version", "refer", "top_class"})


class DecisionRuleError(ValueError):
    """A manifest's decision rules are malformed or name a rule this code does not apply."""


@dataclass(frozen=True)
class DecisionRules:
    # None: no validated rule, so every photo is referred.
    referral: ReferralRule | None = None
    # None: the most probable class is named.
    top_class: TopClassRule | None = None

    @classmethod
    def from_manifest(cls, thresholds: Mapping[str, Any] | None) -> DecisionRules:
        if not thresholds:
            return cls()
        if not isinstance(thresholds, Mapping):
            raise DecisionRuleError(f"decision_thresholds must be an object: {thresholds!r}")
        unknown = sorted(set(thresholds) - _KNOWN_KEYS)
        if unknown:
            raise DecisionRuleError(f"unknown decision rule(s) {', '.join(unknown)}")
        try:
            referral = ReferralRule.from_manifest(thresholds)
            top = thresholds.get("top_class")
            if top is not None and thresholds.get("version") != RULE_VERSION:
                raise DecisionRuleError(
                    f"decision_thresholds version {thresholds.get('version')!r} is not {RULE_VERSION}"
                )
            return cls(referral, TopClassRule.from_manifest(top) if top is not None else None)
        except (ReferralRuleError, TopClassRuleError) as exc:
            raise DecisionRuleError(str(exc)) from exc

    def to_manifest(self) -> dict[str, Any] | None:
        if self.referral is None and self.top_class is None:
            return None
        record: dict[str, Any] = {"version": RULE_VERSION}
        if self.referral is not None:
            record.update(self.referral.to_manifest())
        if self.top_class is not None:
            record["top_class"] = self.top_class.to_manifest()
        return record

    def top_classes(self, probs: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
        """The class index each row names: by the top-class rule, else the most probable one."""
        probs = np.asarray(probs, dtype=np.float64)
        if self.top_class is None:
            return probs.argmax(axis=1)
        return self.top_class.decide(probs, class_names)

    def top_class_of(self, probabilities: Mapping[str, float]) -> str:
        """The class one photo's calibrated probabilities name."""
        names = list(probabilities)
        row = np.array([[probabilities[name] for name in names]], dtype=np.float64)
        return names[int(self.top_classes(row, names)[0])]

    def refer(self, probabilities: Mapping[str, float]) -> Decision:
        return decide(probabilities, self.referral)
