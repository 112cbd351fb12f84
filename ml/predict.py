"""Serving-side prediction from a verified bundle.

Workers create one ``Predictor`` per process (after fork), call ``warm_up`` before taking
jobs, and reuse it for every micro-batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml.bundle import LoadedBundle, load_bundle
from ml.calibration import calibrate
from ml.preprocess import decode_image, resize_batch

# Keeps peak memory bounded when a caller hands over a large list at once.
MAX_BATCH = 32


class Predictor:
    def __init__(self, bundle: LoadedBundle) -> None:
        self._bundle = bundle
        self.model = bundle.model
        self.input_size = int(bundle.manifest["input_size"])
        self.class_names: list[str] = list(bundle.manifest["class_names"])
        self.temperature = float(bundle.manifest.get("calibration_temperature") or 1.0)

    @classmethod
    def from_bundle(cls, path: str | Path) -> Predictor:
        return cls(load_bundle(path))

    @property
    def manifest(self) -> dict[str, Any]:
        return self._bundle.manifest

    @property
    def version(self) -> str:
        """sha256 of the manifest: it changes whenever any file of the bundle changes."""
        return self._bundle.manifest_sha256

    @property
    def path(self) -> Path:
        return self._bundle.path

    def warm_up(self) -> None:
        """Run one dummy batch so graph tracing happens before the first real request."""
        dummy = np.zeros((self.input_size, self.input_size, 3), dtype=np.uint8)
        self.predict_arrays([dummy])

    def predict_arrays(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated class probabilities, shape (N, num_classes), for uint8 HxWx3 images."""
        num_classes = len(self.class_names)
        if len(images) == 0:
            return np.zeros((0, num_classes), dtype=np.float64)
        outputs = []
        for start in range(0, len(images), MAX_BATCH):
            batch = resize_batch(images[start : start + MAX_BATCH], self.input_size)
            outputs.append(np.asarray(self.model(batch, training=False)))
        raw = np.concatenate(outputs, axis=0)
        return calibrate(raw, self.temperature)

    def predict_bytes(self, blobs: Sequence[bytes]) -> np.ndarray:
        """Like ``predict_arrays`` for encoded images; raises ``ImageDecodeError`` on bad bytes."""
        return self.predict_arrays([decode_image(blob) for blob in blobs])
