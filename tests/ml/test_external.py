"""Photos from other sources: loaded without lesion ids, measured beside the held-out split by
training and by `ml evaluate`, holding the referral threshold, never trained on; and a bundle whose
recipe has colour constancy, a centre crop and test-time views, served by ONNX Runtime as Keras
computes it."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from ml.bundle import ONNX_FILE, BundleError, read_manifest, write_manifest
from ml.classes import CLASSES
from ml.cli import main as cli_main
from ml.datasets import detect_and_load, load_ham10000
from ml.evaluate import evaluate_bundle
from ml.predict import Predictor
from ml.recipe import ServingRecipe
from ml.train import REPORT_SUBDIR, TrainConfig, train
from tests.ml.synthetic import write_tiny_dataset

from .conftest import TINY_SIZE


def _external_set(root: Path, source: Path) -> Path:
    """The external layout: labels.csv with image_id, file, dx (no lesion ids), like ISIC 2018's."""
    root.mkdir(parents=True)
    (root / "images").mkdir()
    rows = []
    for sample in load_ham10000(source):
        target = root / "images" / f"X{sample.image_id}.jpg"
        target.write_bytes(sample.path.read_bytes())
        rows.append((f"X{sample.image_id}", f"images/{target.name}", sample.dx))
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "file", "dx"])
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def external_dir(tmp_path_factory) -> Path:
    source = write_tiny_dataset(
        tmp_path_factory.mktemp("ext-src") / "ham", per_class=3, size=40, seed=7
    )
    return _external_set(tmp_path_factory.mktemp("ext") / "isic", source)


@pytest.fixture(scope="module")
def recipe_data(tmp_path_factory) -> Path:
    """Enough lesions that validation holds melanomas, so a referral rule can be chosen."""
    return write_tiny_dataset(tmp_path_factory.mktemp("recipe") / "ham", per_class=12, size=40)


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory, recipe_data: Path, external_dir: Path) -> Path:
    """Every new recipe step at once on tiny data, with the external photos."""
    config = TrainConfig(
        data_dir=recipe_data,
        out_dir=tmp_path_factory.mktemp("run") / "recipe",
        architecture="basic_cnn",
        image_size=TINY_SIZE,
        epochs=1,
        batch_size=8,
        val_fraction=0.25,
        test_fraction=0.25,
        fit="centre_crop",
        random_crops=True,
        colour_constancy="shades_of_gray",
        tta="flips",
        top_class="balanced",
        loss="logit_adjusted",
        class_weighting="none",
        external_dir=external_dir,
    )
    return train(config, progress=False)


def test_the_external_layout_loads_with_one_lesion_per_photo(external_dir: Path) -> None:
    samples = detect_and_load(external_dir)
    assert len(samples) == 3 * len(CLASSES)
    assert all(s.image_id.startswith("X") for s in samples)
    assert len({s.lesion_id for s in samples}) == len(samples)
    assert {s.dx for s in samples} == set(CLASSES)


def test_ham10000_metadata_travels_with_each_photo(tiny_dataset: Path) -> None:
    sample = load_ham10000(tiny_dataset)[0]
    # The synthetic metadata records age 50, sex "unknown" and site "back" for every photo.
    assert sample.attributes == {"age": "50.0", "sex": "unknown", "localization": "back"}


def test_training_records_every_step_and_measures_both_sets(recipe_run: Path) -> None:
    manifest = read_manifest(recipe_run)
    preprocessing = manifest["preprocessing"]
    assert preprocessing["resize"]["keep_aspect_ratio"] is True
    assert preprocessing["resize"]["crop"] == "centre"
    assert preprocessing["colour_constancy"] == {
        "method": "shades_of_gray",
        "power": 6,
        "applied_to": "the resized image",
    }
    assert manifest["test_time_augmentation"]["views"] == ["identity", "flip_h", "flip_v", "rot180"]
    rules = manifest["decision_thresholds"]
    assert rules["top_class"]["rule"] == "prior_shift"
    assert rules["refer"]["external"]["count"] == 3 * len(CLASSES)
    metrics = manifest["metrics"]
    assert metrics["external"]["n"] == 3 * len(CLASSES)
    assert metrics["external"]["referral"]["melanomas"] == 3
    assert metrics["top_class_rule"]["rule"] == "prior_shift"
    assert metrics["subgroups"]["attributes"]["localization"]["groups"][0]["value"] == "back"
    # The external photos never entered the split: not trained, validated or tested on.
    split = json.loads((recipe_run / "split.json").read_text())
    listed = set(split["train"]) | set(split["val"]) | set(split["test"])
    assert not any(image_id.startswith("X") for image_id in listed)
    report = recipe_run.parent / REPORT_SUBDIR
    predictions = np.load(report / "predictions.npz")
    assert predictions["external_probs"].shape == (3 * len(CLASSES), 7)
    summary = (report / "summary.md").read_text()
    assert summary.index("## Photos from other sources") < summary.index("## Per class")
    assert (report / "referral_tradeoff.png").is_file()
    assert (report / "external_confusion_matrix.png").is_file()


