"""What a model answers for one photo: the one type the worker computes, the result object stores
and the portal records (as a case's prediction or a re-run's result). Pure Python, so the web
process records answers without TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ml.referral import Decision


@dataclass(frozen=True)
class Answer:
    """A model's answer for one photo: its calibrated probabilities, the class it names (by the
    bundle's top-class rule), the referral decision, and what computed it in how long."""

    probabilities: dict[str, float]
    top_class: str
    decision: Decision
    engine: str
    latency_ms: int

    def __post_init__(self) -> None:
        if self.top_class not in self.probabilities:
            raise ValueError(f"the named class {self.top_class!r} has no probability")

    @property
    def top_probability(self) -> float:
        return self.probabilities[self.top_class]

    def as_json(self) -> dict[str, Any]:
        """The answer as a result object stores it."""
        return {
            "probabilities": self.probabilities,
            "top_class": self.top_class,
            "latency_ms": self.latency_ms,
            "engine": self.engine,
            "refer": self.decision.refer,
            "refer_reasons": list(self.decision.reasons),
            "malignant_probability": self.decision.malignant_probability,
        }
