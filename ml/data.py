"""Datasets: load labelled images from the supported layouts, split them, feed Keras.

Supported layouts (``detect_and_load`` picks one):

* HAM10000 as published: ``HAM10000_metadata.csv`` (columns ``lesion_id``, ``image_id``,
  ``dx``, ...) at the root, images ``<image_id>.jpg`` / ``.png`` anywhere below the root (the
  download splits them into ``HAM10000_images_part_1`` and ``_part_2``).
* Confirmed-cases snapshot exported by the web app: ``labels.csv`` at the root with columns
  ``image`` (path relative to the snapshot root, ``/``-separated; ``file`` is accepted as an
  alias), ``dx`` (one of the seven class codes) and ``lesion_id`` (photos of the same lesion
  share it, so splits keep them together). Extra columns are ignored. Example::

      image,dx,lesion_id
      images/7f3a.jpg,mel,lesion-42

* One folder per class: ``<root>/<dx code>/<image>``; each image is its own lesion.

Every failure raises ``DatasetError`` with a message saying what is wrong and where.
"""

from __future__ import annotations

import csv
import hashlib
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ml.classes import CLASSES, NUM_CLASSES

HAM_METADATA = "HAM10000_metadata.csv"
SNAPSHOT_LABELS = "labels.csv"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_HAM_COLUMNS = ("lesion_id", "image_id", "dx")


