import csv
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ml.class_weights import SAMPLINGS, class_weights, sampling_distribution
from ml.classes import CLASSES
from ml.datasets import (
    DatasetError,
    Sample,
    detect_and_load,
    load_class_folders,
    load_confirmed_cases_snapshot,
    load_ham10000,
)
from ml.pipeline import make_dataset
from ml.preprocess import Preprocessing
from ml.splits import grouped_stratified_split
from ml.training_config import ConfigError, TrainConfig
from tests.ml.synthetic import write_tiny_dataset

from .conftest import SHARED


def _copy(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "copy"))


def test_ham_layout_finds_images_in_nested_parts(tiny_dataset: Path) -> None:
    samples = load_ham10000(tiny_dataset)
    assert len(samples) == 6 * len(CLASSES)
    parents = {s.path.parent.name for s in samples}
    assert parents == {"HAM10000_images_part_1", "HAM10000_images_part_2"}
    assert Counter(s.dx for s in samples) == dict.fromkeys(CLASSES, 6)
    assert detect_and_load(tiny_dataset) == samples


def test_missing_image_is_named(tiny_dataset: Path, tmp_path: Path) -> None:
    root = _copy(tiny_dataset, tmp_path)
    victim = next(root.rglob("ISIC_9000003.jpg"))
    victim.unlink()
    with pytest.raises(
        DatasetError, match=r"1 problem.*\n- .* row \d+: image ISIC_9000003 not found"
    ):
        load_ham10000(root)


def test_missing_csv_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"HAM10000 metadata not found: .*HAM10000_metadata"):
        load_ham10000(tmp_path)
    with pytest.raises(DatasetError, match="dataset folder not found"):
        detect_and_load(tmp_path / "nope")
    with pytest.raises(DatasetError, match="unrecognised dataset layout"):
        detect_and_load(tmp_path)


def test_malformed_csv(tiny_dataset: Path, tmp_path: Path) -> None:
    root = _copy(tiny_dataset, tmp_path)
    metadata = root / "HAM10000_metadata.csv"
    metadata.write_text("lesion_id,image\nHAM_1,ISIC_9000000\n")
    with pytest.raises(DatasetError, match=r"missing column\(s\) image_id, dx"):
        load_ham10000(root)
    metadata.write_text("lesion_id,image_id,dx\nHAM_1,ISIC_9000000,zzz\n")
    with pytest.raises(DatasetError, match="row 2: unknown dx 'zzz'"):
        load_ham10000(root)
    metadata.write_text("lesion_id,image_id,dx\n")
    with pytest.raises(DatasetError, match="the dataset is empty"):
        load_ham10000(root)


def test_folder_and_snapshot_layouts(tmp_path: Path) -> None:
    folders = write_tiny_dataset(tmp_path / "folders", per_class=2, layout="folders")
    samples = detect_and_load(folders)
    assert samples == load_class_folders(folders)
    assert len(samples) == 14
    assert all(s.lesion_id == s.path.stem for s in samples)
    (folders / "unknown").mkdir()
    with pytest.raises(DatasetError, match="unknown are not class codes"):
        load_class_folders(folders)

    snapshot = write_tiny_dataset(tmp_path / "snap", per_class=2, layout="snapshot")
    samples = detect_and_load(snapshot)
    assert samples == load_confirmed_cases_snapshot(snapshot)
    assert len({s.lesion_id for s in samples}) == 7  # two photos per lesion
    with open(snapshot / "labels.csv", "a", newline="") as handle:
        csv.writer(handle).writerow(["../outside.jpg", "mel", "x"])
    with pytest.raises(DatasetError, match="must be relative to the snapshot root"):
        load_confirmed_cases_snapshot(snapshot)


