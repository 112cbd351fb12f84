"""Write model files with Keras 2 (tf_keras), as the source paper's Flask app stored them.

Run in its own process (``python tests/ml/keras2_writer.py OUT``) so that Keras 2 never
shares a process with the Keras 3 code under test. Writes, for each model, ``NAME.json``
(``model.to_json()``), ``NAME_weights.h5`` (``save_weights``) and ``NAME.h5`` (``save``), plus
``reference.npz`` with each model's outputs on fixed inputs in its own pixel range.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tf_keras as k2

SIZE = 32


def paper_cnn() -> k2.Model:
    """The paper's basic CNN layout (narrower), Sequential with input_shape on the first layer."""
    model = k2.Sequential(name="paper_cnn")
    for index, filters in enumerate((16, 8, 4)):
        kwargs = {"input_shape": (SIZE, SIZE, 3)} if index == 0 else {}
        model.add(k2.layers.Conv2D(filters, 3, activation="relu", **kwargs))
        model.add(k2.layers.MaxPooling2D())
        model.add(k2.layers.Dropout(0.3))
    model.add(k2.layers.Flatten())
    model.add(k2.layers.Dense(32, activation="relu"))
    model.add(k2.layers.Dense(7, activation="softmax"))
    return model


def paper_mobilenet() -> k2.Model:
    """MobileNetV2 nested as one layer, then the paper's conv + pool + dropout + dense head."""
    backbone = k2.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(SIZE, SIZE, 3), alpha=0.35
    )
    inputs = k2.Input((SIZE, SIZE, 3))
    x = backbone(inputs)
    x = k2.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = k2.layers.GlobalAveragePooling2D()(x)
    x = k2.layers.Dropout(0.3)(x)
    outputs = k2.layers.Dense(7, activation="softmax")(x)
    return k2.Model(inputs, outputs, name="paper_mobilenet")


def with_lambda() -> k2.Model:
    """A model carrying Python code in a Lambda layer: must never be loaded."""
    inputs = k2.Input((SIZE, SIZE, 3))
    x = k2.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = k2.layers.GlobalAveragePooling2D()(x)
    outputs = k2.layers.Dense(7, activation="softmax")(x)
    return k2.Model(inputs, outputs, name="with_lambda")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    unit = rng.uniform(0, 1, (3, SIZE, SIZE, 3)).astype("float32")
    # Inputs in each model's own range: pixels / 255 for the CNN, / 127.5 - 1 for MobileNetV2.
    inputs = {"paper_cnn": unit, "paper_mobilenet": unit * 2 - 1, "with_lambda": unit}
    reference = {"pixels": (unit * 255).astype("float32")}
    for name, build in (
        ("paper_cnn", paper_cnn),
        ("paper_mobilenet", paper_mobilenet),
        ("with_lambda", with_lambda),
    ):
        model = build()
        (out / f"{name}.json").write_text(model.to_json())
        model.save_weights(out / f"{name}_weights.h5")
        if name != "with_lambda":
            model.save(out / f"{name}.h5")
        if name == "paper_cnn":
            # The newer weights layout tf.keras picks for a '.weights.h5' name.
            model.save_weights(out / f"{name}.weights.h5")
        reference[name] = model.predict(inputs[name], verbose=0)
    np.savez(out / "reference.npz", **reference)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
