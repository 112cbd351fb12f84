"""A small synthetic dataset a tiny model can learn, in every supported layout (tests only)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ml.classes import CLASSES, NUM_CLASSES
from ml.datasets import HAM_METADATA, SNAPSHOT_LABELS


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
