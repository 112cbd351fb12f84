"""How a job ended: one vocabulary for every task, logged and counted (``skinsight_jobs_total``)
by its value."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    DONE = "done"
    SUCCEEDED = "succeeded"  # a training run or a model import
    CANCELLED = "cancelled"
    REJECTED = "rejected"  # the photo does not decode: retrying cannot help
    FAILED = "failed"
    ALREADY_FINISHED = "already-finished"  # a duplicate delivery of a job that has ended
    NOT_QUEUED = "not-queued"  # a run or import some other delivery has claimed
    GONE = "gone"  # its row was deleted meanwhile
    WAITING_FOR_MODEL = "waiting-for-model"
    RETRYING = "retrying"
    FAULT = "fault"  # a transient fault stopped this job alone: the retry policy decides


@dataclass(frozen=True)
class JobOutcome:
    """One job's end in a batch: its outcome, and the fault when a transient one stopped it."""

    outcome: Outcome
    fault: Exception | None = None

    @classmethod
    def of(cls, ended: Outcome | Exception) -> JobOutcome:
        return cls(Outcome.FAULT, ended) if isinstance(ended, Exception) else cls(ended)
