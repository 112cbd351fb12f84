import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.bundle import read_manifest
from ml.classes import CLASSES
from ml.datasets import load_ham10000
from ml.evaluate import evaluate_bundle
from ml.predict import Predictor
from ml.pretrained import PretrainedWeightsUnavailable
from ml.train import REPORT_SUBDIR, TrainConfig, train


def test_train_writes_a_complete_bundle(trained_run: Path, tiny_dataset: Path) -> None:
    manifest = read_manifest(trained_run)
    assert manifest["architecture"] == "basic_cnn"
    assert manifest["input_size"] == 32
    assert manifest["class_names"] == list(CLASSES)
    assert manifest["calibration_temperature"] > 0
    assert manifest["metrics"]["evaluated_on"] == "test"
    assert len(manifest["dataset_sha256"]) == 64
    split = json.loads((trained_run / "split.json").read_text())
    assert split["counts"]["test"] == len(split["test"]) > 0
    training = json.loads((trained_run / "training.json").read_text())
    assert training["phases"][0]["history"]["val_loss"]
    report = trained_run.parent / REPORT_SUBDIR
    assert (report / "summary.md").is_file()
    assert (report / "metrics.json").is_file()
    predictions = np.load(report / "predictions.npz")
    assert predictions["val_probs"].shape == (len(split["val"]), 7)
    assert predictions["eval_probs"].shape == (len(split["test"]), 7)
    label_of = {s.image_id: s.label_index for s in load_ham10000(tiny_dataset)}
    assert predictions["eval_labels"].tolist() == [label_of[i] for i in split["test"]]


def test_predictor_rows_sum_to_one(trained_run: Path, tiny_dataset: Path) -> None:
    predictor = Predictor.from_bundle(trained_run)
    predictor.warm_up()
    assert len(predictor.version) == 64
    images = [np.zeros((20, 30, 3), np.uint8), np.full((64, 48, 3), 200, np.uint8)]
    probs = predictor.predict_arrays(images)
    assert probs.shape == (2, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    sample = load_ham10000(tiny_dataset)[0]
    from_bytes = predictor.predict_bytes([sample.path.read_bytes()])
    assert from_bytes.shape == (1, 7)
    assert predictor.predict_arrays([]).shape == (0, 7)


def test_temperature_is_applied(trained_run: Path) -> None:
    predictor = Predictor.from_bundle(trained_run)
    image = [np.full((32, 32, 3), 90, np.uint8)]
    calibrated = predictor.predict_arrays(image)
    predictor.recipe.temperature = 1.0
    raw = predictor.predict_arrays(image)
    assert calibrated.argmax() == raw.argmax()
    expected_log = np.log(raw) / read_manifest(trained_run)["calibration_temperature"]
    expected = np.exp(expected_log) / np.exp(expected_log).sum()
    np.testing.assert_allclose(calibrated, expected, atol=1e-6)


def test_evaluate_reuses_recorded_test_split(
    trained_run: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    result = evaluate_bundle(trained_run, tiny_dataset, tmp_path / "report")
    split = json.loads((trained_run / "split.json").read_text())
    assert result["selection"] == "recorded test split"
    assert result["count"] == len(split["test"])
    assert (tmp_path / "report" / "summary.md").is_file()
    everything = evaluate_bundle(trained_run, tiny_dataset, tmp_path / "all", split="all")
    assert everything["count"] == 42


def test_transfer_training_without_weights_fails_before_loading_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml import pretrained

    def refuse(file_name: str, origin: str) -> str:
        raise OSError("offline")

    monkeypatch.setattr(pretrained, "_download", refuse)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    # A folder with no dataset in it: reading it would fail, so the weights error must come first.
    (tmp_path / "unread-data").mkdir()
    config = TrainConfig(
        tmp_path / "unread-data", tmp_path / "run", "densenet169", weights_dir=tmp_path
    )
    with pytest.raises(PretrainedWeightsUnavailable, match="--no-pretrained"):
        train(config, progress=False)


def test_uploaded_png_and_jpeg_of_same_pixels_agree(trained_run: Path) -> None:
    predictor = Predictor.from_bundle(trained_run)
    pixels = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    np.testing.assert_allclose(
        predictor.predict_bytes([png.getvalue()]), predictor.predict_arrays([pixels]), atol=1e-6
    )


def test_class_weighting_modes_order_the_pull_on_rare_classes() -> None:
    from ml.class_weights import class_weights
    from ml.datasets import Sample

    samples = [Sample(Path(f"{i}.jpg"), 5, f"L{i}", f"I{i}") for i in range(90)]
    samples += [Sample(Path(f"r{i}.jpg"), 3, f"R{i}", f"R{i}") for i in range(10)]
    balanced = class_weights(samples, mode="balanced")
    soft = class_weights(samples, mode="sqrt")
    flat = class_weights(samples, mode="none")
    assert balanced[3] == pytest.approx(100 / (2 * 10))
    assert soft[3] == pytest.approx(balanced[3] ** 0.5)
    assert balanced[3] > soft[3] > flat[3] == 1.0
    with pytest.raises(ValueError, match="balanced, sqrt, none"):
        class_weights(samples, mode="inverse")
