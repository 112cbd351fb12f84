"""The training smoke run of the GPU check: MobileNetV2 through Keras 3 on JAX or torch, fed from
Python (a ``keras.utils.PyDataset``), never tf.data. Keras is imported here only, once the backend
has been chosen (``KERAS_BACKEND`` must be set before the first import)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ml.classes import CLASSES
from ml.preprocess import Preprocessing

WEIGHTS_FILE = "mobilenet_v2_notop.h5"


def _device(backend: str) -> str:
    if backend == "jax":
        import jax

        return str(jax.devices()[0])
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return "unknown"


def smoke_train(photos: list[tuple[Path, int]], inputs: Path, *, backend: str, size: int,
                epochs: int, batch_size: int) -> dict:  # fmt: skip
    import keras

    recipe = Preprocessing(size)

    class Photos(keras.utils.PyDataset):
        """Shuffled batches of (0..255 pixels, class index), decoded with the bundles' own code."""

        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.rng = np.random.default_rng(0)
            self.order = self.rng.permutation(len(photos))

        def __len__(self) -> int:
            return math.ceil(len(photos) / batch_size)

        def __getitem__(self, index: int):
            chosen = self.order[index * batch_size : (index + 1) * batch_size]
            x = np.stack([recipe.from_file(photos[i][0]) for i in chosen])
            return x, np.array([photos[i][1] for i in chosen], dtype="int32")

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(photos))

    weights = inputs / WEIGHTS_FILE
    base = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), include_top=False, pooling="avg",
        weights=str(weights) if weights.is_file() else None,
    )  # fmt: skip
    model = keras.Sequential([
        keras.Input((size, size, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1), base,
        keras.layers.Dense(len(CLASSES), activation="softmax"),
    ])  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])  # fmt: skip

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)
            print(f"[gpu] epoch {epoch + 1}/{epochs}: loss {logs['loss']:.3f} in {seconds[-1]:.1f} s",
                  flush=True)  # fmt: skip

    seconds: list[float] = []
    history = model.fit(Photos(), epochs=epochs, verbose=0, callbacks=[EpochTimes()])
    return {
        "backend": backend,
        "keras": keras.__version__,
        "device": _device(backend),
        "architecture": "mobilenet_v2",
        "image_size": size,
        "batch_size": batch_size,
        "imagenet_weights": weights.is_file(),
        "epochs": epochs,
        "loss": [round(float(v), 4) for v in history.history["loss"]],
        "epoch_seconds": [round(s, 2) for s in seconds],
        # The first epoch includes compiling; the last is the steady rate.
        "images_per_s_last_epoch": round(len(photos) / seconds[-1], 1),
    }
