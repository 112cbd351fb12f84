"""(b) The seed's design: a synchronous Flask endpoint calling Keras ``model.predict`` per image.

The source paper served its model this way, and it is reproduced faithfully rather than
optimised, because it is the baseline our serving path claims to beat: each gunicorn sync
worker loads the Keras model, and every request decodes the upload with Pillow, resizes it
with ``tf.image.resize`` (bilinear, no antialiasing: TensorFlow's default) and calls
``model.predict`` on a batch of one, answering with the probabilities as JSON.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import requests

from bench.serving.load import (
    free_port,
    run_load,
    run_server_load,
    start_server,
    stop_server,
    wait_until_answers,
)

ROOT = Path(__file__).resolve().parents[2]
BUNDLE_ENV = "SKINSIGHT_SEED_BUNDLE"
APP = "bench.serving.seed_server:create_app()"
DESIGN = (
    "Flask + gunicorn sync workers; per request: Pillow decode, tf.image.resize, "
    "Keras model.predict on a batch of one"
)
STARTUP_SECONDS = 180.0


def create_app(bundle_dir: str | Path | None = None):
    """The seed's Flask app; gunicorn calls this in each worker (bundle from ``BUNDLE_ENV``)."""
    # Imported here: the process running measure_seed needs neither TensorFlow nor Flask.
    import keras
    import numpy as np
    import tensorflow as tf
    from flask import Flask, jsonify, request
    from PIL import Image

    bundle_dir = Path(bundle_dir or os.environ[BUNDLE_ENV])
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    size = int(manifest["input_size"])
    model = keras.models.load_model(bundle_dir / "model.keras")
    app = Flask(__name__)

    @app.post("/predict")
    def predict():
        upload = request.files["image"]
        image = np.array(Image.open(io.BytesIO(upload.read())).convert("RGB"))
        resized = tf.image.resize(image, (size, size))
        probabilities = model.predict(np.expand_dims(resized, 0), verbose=0)[0]
        return jsonify(dict(zip(manifest["class_names"], probabilities.tolist(), strict=True)))

    return app


def measure_seed(
    bundle_dir: Path,
    photos: Sequence[Path],
    *,
    total: int = 300,
    clients: int = 8,
    workers: int = 2,
) -> dict:
    """Serve the seed app with ``workers`` gunicorn sync workers and load it with ``clients``.

    Photos are posted round-robin, one per request; every worker is warmed up first so model
    loading and tracing are not timed. The server is always stopped, even on failure.
    """
    uploads = [(Path(photo).name, Path(photo).read_bytes()) for photo in photos]
    port = free_port()
    url = f"http://127.0.0.1:{port}/predict"

    def send(session: requests.Session, index: int) -> requests.Response:
        name, data = uploads[index % len(uploads)]
        return session.post(url, files={"image": (name, data, "image/jpeg")}, timeout=120)

    with tempfile.TemporaryDirectory(prefix="seed-server-") as scratch:
        log = Path(scratch) / "gunicorn.log"
        server = start_server(
            _gunicorn_command(port, workers),
            log=log,
            env={BUNDLE_ENV: str(Path(bundle_dir).resolve()), "TF_CPP_MIN_LOG_LEVEL": "2"},
            cwd=ROOT,
        )
        try:
            with requests.Session() as probe:
                wait_until_answers(
                    server, lambda: send(probe, 0).ok, log=log, timeout=STARTUP_SECONDS
                )
            run_load(send, total=6 * workers, clients=workers)
            result = run_server_load(server, send, total, clients)
        finally:
            stop_server(server)
    return {**result, "workers": workers, "design": DESIGN}


def _gunicorn_command(port: int, workers: int) -> list[str]:
    # No --preload: as in the seed, each worker imports TensorFlow and loads the model itself.
    # The timeout only guards against a hung worker; a slow predict must not be killed. No
    # control socket: the seed had none, and concurrent runs would share its default path.
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        "sync",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "300",
        "--no-control-socket",
        APP,
    ]
