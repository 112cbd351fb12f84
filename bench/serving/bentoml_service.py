"""The BentoML service of baseline (c): adaptive batching over the bundle's ONNX export.

Runs inside BentoML's own venv (see ``bentoml_runner``), which holds neither this repository
nor TensorFlow, so it imports nothing from the repository: the preprocessing below copies the
steps of ``ml.preprocess.Preprocessing`` (stretch fit, no colour constancy) that apply to photos (JPEG draft at >= the input size,
EXIF orientation, RGB, per-channel float32 bilinear resize). Each HTTP request carries one
image; BentoML's dispatcher gathers concurrent requests into one call of ``classify``, which
preprocesses them and runs ONNX Runtime once on the whole batch.
"""

import json
import os
from pathlib import Path

import bentoml
import numpy as np
from PIL import Image, ImageOps

BUNDLE_ENV = "SKINSIGHT_BENTOML_BUNDLE"
# Requests the dispatcher may merge into one ONNX call; a batch of 8 already gets most of
# ONNX Runtime's batching gain on CPU.
MAX_BATCH_SIZE = 16
# BentoML cancels (503) requests it predicts would wait longer than this; it is set well above
# a full batch's time here so that the benchmark measures throughput, not rejections.
MAX_LATENCY_MS = 5000


def model_input(image: Image.Image, size: int) -> np.ndarray:
    """A lazily opened Pillow image -> float32 (size, size, 3) pixels in 0..255."""
    if image.format == "JPEG":
        image.draft("RGB", (size, size))
    pixels = np.asarray(ImageOps.exif_transpose(image).convert("RGB"), dtype=np.float32)
    out = np.empty((size, size, 3), dtype=np.float32)
    for channel in range(3):
        plane = Image.fromarray(np.ascontiguousarray(pixels[..., channel]), "F")
        out[..., channel] = plane.resize((size, size), Image.Resampling.BILINEAR)
    return np.clip(out, 0.0, 255.0, out=out)


@bentoml.service(workers=1, traffic={"timeout": 300})
class SkinSightOnnx:
    """One worker: ONNX Runtime already spreads each batch over every core."""

    def __init__(self) -> None:
        import onnxruntime as ort

        bundle_dir = Path(os.environ[BUNDLE_ENV])
        self.size = int(json.loads((bundle_dir / "manifest.json").read_text())["input_size"])
        self.session = ort.InferenceSession(
            str(bundle_dir / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
    def classify(self, images: list[Image.Image]) -> np.ndarray:
        """Class probabilities, one row per image, for every image of the gathered batch."""
        batch = np.stack([model_input(image, self.size) for image in images])
        return self.session.run(None, {self.input_name: batch})[0]
