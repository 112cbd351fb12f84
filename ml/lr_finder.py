"""Learning-rate range test ("LR finder", Smith 2015): pick a learning rate before training.

The model is trained for a few hundred batches at most while the learning rate grows
geometrically from ``min_lr`` to ``max_lr``; the loss falls once the rate is large enough to make
progress and blows up once it is too large. The suggested rate is where the (smoothed) loss falls
fastest against log(rate). The model's weights are put back afterwards, so the test costs time
but changes nothing: the caller compiles again with its own optimizer and trains from the same
starting point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Fewer smoothed points than this before the minimum give a slope that is mostly noise.
MIN_POINTS_FOR_SLOPE = 5


@dataclass(frozen=True)
class LrRangeResult:
    """The tested learning rates, the smoothed loss at each and the suggested rate."""

    learning_rates: list[float]
    losses: list[float]
    suggested: float

    def as_json(self) -> dict[str, Any]:
        return {
            "learning_rates": list(self.learning_rates),
            "losses": list(self.losses),
            "suggested": self.suggested,
        }


def _cycle(dataset: Iterable[Any]) -> Iterator[Any]:
    """Batches of ``dataset`` again and again, for datasets shorter than the test."""
    while True:
        empty = True
        for batch in dataset:
            empty = False
            yield batch
        if empty:
            raise ValueError("the learning-rate range test needs a dataset with at least 1 batch")


def suggest_learning_rate(
    learning_rates: list[float], losses: list[float], min_lr: float, max_lr: float
) -> float:
    """The rate at the steepest fall of the loss against log(rate), clipped to the range.

    Only the part of the curve up to the lowest loss is searched: past it the loss is rising
    and noisy, and a chance dip there would point at a rate that is already diverging. With too
    few points for a slope, one tenth of the rate at the lowest loss is the usual safe choice.
    """
    if not losses:
        return min_lr
    lowest = int(np.argmin(losses))
    if lowest + 1 >= MIN_POINTS_FOR_SLOPE:
        rates = np.asarray(learning_rates[: lowest + 1], dtype=np.float64)
        slope = np.gradient(np.asarray(losses[: lowest + 1], dtype=np.float64), np.log10(rates))
        suggested = float(rates[int(np.argmin(slope))])
    else:
        suggested = learning_rates[lowest] / 10.0
    return float(min(max(suggested, min_lr), max_lr))


def find_learning_rate(
    model: Any,
    dataset: Iterable[Any],
    *,
    optimizer_factory: Callable[[float], Any],
    min_lr: float = 1e-7,
    max_lr: float = 1.0,
    steps: int = 100,
    class_weight: dict[int, float] | None = None,
    smoothing: float = 0.98,
    divergence_factor: float = 4.0,
    loss: Any = "sparse_categorical_crossentropy",
) -> LrRangeResult:
    """Run an exponential learning-rate range test on ``model`` and restore its weights.

    ``dataset`` yields ``(x, y)`` batches (a ``tf.data.Dataset`` or any re-iterable); it is
    gone through again when it has fewer than ``steps`` batches. ``optimizer_factory(lr)``
    makes the optimizer to test, so the test sees the same update rule (SGD momentum, Adam) as
    the training that follows. The test stops early once the smoothed loss is above
    ``divergence_factor`` times the best smoothed loss so far, or is not finite. The model is
    left compiled with the test's optimizer: compile it again before training.
    """
    if not 0 < min_lr < max_lr:
        raise ValueError(f"need 0 < min_lr < max_lr, got {min_lr} and {max_lr}")
    if steps < 2:
        raise ValueError(f"the range test needs at least 2 steps, got {steps}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    if divergence_factor <= 1:
        raise ValueError(f"divergence_factor must be above 1, got {divergence_factor}")

    schedule = np.geomspace(min_lr, max_lr, steps)
    original = model.get_weights()
    learning_rates: list[float] = []
    losses: list[float] = []
    try:
        model.compile(optimizer=optimizer_factory(float(schedule[0])), loss=loss)
        average = 0.0
        best = math.inf
        batches = _cycle(dataset)
        for step, rate in enumerate(schedule):
            x, y = next(batches)[:2]
            model.optimizer.learning_rate = float(rate)
            raw = model.train_on_batch(x, y, class_weight=class_weight)
            value = float(raw[0] if isinstance(raw, list | tuple) else raw)
            if not math.isfinite(value):
                break
            # Exponential moving average with bias correction, so the first points are not
            # pulled towards the 0 the average starts from.
            average = smoothing * average + (1.0 - smoothing) * value
            smoothed = average / (1.0 - smoothing ** (step + 1))
            learning_rates.append(float(rate))
            losses.append(smoothed)
            # Keep the first diverged point so a plot shows where the loss took off.
            if smoothed > divergence_factor * best:
                break
            best = min(best, smoothed)
    finally:
        # Restored even when a step fails: a half-tested model must not go on to training.
        model.set_weights(original)
    return LrRangeResult(
        learning_rates=learning_rates,
        losses=losses,
        suggested=suggest_learning_rate(learning_rates, losses, min_lr, max_lr),
    )


def plot_lr_range(result: LrRangeResult, path: str | Path) -> Path:
    """Write the loss-against-learning-rate curve as a PNG with the suggestion marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A bare Figure with its own Agg canvas: no pyplot global state, works without a display.
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(result.learning_rates, result.losses, color="tab:blue", label="smoothed loss")
    ax.axvline(
        result.suggested,
        color="tab:red",
        linestyle="--",
        label=f"suggested {result.suggested:.2e}",
    )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title("Learning-rate range test")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path