def test_onnx_serves_the_recipe_as_keras_computes_it_on_real_photos(
    recipe_run: Path, sample_photos
) -> None:
    """Keras and ONNX Runtime agree through colour constancy, the centre crop and the flips."""
    from ml.bundle.keras_io import load_bundle

    served = Predictor.from_bundle(recipe_run)
    assert served.engine_name == "onnxruntime-cpu"
    assert (recipe_run / ONNX_FILE).is_file()
    blobs = [path.read_bytes() for path in sample_photos.values()]
    got = served.predict_bytes(blobs)
    loaded = load_bundle(recipe_run)
    recipe = ServingRecipe(loaded.manifest)
    batch = np.stack([recipe.preprocessing.from_bytes(blob) for blob in blobs])
    expected = recipe.probabilities(lambda b: np.asarray(loaded.model(b, training=False)), batch)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # And the views matter: without them the answer differs.
    plain = ServingRecipe({**loaded.manifest, "test_time_augmentation": None})
    assert not np.allclose(plain.probabilities(served.engine.run, batch), got, atol=1e-6)
    named = [served.top_class(dict(zip(CLASSES, row, strict=True))) for row in got]
    assert named == [
        CLASSES[i]
        for i in recipe.rules.top_classes(got, CLASSES)  # the bundle's prior shift
    ]


def test_a_bundle_with_a_step_this_code_cannot_perform_is_refused(recipe_run, tmp_path) -> None:
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(recipe_run, copy)
    manifest = read_manifest(copy, verify=False)
    manifest["preprocessing"]["hair_removal"] = {"method": "dullrazor"}
    write_manifest(copy, manifest)
    with pytest.raises(BundleError, match="unknown preprocessing step"):
        Predictor.from_bundle(copy)


def test_ml_evaluate_reports_the_external_set_first(
    recipe_run, recipe_data, external_dir, tmp_path, capsys
) -> None:
    result = evaluate_bundle(recipe_run, recipe_data, tmp_path / "eval", external_dir=external_dir)
    manifest = read_manifest(recipe_run)
    # The same recipe and rules as at training time give the same numbers.
    assert result["metrics"]["external"]["balanced_accuracy"] == pytest.approx(
        manifest["metrics"]["external"]["balanced_accuracy"]
    )
    assert result["metrics"]["referral"] == pytest.approx(manifest["metrics"]["referral"])
    assert cli_main(
        ["evaluate", str(recipe_run), "--data", str(recipe_data), "--external", str(external_dir),
         "--out", str(tmp_path / "cli")]
    ) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "held-out: n " in printed and "external: n 21" in printed


def test_a_centre_cropping_model_s_heat_map_lies_over_the_square_it_saw(
    recipe_run, sample_photos
) -> None:
    import io

    from PIL import Image

    from ml.gradcam import Explainer
    from ml.heatmaps import overlay_png

    photo = next(iter(sample_photos.values()))  # 600 x 450
    heat = Explainer.from_bundle(recipe_run).explain_bytes(photo.read_bytes(), "mel")
    # The centred 450 x 450 square, to the pixel of the reduced-scale JPEG decode it was cut from.
    assert heat.region == pytest.approx((75 / 600, 0.0, 525 / 600, 1.0), abs=0.01)
    # A grid hot everywhere, drawn over that region: hot inside it, nothing outside.
    hot = np.ones_like(heat.grid)
    overlay = np.asarray(Image.open(io.BytesIO(overlay_png(hot, 600, 450, heat.region))))
    assert overlay.shape == (450, 600, 4)
    assert overlay[:, 80:520, 3].min() > 0
    # Nothing is drawn on the bands the model never saw.
    assert overlay[:, :70, 3].max() == 0 and overlay[:, 530:, 3].max() == 0
