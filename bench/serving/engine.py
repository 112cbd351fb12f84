"""(a) The bare engine: what the model and the preprocessing cost with no server around them.

This is the ceiling every served baseline is compared against: ONNX Runtime on the bundle's
export at batch 1 and at larger batches (what adaptive batching can win at most), the Keras
model behind one traced ``tf.function`` (what a TensorFlow worker gets), the eager Keras call
(what ``model(x)`` costs without tracing), and decode+resize per photo.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ml.preprocess import Preprocessing

EAGER_CALLS = 5
WARMUP_CALLS = 3


def measure_engine(
    bundle_dir: Path,
    photos: Sequence[Path],
    *,
    batch_sizes: Sequence[int] = (1, 8),
    seconds: float = 5.0,
) -> dict:
    """Time preprocessing, ONNX Runtime at each of ``batch_sizes`` and Keras at batch 1.

    Every engine timing runs on the same preprocessed photos (cycled to fill larger batches),
    for about ``seconds`` each. Returns plain numbers: milliseconds are medians per call.
    """
    bundle_dir = Path(bundle_dir)
    size = int(json.loads((bundle_dir / "manifest.json").read_text())["input_size"])
    encoded = [Path(photo).read_bytes() for photo in photos]
    images, preprocess_ms = _preprocess(encoded, size)
    sizes = sorted({1, *batch_sizes})
    return {
        "photos": len(encoded),
        "input_size": size,
        "preprocess_ms_per_image": preprocess_ms,
        "onnxruntime": _measure_onnx(bundle_dir / "model.onnx", images, sizes, seconds),
        "keras": _measure_keras(bundle_dir / "model.keras", images, seconds),
    }


def _preprocess(encoded: list[bytes], size: int) -> tuple[np.ndarray, float]:
    """All photos through the serving preprocessing once; returns them and the median ms per photo."""
    preprocessing = Preprocessing(size)
    images, times = [], []
    for data in encoded:
        started = time.perf_counter()
        images.append(preprocessing.from_bytes(data))
        times.append(time.perf_counter() - started)
    return np.stack(images), statistics.median(times) * 1000.0


def _batch(images: np.ndarray, size: int) -> np.ndarray:
    """The first ``size`` images, cycling through them when there are fewer."""
    return np.ascontiguousarray(images[np.arange(size) % len(images)])


def _measure_onnx(path: Path, images: np.ndarray, sizes: list[int], seconds: float) -> dict:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    batches = {}
    for size in sizes:
        batch = _batch(images, size)
        batches[str(size)] = _repeat(lambda b=batch: session.run(None, {name: b}), size, seconds)
    return {
        "version": ort.__version__,
        "providers": session.get_providers(),
        "batches": batches,
    }


def _measure_keras(path: Path, images: np.ndarray, seconds: float) -> dict:
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(path, safe_mode=True)
    single = _batch(images, 1)
    traced = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)
    return {
        "version": keras.__version__,
        "tensorflow": tf.__version__,
        "tf_function_batch_1": _repeat(lambda: np.asarray(traced(single)), 1, seconds),
        "eager_batch_1": _repeat_calls(
            lambda: np.asarray(model(single, training=False)), 1, EAGER_CALLS
        ),
    }


def _repeat(call: Callable[[], object], batch_size: int, seconds: float) -> dict:
    """Call ``call`` repeatedly for about ``seconds`` after a warm-up."""
    for _ in range(WARMUP_CALLS):
        call()
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or not times:
        times.append(_timed(call))
    return _summary(times, batch_size)


def _repeat_calls(call: Callable[[], object], batch_size: int, calls: int) -> dict:
    """``calls`` timed calls after one untimed one (eager calls are too slow to run for long)."""
    call()
    return _summary([_timed(call) for _ in range(calls)], batch_size)


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _summary(times: list[float], batch_size: int) -> dict:
    return {
        "batch_size": batch_size,
        "calls": len(times),
        "ms_per_call": statistics.median(times) * 1000.0,
        "images_per_second": batch_size * len(times) / sum(times),
    }
