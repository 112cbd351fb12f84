"""Export a bundle's Keras model to ONNX and check the export before anything serves it.

The check runs both models on the same inputs (real images where the caller has them) and
accepts the export only when every probability agrees within ``MAX_ABS_DIFF`` and every image
gets the same top class. What was checked, on what, and with what result goes into the
manifest under ``"onnx"``; a failed export leaves no ONNX file behind, only the reason, and the
bundle is served by its Keras model.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.bundle import ONNX_FILE

if TYPE_CHECKING:  # the web process and workers' main processes import this without Keras
    import keras

logger = logging.getLogger(__name__)

MAX_ABS_DIFF = 1e-4
# A few images are enough to catch a wrong layout or a mistranslated layer.
CHECK_IMAGES = 8


def synthetic_check_inputs(input_size: int, count: int = CHECK_IMAGES) -> np.ndarray:
    """Smooth, skin-toned random images: a stand-in when no real images are at hand."""
    rng = np.random.default_rng(0)
    coarse = rng.uniform(60, 230, size=(count, 8, 8, 3)).astype(np.float32)
    repeat = -(-input_size // 8)
    images = coarse.repeat(repeat, axis=1).repeat(repeat, axis=2)[:, :input_size, :input_size]
    return np.ascontiguousarray(images)


def onnx_session(path: str | Path, *, threads: int | None = None):
    """An ONNX Runtime session on the best provider present (CUDA, else CPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    # Idle pool threads would otherwise spin on their cores between runs, taking CPU from the web
    # processes and the database that share the host (measured under a backlog: a worker child
    # with two threads used 35 ms of CPU per photo while they spun, 20 ms without).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


def export_checked(
    model: keras.Model, bundle_dir: Path, check_inputs: np.ndarray, *, source: str
) -> dict[str, Any]:
    """Write ``bundle_dir/model.onnx`` if it matches ``model`` on ``check_inputs``.

    Returns the manifest record. Never raises for a failed export or check: the record says why
    and the file is removed.
    """
    target = Path(bundle_dir) / ONNX_FILE
    record: dict[str, Any] = {
        "checked_on": f"{len(check_inputs)} {source} images",
        "max_abs_diff_allowed": MAX_ABS_DIFF,
    }
    try:
        expected = np.asarray(model(check_inputs, training=False), dtype=np.float64)
        # Keras prints "Saved artifact at ..." and tf2onnx logs each pass; keep output clean.
        logging.getLogger("tf2onnx").setLevel(logging.WARNING)
        with contextlib.redirect_stdout(io.StringIO()):
            model.export(str(target), format="onnx", verbose=False)
        session = onnx_session(target)
        name = session.get_inputs()[0].name
        got = np.asarray(session.run(None, {name: check_inputs})[0], dtype=np.float64)
    except Exception as exc:  # tf2onnx and ONNX Runtime raise many types for unsupported layers
        target.unlink(missing_ok=True)
        logger.warning("ONNX export failed; the Keras model will serve: %s", exc)
        return {**record, "file": None, "error": f"export failed: {type(exc).__name__}: {exc}"}
    max_diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else None
    same_top = got.shape == expected.shape and bool(
        (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    )
    record.update({"max_abs_diff": max_diff, "same_top_class": same_top})
    if max_diff is None or max_diff > MAX_ABS_DIFF or not same_top:
        target.unlink(missing_ok=True)
        shape = f"output shape {got.shape} vs {expected.shape}"
        reason = f"check failed: max abs difference {max_diff}, same top class {same_top}, {shape}"
        logger.warning("ONNX export refused; the Keras model will serve: %s", reason)
        return {**record, "file": None, "error": reason}
    return {**record, "file": ONNX_FILE}
