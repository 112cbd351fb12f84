"""What runs a bundle's model: ONNX Runtime when the bundle has a checked export, else Keras.

Both take a float32 (N, size, size, 3) batch of 0..255 pixels and return the model's softmax
output; ``name`` is recorded with every prediction so a result says what computed it.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from ml.bundle import ONNX_FILE, Bundle
from ml.onnx_export import onnx_session

logger = logging.getLogger(__name__)


class Engine(Protocol):
    name: str

    def run(self, batch: np.ndarray) -> np.ndarray: ...


class OnnxEngine:
    def __init__(self, path, *, threads: int | None) -> None:
        self._session = onnx_session(path, threads=threads)
        self._input = self._session.get_inputs()[0].name
        provider = self._session.get_providers()[0]
        self.name = "onnxruntime-cuda" if provider == "CUDAExecutionProvider" else "onnxruntime-cpu"

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: batch})[0]


class KerasEngine:
    """The Keras model behind one traced TensorFlow function (eager calls cost ~5x more)."""

    name = "keras-compiled"

    def __init__(self, model) -> None:
        import tensorflow as tf  # only this fallback needs TensorFlow in a serving process

        self._call = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)

    @classmethod
    def of(cls, opened: Bundle) -> KerasEngine:
        # Imported here, not with this module: a child serving the ONNX export never loads
        # TensorFlow (4.6 s and about 550 MB of every inference child when it did).
        from ml.bundle.keras_io import with_keras_model

        return cls(with_keras_model(opened).model)

    def run(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._call(batch))


def open_engine(opened: Bundle, *, threads: int | None = None) -> Engine:
    """ONNX Runtime on the bundle's checked export when it has a usable one, else Keras."""
    record = opened.manifest.get("onnx") or {}
    path = opened.file(ONNX_FILE) if record.get("file") == ONNX_FILE else None
    if path is not None:
        try:
            return OnnxEngine(path, threads=threads)
        except Exception as exc:  # ONNX Runtime raises its own types for damaged graphs
            logger.warning("ONNX model of %s unusable, serving Keras: %s", opened.path, exc)
    elif ONNX_FILE in opened.unusable:
        logger.warning(
            "ONNX model of %s unusable, serving Keras: %s",
            opened.path,
            opened.unusable[ONNX_FILE],
        )
    return KerasEngine.of(opened)
