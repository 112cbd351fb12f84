"""Serving-side prediction from a verified bundle.

Workers create one ``Predictor`` per process (after fork), call ``warm_up`` before taking
jobs, and reuse it for every micro-batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml.calibration import calibrate
from ml.engines import Engine, open_engine
from ml.manifest import BundleError, manifest_sha256, open_bundle
from ml.preprocess import UnsupportedPreprocessing, check_preprocessing, model_input, resize_batch
from ml.referral import Decision, ReferralRule, ReferralRuleError, decide

# Keeps peak memory bounded when a caller hands over a large list at once.
MAX_BATCH = 32


class Predictor:
    def __init__(self, engine: Engine, manifest: dict[str, Any], path: Path, sha256: str) -> None:
        self.engine = engine
        self.manifest = manifest
        self.path = path
        # sha256 of the manifest: it changes whenever any file of the bundle changes.
        self.version = sha256
        self.input_size = int(manifest["input_size"])
        self.class_names: list[str] = list(manifest["class_names"])
        self.temperature = float(manifest.get("calibration_temperature") or 1.0)
        # None: the bundle records no validated rule, and every photo it classifies is referred.
        self.referral_rule = ReferralRule.from_manifest(manifest.get("decision_thresholds"))

    @classmethod
    def from_bundle(cls, path: str | Path, *, threads: int | None = None) -> Predictor:
        """Open a verified bundle; refuse one whose preprocessing this code cannot reproduce."""
        with open_bundle(path) as opened:
            try:
                check_preprocessing(opened.manifest["preprocessing"], opened.manifest["input_size"])
                ReferralRule.from_manifest(opened.manifest.get("decision_thresholds"))
            except (UnsupportedPreprocessing, ReferralRuleError) as exc:
                raise BundleError(f"bundle {path}: {exc}") from exc
            engine = open_engine(opened, threads=threads)
            return cls(engine, opened.manifest, Path(path), manifest_sha256(opened.path))

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def warm_up(self) -> None:
        """Run one dummy batch so graph tracing and allocation happen before the first request."""
        self.predict_batch(np.zeros((1, self.input_size, self.input_size, 3), dtype=np.float32))

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape (N, num_classes), for a float32 (N, size, size, 3) batch."""
        num_classes = len(self.class_names)
        if len(batch) == 0:
            return np.zeros((0, num_classes), dtype=np.float64)
        outputs = [
            self.engine.run(np.ascontiguousarray(batch[start : start + MAX_BATCH]))
            for start in range(0, len(batch), MAX_BATCH)
        ]
        raw = np.concatenate(outputs, axis=0).astype(np.float64)
        return calibrate(raw, self.temperature)

    def predict_arrays(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Like ``predict_batch`` for uint8 HxWx3 images of any size."""
        return self.predict_batch(resize_batch(images, self.input_size))

    def decide(self, probabilities: dict[str, float]) -> Decision:
        """Refer or not, by this bundle's rule, for one photo's calibrated probabilities."""
        return decide(probabilities, self.referral_rule)

    def model_input(self, blob: bytes) -> np.ndarray:
        """One encoded image as this model's input; raises ``ImageDecodeError`` on bad bytes."""
        return model_input(blob, self.input_size)

    def predict_bytes(self, blobs: Sequence[bytes]) -> np.ndarray:
        """Like ``predict_batch`` for encoded images; raises ``ImageDecodeError`` on bad bytes."""
        batch = np.empty((len(blobs), self.input_size, self.input_size, 3), dtype=np.float32)
        for index, blob in enumerate(blobs):
            batch[index] = self.model_input(blob)
        return self.predict_batch(batch)