class DatasetError(ValueError):
    """A dataset is missing, malformed or empty."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label_index: int
    lesion_id: str
    image_id: str

    @property
    def dx(self) -> str:
        return CLASSES[self.label_index]


def _progress(iterable: Iterable[Any], description: str) -> Iterable[Any]:
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=description, unit=" files", leave=False, mininterval=0.5)


def _label_index(dx: str, where: str) -> int:
    code = dx.strip().lower()
    if code not in CLASSES:
        raise DatasetError(f"{where}: unknown dx {dx!r}; expected one of {', '.join(CLASSES)}")
    return CLASSES.index(code)


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            missing = [c for c in required if c not in columns]
            if missing:
                raise DatasetError(
                    f"{path}: missing column(s) {', '.join(missing)}; found {columns or 'none'}"
                )
            rows = [
                {(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader
            ]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: not a readable CSV file: {exc}") from exc
    if not rows:
        raise DatasetError(f"{path}: no data rows, the dataset is empty")
    return rows


def _index_images(root: Path) -> dict[str, Path]:
    """Map image stem -> path for every image below ``root``; the first in sorted order wins."""
    found: dict[str, Path] = {}
    walked = sorted(os.walk(root, followlinks=False))
    for directory, _subdirs, files in _progress(walked, f"scanning {root}"):
        for name in sorted(files):
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in IMAGE_SUFFIXES:
                found.setdefault(stem, Path(directory) / name)
    return found


def require_dataset_dir(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    return root


def load_ham10000(root: str | Path) -> list[Sample]:
    """Load the HAM10000 layout (see module docstring)."""
    root = require_dataset_dir(root)
    metadata = root / HAM_METADATA
    if not metadata.is_file():
        raise DatasetError(f"HAM10000 metadata not found: {metadata}")
    rows = _read_csv(metadata, _HAM_COLUMNS)
    images = _index_images(root)
    samples: list[Sample] = []
    missing: list[str] = []
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        where = f"{metadata} row {number}"
        if not row["image_id"] or not row["lesion_id"]:
            raise DatasetError(f"{where}: empty image_id or lesion_id")
        label = _label_index(row["dx"], where)
        path = images.get(row["image_id"])
        if path is None:
            missing.append(row["image_id"])
            continue
        samples.append(Sample(path, label, row["lesion_id"], row["image_id"]))
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DatasetError(
            f"{len(missing)} of {len(rows)} images listed in {metadata} not found below {root} "
            f"(looked for <image_id>.jpg/.jpeg/.png): {shown}"
        )
    return samples


def load_class_folders(root: str | Path) -> list[Sample]:
    """Load ``<root>/<dx code>/<image>``; the image stem serves as image and lesion id."""
    root = require_dataset_dir(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [p.name for p in folders if p.name.lower() not in CLASSES]
    if unknown:
        raise DatasetError(
            f"{root}: folder(s) {', '.join(unknown)} are not class codes; "
            f"expected folders named {', '.join(CLASSES)}"
        )
    samples = []
    for folder in folders:
        label = CLASSES.index(folder.name.lower())
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                samples.append(Sample(path, label, path.stem, path.stem))
    if not samples:
        raise DatasetError(f"{root}: no images found in the class folders")
    return samples


def load_confirmed_cases_snapshot(root: str | Path) -> list[Sample]:
    """Load a web-app snapshot: ``labels.csv`` with ``image,dx,lesion_id`` (module docstring)."""
    root = require_dataset_dir(root)
    labels = root / SNAPSHOT_LABELS
    if not labels.is_file():
        raise DatasetError(f"snapshot labels not found: {labels}")
    with open(labels, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    image_column = "file" if "file" in header and "image" not in header else "image"
    rows = _read_csv(labels, (image_column, "dx", "lesion_id"))
    resolved_root = root.resolve()
    samples = []
    missing = []
    for number, row in enumerate(rows, start=2):
        where = f"{labels} row {number}"
        relative = PurePosixPath(row[image_column])
        if not row[image_column] or relative.is_absolute() or ".." in relative.parts:
            raise DatasetError(f"{where}: image path must be relative to the snapshot root")
        path = root / relative
        if not path.resolve().is_relative_to(resolved_root):
            raise DatasetError(f"{where}: image path {relative} leaves the snapshot root")
        label = _label_index(row["dx"], where)
        if not path.is_file():
            missing.append(str(relative))
            continue
        samples.append(Sample(path, label, row["lesion_id"] or path.stem, path.stem))
    if missing:
        raise DatasetError(
            f"{len(missing)} image(s) listed in {labels} not found: {', '.join(missing[:5])}"
        )
    return samples


def detect_layout(root: str | Path) -> str:
    root = require_dataset_dir(root)
    if (root / HAM_METADATA).is_file():
        return "ham10000"
    if (root / SNAPSHOT_LABELS).is_file():
        return "snapshot"
    if any(p.is_dir() and p.name.lower() in CLASSES for p in root.iterdir()):
        return "folders"
    raise DatasetError(
        f"{root}: unrecognised dataset layout; expected {HAM_METADATA}, {SNAPSHOT_LABELS} "
        f"or one folder per class ({', '.join(CLASSES)})"
    )


def detect_and_load(root: str | Path) -> list[Sample]:
    loaders = {
        "ham10000": load_ham10000,
        "snapshot": load_confirmed_cases_snapshot,
        "folders": load_class_folders,
    }
    samples = loaders[detect_layout(root)](root)
    if not samples:
        raise DatasetError(f"{root}: the dataset is empty")
    return samples


def limit_per_class(samples: Sequence[Sample], limit: int, seed: int) -> list[Sample]:
    """Keep at most ``limit`` samples per class, chosen reproducibly, for quick runs."""
    order = np.random.default_rng(seed).permutation(len(samples))
    kept: list[Sample] = []
    counts: Counter[int] = Counter()
    for index in order:
        sample = samples[int(index)]
        if counts[sample.label_index] < limit:
            counts[sample.label_index] += 1
            kept.append(sample)
    return sorted(kept, key=lambda s: s.image_id)


def dataset_fingerprint(samples: Sequence[Sample]) -> str:
    """sha256 over labels, lesion ids and image bytes: equal fingerprints mean equal data."""
    digest = hashlib.sha256()
    for sample in sorted(samples, key=lambda s: s.image_id):
        digest.update(f"{sample.image_id}\0{sample.dx}\0{sample.lesion_id}\0".encode())
        digest.update(hashlib.sha256(sample.path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass
class Split:
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    seed: int = 0
    val_fraction: float = 0.0
    test_fraction: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Image ids per split, stored in the bundle so evaluation can rebuild the test set."""
        return {
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "grouped_by": "lesion_id",
            **self.meta,
            "counts": {name: len(part) for name, part in self.parts().items()},
            **{name: [s.image_id for s in part] for name, part in self.parts().items()},
        }

    def parts(self) -> dict[str, list[Sample]]:
        return {"train": self.train, "val": self.val, "test": self.test}


