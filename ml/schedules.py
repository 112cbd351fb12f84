"""Learning-rate schedules and the wall-clock budget for a training phase.

``plateau`` is the paper's recipe: a constant rate halved by ReduceLROnPlateau when validation
loss stalls. ``cosine`` warms up linearly, then decays along a cosine to 1 % of the peak by the
phase's last step; on a short CPU budget it ends each phase with small steps, where the plateau
rule would still be waiting for three flat epochs.
"""

from __future__ import annotations

import time
from typing import Any

# Share of the peak rate left at the end of a cosine phase.
COSINE_FLOOR = 0.01


def warmup_cosine(peak: float, total_steps: int, steps_per_epoch: int) -> Any:
    """Linear warm-up over one epoch (at most a tenth of the phase), then cosine decay.

    Warm-up matters in fine-tuning: Adam's first updates on freshly unfrozen layers are the
    largest, and at the full rate they would undo part of the pretrained features.
    """
    import keras

    total_steps = max(int(total_steps), 1)
    warmup = min(max(int(steps_per_epoch), 1), total_steps // 10)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else peak,
        decay_steps=max(total_steps - warmup, 1),
        alpha=COSINE_FLOOR,
        warmup_target=peak if warmup else None,
        warmup_steps=warmup,
    )


def time_budget_callback(deadline: float) -> Any:
    """A callback that ends ``fit`` after an epoch when the next one would end past ``deadline``.

    ``deadline`` is a ``time.monotonic()`` value. The estimate is the last epoch's duration
    (validation included), so a run stops before it overruns rather than after.
    """
    import keras

    class TimeBudget(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.stopped = False
            self._epoch_started = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._epoch_started = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            now = time.monotonic()
            if now + (now - self._epoch_started) > deadline:
                self.stopped = True
                self.model.stop_training = True

    return TimeBudget()


def learning_rate_logger() -> Any:
    """A callback that adds the optimizer's current rate to each epoch's logs (and history)."""
    import keras

    class LearningRateLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if logs is not None:
                rate = self.model.optimizer.learning_rate
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))

    return LearningRateLogger()
