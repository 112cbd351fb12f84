"""Serving-side prediction from a verified bundle.

Workers create one ``Predictor`` per process (after fork), call ``warm_up`` before taking
jobs, and reuse it for every micro-batch. Everything that turns a photo into an answer comes
from the bundle's manifest: the preprocessing, the test-time views, the temperature and the
decision rules; a bundle asking for a step this code does not perform is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml.answer import Answer
from ml.bundle import open_bundle
from ml.engines import Engine, open_engine
from ml.recipe import ServingRecipe
from ml.referral import Decision


class Predictor:
    def __init__(self, engine: Engine, manifest: dict[str, Any], path: Path, sha256: str) -> None:
        self.engine = engine
        self.manifest = manifest
        self.path = path
        # sha256 of the manifest: it changes whenever any file of the bundle changes.
        self.version = sha256
        self.recipe = ServingRecipe.checked(manifest, path)
        self.input_size = self.recipe.input_size
        self.class_names = self.recipe.class_names

    @classmethod
    def from_bundle(cls, path: str | Path, *, threads: int | None = None) -> Predictor:
        """Open a verified bundle; refuse one whose recipe this code cannot reproduce."""
        with open_bundle(path) as opened:
            ServingRecipe.checked(opened.manifest, path)
            engine = open_engine(opened, threads=threads)
            return cls(engine, opened.manifest, Path(path), opened.sha256)

    @property
    def engine_name(self) -> str:
        return self.engine.name

    @property
    def temperature(self) -> float:
        return self.recipe.temperature

    def warm_up(self) -> None:
        """Run one dummy batch so graph tracing and allocation happen before the first request."""
        self.predict_batch(np.zeros((1, self.input_size, self.input_size, 3), dtype=np.float32))

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape (N, num_classes), for a float32 (N, size, size, 3) batch."""
        return self.recipe.probabilities(self.engine.run, batch)

    def predict_arrays(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Like ``predict_batch`` for uint8 HxWx3 images of any size."""
        return self.predict_batch(self.recipe.preprocessing.batch(images))

    def decide(self, probabilities: dict[str, float]) -> Decision:
        """Refer or not, by this bundle's rule, for one photo's calibrated probabilities."""
        return self.recipe.rules.refer(probabilities)

    def top_class(self, probabilities: dict[str, float]) -> str:
        """The class a result names, by this bundle's top-class rule."""
        return self.recipe.rules.top_class_of(probabilities)

    def answer(self, probabilities: np.ndarray, latency_ms: int) -> Answer:
        """One photo's row of ``predict_batch`` as an answer, decided by this bundle's rules."""
        by_class = {n: float(p) for n, p in zip(self.class_names, probabilities, strict=True)}
        return Answer(
            by_class, self.top_class(by_class), self.decide(by_class), self.engine_name, latency_ms
        )

    def model_input(self, blob: bytes) -> np.ndarray:
        """One encoded image as this model's input; raises ``ImageDecodeError`` on bad bytes."""
        return self.recipe.preprocessing.from_bytes(blob)

    def predict_bytes(self, blobs: Sequence[bytes]) -> np.ndarray:
        """Like ``predict_batch`` for encoded images; raises ``ImageDecodeError`` on bad bytes."""
        batch = np.empty((len(blobs), self.input_size, self.input_size, 3), dtype=np.float32)
        for index, blob in enumerate(blobs):
            batch[index] = self.model_input(blob)
        return self.predict_batch(batch)