def _take_group_fold(
    samples: list[Sample], fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Split off about ``fraction`` of ``samples`` as whole lesions, stratified by class."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups = {s.lesion_id for s in samples}
    if fraction <= 0 or len(groups) < 2:
        return samples, []
    largest_class = max(Counter(s.label_index for s in samples).values())
    # StratifiedGroupKFold needs some class with at least n_splits samples; on tiny data the
    # held-out share therefore grows beyond ``fraction`` rather than failing.
    n_splits = max(min(round(1.0 / fraction), len(groups), largest_class), 2)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    labels = [s.label_index for s in samples]
    lesions = [s.lesion_id for s in samples]
    with warnings.catch_warnings():
        # Rare classes with fewer lesions than folds are expected in small datasets.
        warnings.simplefilter("ignore", UserWarning)
        try:
            rest_index, held_index = next(splitter.split(np.zeros(len(samples)), labels, lesions))
        except ValueError as exc:
            raise DatasetError(f"too few images per class to split the dataset: {exc}") from exc
    return [samples[i] for i in rest_index], [samples[i] for i in held_index]


def grouped_stratified_split(
    samples: Sequence[Sample],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> Split:
    """Split by lesion (no lesion in two parts), stratified by class, reproducible per seed."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum below 1")
    if not samples:
        raise DatasetError("cannot split an empty dataset")
    ordered = sorted(samples, key=lambda s: s.image_id)
    rest, test = _take_group_fold(ordered, test_fraction, seed)
    # The validation fraction is of the whole dataset, so rescale it to what is left.
    val_of_rest = val_fraction / (1.0 - test_fraction) if test else val_fraction
    train, val = _take_group_fold(rest, val_of_rest, seed + 1)
    return Split(train, val, test, seed, val_fraction, test_fraction)


def select_by_image_ids(samples: Sequence[Sample], image_ids: Iterable[str]) -> list[Sample]:
    """Samples whose image id is listed; raises if any listed id is absent from ``samples``."""
    by_id = {s.image_id: s for s in samples}
    wanted = list(image_ids)
    absent = [i for i in wanted if i not in by_id]
    if absent:
        raise DatasetError(f"{len(absent)} image id(s) not in the dataset, e.g. {absent[0]}")
    return [by_id[i] for i in wanted]


CLASS_WEIGHTINGS = ("balanced", "sqrt", "none")


def class_weights(
    samples: Sequence[Sample], num_classes: int = NUM_CLASSES, mode: str = "balanced"
) -> dict[int, float]:
    """Loss weights per class against HAM10000's imbalance (nv is 67% of images, df 1%).

    ``balanced`` is n / (k * count); ``sqrt`` its square root, a softer pull that trades less
    overall accuracy for minority-class recall; ``none`` weighs every class 1. Classes with no
    samples get 1.0 (never used).
    """
    if mode not in CLASS_WEIGHTINGS:
        raise ValueError(
            f"class weighting must be one of {', '.join(CLASS_WEIGHTINGS)}, not {mode!r}"
        )
    counts = Counter(s.label_index for s in samples)
    present = len(counts)
    total = len(samples)
    weights = {}
    for c in range(num_classes):
        balanced = total / (present * counts[c]) if counts[c] else 1.0
        weights[c] = {"balanced": balanced, "sqrt": balanced**0.5, "none": 1.0}[mode]
    return weights


def make_dataset(
    samples: Sequence[Sample],
    image_size: int,
    batch_size: int,
    *,
    training: bool,
    cache: bool | str = True,
    seed: int = 0,
) -> Any:
    """A ``tf.data.Dataset`` of (float32 0..255 images, int class labels) batches.

    Images are decoded with ``ml.preprocess.decode_image`` (the serving decoder) and resized
    with ``ml.preprocess.resize_image``; the result is cached (``True``: memory, a string: that
    file prefix), so after the first epoch a batch costs a copy. Augmentation is not done here
    but in the training step (``ml.train.augmented``): on a 2-core machine every CPU cycle the
    pipeline spends is taken from the model, and inside the step it runs fused with the model.
    """
    import tensorflow as tf

    from ml.preprocess import decode_image_file, resize_image

    paths = [str(s.path) for s in samples]
    labels = np.array([s.label_index for s in samples], dtype=np.int32)
    ds = tf.data.Dataset.from_tensor_slices((paths, labels))

    def load(path: Any, label: Any) -> tuple[Any, Any]:
        image = tf.numpy_function(decode_image_file, [path], tf.uint8, stateful=False)
        image.set_shape([None, None, 3])
        resized = resize_image(image, image_size)
        resized.set_shape([image_size, image_size, 3])
        return resized, label

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if training:
        ds = ds.shuffle(max(len(paths), 1), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def build_augmenter(seed: int = 0, colour_jitter: float = 0.0) -> Any:
    """Rotation, zoom and both flips: lesions have no canonical orientation or scale.

    ``colour_jitter`` (0 to <1) adds random brightness, contrast and saturation changes of that
    strength, standing in for the different cameras, dermatoscopes and lighting of real uploads.
    Hue is left alone: a lesion's colour (blue-white veil, red vessels) is diagnostic.
    """
    import keras

    check_colour_jitter(colour_jitter)
    steps = [
        keras.layers.RandomFlip("horizontal_and_vertical", seed=seed),
        keras.layers.RandomRotation(0.25, fill_mode="reflect", seed=seed + 1),
        keras.layers.RandomZoom(0.15, fill_mode="reflect", seed=seed + 2),
    ]
    if colour_jitter:
        steps += [
            keras.layers.RandomBrightness(colour_jitter, value_range=(0, 255), seed=seed + 3),
            keras.layers.RandomContrast(colour_jitter, value_range=(0, 255), seed=seed + 4),
            # Keras' saturation factor is 0.5 for "unchanged", so the range is centred there.
            # It runs on 0..1 pixels: on 0..255 ones Keras 3.15 clips saturation at 255, not 1,
            # and over-saturated colours come back as negative pixel values.
            keras.layers.Rescaling(1 / 255),
            keras.layers.RandomSaturation(
                (0.5 - colour_jitter / 2, 0.5 + colour_jitter / 2),
                value_range=(0, 1),
                seed=seed + 5,
            ),
            keras.layers.Rescaling(255),
        ]
    return keras.Sequential(steps, name="augmentation")


def check_colour_jitter(strength: float) -> None:
    if not 0.0 <= strength < 1.0:
        raise ValueError(f"colour jitter must be at least 0 and below 1, not {strength}")


def write_tiny_dataset(
    root: str | Path,
    per_class: int = 4,
    size: int = 32,
    seed: int = 0,
    layout: str = "ham10000",
) -> Path:
    """Write a small synthetic dataset a tiny model can learn, for tests and demos.

    Each class gets its own hue and blob shape on a skin-toned background, with noise; two
    consecutive images of a class share a lesion id, so grouping is exercised. ``layout`` is
    ``"ham10000"`` (images split over two nested part folders), ``"folders"`` or ``"snapshot"``.
    """
    from PIL import Image

    if layout not in ("ham10000", "folders", "snapshot"):
        raise ValueError(f"unknown layout {layout!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1) - 0.5
    rows: list[tuple[str, str, str, str]] = []
    number = 0
    for label, dx in enumerate(CLASSES):
        hue = np.array(_CLASS_COLOURS[label], dtype=np.float64)
        for index in range(per_class):
            radius = 0.18 + 0.04 * label / NUM_CLASSES
            stretch = 1.0 + 0.5 * (label % 3)
            mask = (xx * stretch) ** 2 + yy**2 < radius**2 * 1.5
            image = np.empty((size, size, 3))
            image[:] = (224, 180, 160)
            image[mask] = hue
            image += rng.normal(0, 12, image.shape)
            pixels = np.clip(image, 0, 255).astype(np.uint8)
            image_id = f"ISIC_9{number:06d}"
            lesion_id = f"HAM_9{label:02d}{index // 2:04d}"
            number += 1
            if layout == "ham10000":
                folder = root / f"HAM10000_images_part_{1 + number % 2}"
            elif layout == "folders":
                folder = root / dx
            else:
                folder = root / "images"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{image_id}.jpg"
            Image.fromarray(pixels).save(path, quality=95)
            rows.append((lesion_id, image_id, dx, path.relative_to(root).as_posix()))
    if layout == "ham10000":
        with open(root / HAM_METADATA, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"]
            )
            for lesion_id, image_id, dx, _ in rows:
                writer.writerow([lesion_id, image_id, dx, "synthetic", "50.0", "unknown", "back"])
    elif layout == "snapshot":
        with open(root / SNAPSHOT_LABELS, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image", "dx", "lesion_id"])
            for lesion_id, _, dx, relative in rows:
                writer.writerow([relative, dx, lesion_id])
    return root


_CLASS_COLOURS = (
    (200, 40, 40),
    (40, 160, 60),
    (60, 60, 200),
    (220, 200, 40),
    (30, 20, 20),
    (130, 70, 30),
    (170, 40, 170),
)


def split_from_json(samples: Sequence[Sample], recorded: dict[str, Any]) -> Split:
    """Rebuild a recorded split over ``samples``; raises ``DatasetError`` if ids are missing."""
    parts = {
        name: select_by_image_ids(samples, recorded.get(name, []))
        for name in ("train", "val", "test")
    }
    return Split(
        parts["train"],
        parts["val"],
        parts["test"],
        int(recorded.get("seed", 0)),
        float(recorded.get("val_fraction", 0.0)),
        float(recorded.get("test_fraction", 0.0)),
    )
