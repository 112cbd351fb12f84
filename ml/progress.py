"""Following and stopping a training run from outside: the hooks ``ml.train.train`` calls.

The command line follows a run by printing; the portal's training worker passes an observer that stores
progress, pushes it to the run's page and asks to stop when an admin cancels. ``should_stop`` is asked after
every batch, so it must be cheap (a flag, not a query).
"""

from __future__ import annotations

from typing import Any


class TrainingCancelled(RuntimeError):
    """The observer asked the run to stop; nothing was written to the bundle folder."""


class TrainingObserver:
    """Does nothing; subclasses override what they need."""

    def stage(self, message: str) -> None:
        """A step of the run began or ended (loading data, a phase, evaluating, saving)."""

    def plan(self, phases: list[dict[str, Any]]) -> None:
        """The phases about to run: ``[{"name", "epochs", "steps_per_epoch"}, ...]``."""

    def batch_end(self, phase: str, epoch: int, batch: int, logs: dict[str, float]) -> None:
        """``batch`` (1-based) of ``epoch`` (1-based) ended; ``logs`` are the epoch's means so far."""

    def epoch_end(self, phase: str, epoch: int, logs: dict[str, float]) -> None:
        """``epoch`` (1-based) ended, validation included; ``logs`` hold train and val metrics."""

    def should_stop(self) -> bool:
        return False

    def check_stop(self, where: str) -> None:
        if self.should_stop():
            raise TrainingCancelled(f"stopped on request {where}")


def _floats(logs: dict[str, Any] | None) -> dict[str, float]:
    return {key: float(value) for key, value in (logs or {}).items()}


def observer_callback(observer: TrainingObserver, phase: str) -> Any:
    """A Keras callback that reports batches and epochs of ``phase`` and stops at the next batch.

    Stopping raises ``TrainingCancelled`` out of ``fit`` instead of setting ``stop_training``: Keras
    would still run the epoch's validation pass before ending.
    """
    import keras

    class ObserverCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self._epoch = 0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._epoch = epoch + 1

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            observer.batch_end(phase, self._epoch, batch + 1, _floats(logs))
            observer.check_stop(f"in phase {phase}, epoch {self._epoch}, after batch {batch + 1}")

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            observer.epoch_end(phase, epoch + 1, _floats(logs))

    return ObserverCallback()
