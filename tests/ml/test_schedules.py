import json
from pathlib import Path

import numpy as np
import pytest

from ml.schedules import COSINE_FLOOR, warmup_cosine
from ml.train import TrainConfig, train
from ml.training_config import check_schedule


def test_warmup_cosine_rises_for_one_epoch_then_decays_to_the_floor() -> None:
    schedule = warmup_cosine(peak=2e-4, total_steps=120, steps_per_epoch=10)
    rates = np.array([float(schedule(step)) for step in range(121)])
    assert rates[0] == pytest.approx(0.0)
    assert rates.argmax() == 10
    assert rates[10] == pytest.approx(2e-4)
    assert np.all(np.diff(rates[:11]) > 0)
    assert np.all(np.diff(rates[10:]) <= 1e-12)
    assert rates[120] == pytest.approx(2e-4 * COSINE_FLOOR, rel=1e-3)


def test_short_phase_warms_up_for_a_tenth_of_it() -> None:
    schedule = warmup_cosine(peak=1e-3, total_steps=20, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in range(21)]
    assert int(np.argmax(rates)) == 2


def test_unknown_schedule_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="plateau, cosine"):
        check_schedule("linear")


def _config(tiny_dataset: Path, out: Path, **overrides) -> TrainConfig:
    settings = dict(
        data_dir=tiny_dataset,
        out_dir=out,
        architecture="basic_cnn",
        image_size=32,
        epochs=3,
        batch_size=8,
        val_fraction=0.25,
        test_fraction=0.25,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def test_cosine_schedule_trains_every_epoch(tiny_dataset: Path, tmp_path: Path) -> None:
    bundle = train(_config(tiny_dataset, tmp_path / "run", schedule="cosine"), progress=False)
    training = json.loads((bundle / "training.json").read_text())
    assert training["config"]["schedule"] == "cosine"
    history = training["phases"][0]["history"]
    assert len(history["loss"]) == 3
    assert training["stopped_by_time_budget"] is False
    # The basic CNN's rate is 0.01; after the last step only the 1 % floor is left.
    rates = history["learning_rate"]
    assert rates == sorted(rates, reverse=True)
    assert rates[-1] == pytest.approx(0.01 * COSINE_FLOOR, rel=1e-3)


def test_time_budget_stops_after_the_first_epoch(tiny_dataset: Path, tmp_path: Path) -> None:
    # A budget of ~6 ms: the first epoch always runs past it, so no second one starts.
    config = _config(tiny_dataset, tmp_path / "run", max_minutes=1e-4)
    bundle = train(config, progress=False)
    training = json.loads((bundle / "training.json").read_text())
    assert len(training["phases"][0]["history"]["loss"]) == 1
    assert training["stopped_by_time_budget"] is True


def test_non_positive_budget_is_refused(tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_minutes must be a positive number"):
        train(_config(tiny_dataset, tmp_path / "run", max_minutes=0), progress=False)
