"""Observer hooks of ml.train: the plan, every batch and epoch, stopping at the next batch; and mixed
precision training that still writes a float32 bundle."""

import json
from pathlib import Path

import numpy as np
import pytest

from ml.bundle.keras_io import load_bundle
from ml.progress import TrainingCancelled, TrainingObserver
from ml.train import TrainConfig, train

from .conftest import TINY_SIZE


class Recorder(TrainingObserver):
    def __init__(self, stop_at: tuple[int, int] | None = None) -> None:
        self.stages: list[str] = []
        self.phases: list[dict] = []
        self.batches: list[tuple[str, int, int]] = []
        self.epochs: list[tuple[str, int, dict]] = []
        self.stop_at = stop_at

    def stage(self, message):
        self.stages.append(message)

    def plan(self, phases):
        self.phases = phases

    def batch_end(self, phase, epoch, batch, logs):
        self.batches.append((phase, epoch, batch))
        assert "loss" in logs

    def epoch_end(self, phase, epoch, logs):
        self.epochs.append((phase, epoch, logs))

    def should_stop(self):
        return (
            self.stop_at is not None and self.batches[-1:] and self.batches[-1][1:] == self.stop_at
        )


def _config(data: Path, out: Path, **overrides) -> TrainConfig:
    fields = {
        "data_dir": data,
        "out_dir": out,
        "architecture": "basic_cnn",
        "image_size": TINY_SIZE,
        "epochs": 2,
        "batch_size": 8,
        "val_fraction": 0.25,
        "test_fraction": 0.25,
    }
    return TrainConfig(**{**fields, **overrides})


def test_the_observer_sees_the_plan_every_batch_and_every_epoch(tiny_dataset, tmp_path):
    recorder = Recorder()
    train(_config(tiny_dataset, tmp_path / "run"), progress=False, observer=recorder)
    (phase,) = recorder.phases
    assert phase["name"] == "full" and phase["epochs"] == 2
    steps = phase["steps_per_epoch"]
    assert recorder.batches == [("full", e, b) for e in (1, 2) for b in range(1, steps + 1)]
    assert [(p, e) for p, e, _ in recorder.epochs] == [("full", 1), ("full", 2)]
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(recorder.epochs[-1][2])
    assert any(s.startswith("loading data") for s in recorder.stages)
    assert recorder.stages[-1].startswith("bundle written to")


def test_a_stop_request_ends_training_at_the_next_batch_and_writes_no_bundle(
    tiny_dataset, tmp_path
):
    recorder = Recorder(stop_at=(2, 1))
    out = tmp_path / "run"
    with pytest.raises(TrainingCancelled, match="epoch 2, after batch 1"):
        train(_config(tiny_dataset, out, epochs=5), progress=False, observer=recorder)
    assert recorder.batches[-1] == ("full", 2, 1)
    assert len(recorder.epochs) == 1  # epoch 2 never finished, not even its validation pass
    assert not (out / "bundle").exists()


def test_mixed_precision_trains_in_float16_and_saves_a_float32_bundle(tiny_dataset, tmp_path):
    import keras

    bundle = train(
        _config(tiny_dataset, tmp_path / "run", epochs=1, mixed_precision=True), progress=False
    )
    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards
    loaded = load_bundle(bundle)
    assert {layer.dtype_policy.name for layer in loaded.model.layers} == {"float32"}
    out = loaded.model(np.zeros((1, TINY_SIZE, TINY_SIZE, 3), "float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    training = json.loads((bundle / "training.json").read_text())
    assert training["config"]["mixed_precision"] is True
    assert np.asarray(out).sum() == pytest.approx(1.0, abs=1e-5)