def _synthetic(n_lesions: int, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    weights = np.array([3, 5, 11, 1, 11, 67, 2]) / 100  # HAM10000-like imbalance
    samples = []
    for lesion in range(n_lesions):
        label = int(rng.choice(len(CLASSES), p=weights))
        for photo in range(int(rng.integers(1, 4))):
            image_id = f"img{lesion}_{photo}"
            samples.append(Sample(Path(f"{image_id}.jpg"), label, f"les{lesion}", image_id))
    return samples


def test_split_groups_lesions_and_keeps_class_ratios() -> None:
    samples = _synthetic(1500)
    split = grouped_stratified_split(samples, val_fraction=0.15, test_fraction=0.2, seed=3)
    parts = split.parts()
    lesions = {name: {s.lesion_id for s in part} for name, part in parts.items()}
    assert not lesions["train"] & lesions["val"]
    assert not lesions["train"] & lesions["test"]
    assert not lesions["val"] & lesions["test"]
    assert sum(len(p) for p in parts.values()) == len(samples)
    assert len(split.test) / len(samples) == pytest.approx(0.2, abs=0.03)
    assert len(split.val) / len(samples) == pytest.approx(0.15, abs=0.03)
    overall = np.bincount([s.label_index for s in samples], minlength=7) / len(samples)
    for part in parts.values():
        share = np.bincount([s.label_index for s in part], minlength=7) / len(part)
        assert np.abs(share - overall).max() < 0.04


def test_split_is_deterministic_per_seed() -> None:
    samples = _synthetic(300)
    first = grouped_stratified_split(samples, 0.2, 0.2, seed=7).to_json()
    again = grouped_stratified_split(list(reversed(samples)), 0.2, 0.2, seed=7).to_json()
    other = grouped_stratified_split(samples, 0.2, 0.2, seed=8).to_json()
    assert first == again
    assert first["test"] != other["test"]
    assert first["counts"]["test"] == len(first["test"])


def test_class_weights_are_balanced() -> None:
    samples = [Sample(Path("a"), 0, "l", "a")] * 6 + [Sample(Path("b"), 1, "m", "b")] * 2
    weights = class_weights(samples)
    assert weights[0] == pytest.approx(8 / (2 * 6))
    assert weights[1] == pytest.approx(8 / (2 * 2))
    assert weights[6] == 1.0


def test_make_dataset_yields_resized_batches(tiny_dataset: Path) -> None:
    samples = load_ham10000(tiny_dataset)[:10]
    dataset = make_dataset(samples, Preprocessing(16), 4, training=True, cache=True, seed=1)
    images, labels = next(iter(dataset))
    assert tuple(images.shape) == (4, 16, 16, 3)
    assert images.dtype.name == "float32"
    assert float(images.numpy().min()) >= 0 and float(images.numpy().max()) <= 255
    assert labels.dtype.name == "int32"
    plain = make_dataset(samples, Preprocessing(16), 4, training=False, cache=False)
    assert sum(int(b[0].shape[0]) for b in plain) == 10


def test_balanced_sampling_draws_rare_classes_as_often_as_common_ones(tiny_dataset: Path) -> None:
    samples = load_ham10000(tiny_dataset)
    # Skewed like HAM10000: 6 nevi for every photo of each other class.
    skewed = [s for s in samples if s.dx == "nv"] * 6 + [s for s in samples if s.dx != "nv"]
    counts = np.bincount([s.label_index for s in skewed], minlength=7)
    draws = {mode: sampling_distribution(skewed, mode) for mode in SAMPLINGS}
    assert draws["shuffle"] is None
    np.testing.assert_allclose(draws["balanced"], 1 / 7)
    np.testing.assert_allclose(draws["sqrt"], np.sqrt(counts) / np.sqrt(counts).sum())

    drawn = Counter()
    epochs = 20
    dataset = make_dataset(
        skewed, Preprocessing(8), 12, training=True, seed=3, class_draws=draws["balanced"]
    )
    for _ in range(epochs):
        seen = 0
        for _images, labels in dataset:
            drawn.update(labels.numpy().tolist())
            seen += len(labels)
        assert seen == len(skewed)  # an epoch keeps its length
    shares = np.array([drawn[c] for c in range(7)]) / (epochs * len(skewed))
    assert counts[CLASSES.index("nv")] / counts.sum() == pytest.approx(0.5)
    # 50% of the photos are nevi, yet each class is drawn about a seventh of the time.
    np.testing.assert_allclose(shares, 1 / 7, atol=0.04)


def test_resampled_training_refuses_a_second_correction() -> None:
    with pytest.raises(ConfigError, match="balanced sampling corrects for class frequencies"):
        TrainConfig(data_dir="d", out_dir="o", sampling="balanced").validate()
    with pytest.raises(ConfigError, match="sqrt sampling"):
        TrainConfig(
            data_dir="d",
            out_dir="o",
            sampling="sqrt",
            class_weighting="none",
            loss="logit_adjusted",
        ).validate()
    TrainConfig(data_dir="d", out_dir="o", sampling="sqrt", class_weighting="none").validate()


def test_real_ham10000_layout_loads_and_splits() -> None:
    root = SHARED / "data" / "ham10000-200x150"
    if not root.is_dir():
        pytest.skip(f"{root} is absent: the real dataset is only beside the checkout")
    samples = detect_and_load(root)
    assert len(samples) == 10015
    assert len({s.lesion_id for s in samples}) == 7470
    split = grouped_stratified_split(samples, 0.15, 0.15, seed=0)
    train_lesions = {s.lesion_id for s in split.train}
    assert not train_lesions & {s.lesion_id for s in split.test}
    assert not train_lesions & {s.lesion_id for s in split.val}
    melanoma_share = sum(s.dx == "mel" for s in split.test) / len(split.test)
    assert melanoma_share == pytest.approx(1113 / 10015, abs=0.02)
