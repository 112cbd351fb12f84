"""`python -m bench.gpu --inputs var/gpu-inputs [--epochs 2] [--image-size 128] [--json FILE]`

For a GPU host with PyTorch, JAX and ONNX Runtime but no TensorFlow (it runs on a CPU too, which is how
the suite checks it), on a folder made by `python -m bench.gpu.prepare`:

1. serving: ONNX Runtime on the bundle's export, on the best provider present (CUDA, else CPU), with
   the bundle's own preprocessing, at batch 1 and at the serving batch (INFERENCE_BATCH_SIZE, 8);
2. training: MobileNetV2 through Keras 3 on the JAX or torch backend (``KERAS_BACKEND``, else the
   first of the two installed), fed by a ``keras.utils.PyDataset`` of decoded photos (no tf.data).

Prints one JSON document (and writes it to ``--json``); exits 1 if TensorFlow was imported.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.gpu.prepare import LABELS
from bench.gpu.training import smoke_train
from ml.bundle import MANIFEST_NAME, ONNX_FILE
from ml.classes import CLASSES
from ml.onnx_export import onnx_session
from ml.preprocess import Preprocessing

SERVING_BATCH = 8


def labelled_photos(inputs: Path) -> list[tuple[Path, int]]:
    with (inputs / LABELS).open(newline="") as handle:
        return [(inputs / row["file"], CLASSES.index(row["dx"])) for row in csv.DictReader(handle)]


def measure_onnx(inputs: Path, photos: list[tuple[Path, int]], repeats: int) -> dict:
    manifest = json.loads((inputs / MANIFEST_NAME).read_text())
    recipe = Preprocessing.from_manifest(manifest["preprocessing"], int(manifest["input_size"]))
    pixels = np.stack([recipe.from_file(path) for path, _ in photos[: max(SERVING_BATCH, 16)]])
    session = onnx_session(inputs / ONNX_FILE)
    name = session.get_inputs()[0].name
    result = {"providers": session.get_providers(), "input_size": recipe.size}
    for batch in (1, SERVING_BATCH):
        feed = {name: np.ascontiguousarray(np.resize(pixels, (batch, *pixels.shape[1:])))}
        for _ in range(5):
            session.run(None, feed)  # warm-up: the first runs allocate and tune
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            session.run(None, feed)
            seconds.append(time.perf_counter() - started)
        result[f"batch_{batch}"] = {
            "p50_ms": round(1000 * statistics.median(seconds), 3),
            "images_per_s": round(batch * len(seconds) / sum(seconds), 1),
        }
    return result


def choose_backend() -> str:
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen:
        return chosen
    for backend in ("jax", "torch"):
        if importlib.util.find_spec(backend) is not None:
            return backend
    raise SystemExit(
        "neither JAX nor PyTorch is installed: the training smoke run needs one of them"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu")
    parser.add_argument("--inputs", type=Path, default=Path("var/gpu-inputs"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=200, help="timed ONNX runs per batch size")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    photos = labelled_photos(args.inputs)
    started = datetime.now(UTC)
    backend = choose_backend()
    os.environ["KERAS_BACKEND"] = backend  # before Keras is first imported, in training.py
    result = {
        "command": "python -m bench.gpu " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": started.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} CPU cores",
        "photos": len(photos),
        "onnx": measure_onnx(args.inputs, photos, args.repeats),
        "training": smoke_train(
            photos,
            args.inputs,
            backend=backend,
            size=args.image_size,
            epochs=args.epochs,
            batch_size=args.train_batch,
        ),
    }
    result["tensorflow_imported"] = "tensorflow" in sys.modules
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 1 if result["tensorflow_imported"] else 0


if __name__ == "__main__":
    sys.exit(main())
