"""Grad-CAM heat maps: where in the photo the model found the evidence for a class.

Grad-CAM (Selvaraju et al., 2017) weights each channel of the last spatial feature map by the mean
gradient of the class score over that channel, sums, and keeps the positive part. The score is the
class's logit, taken before the softmax: the gradient of a probability near 1 vanishes exactly when
the model is most sure, and the map would go blank.

Our models are one chain of top-level layers (input, normalisation, backbone or conv blocks, head),
so the explainer runs that chain itself and keeps the feature map on the way; it checks once, on
construction, that the chain reproduces the model's own output, and refuses a model it cannot follow.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf  # gradients need the backend; Keras 3 here runs on TensorFlow

from ml.bundle import Bundle
from ml.bundle.keras_io import load_bundle
from ml.heatmaps import GradCamError, HeatMap
from ml.preprocess import decode_image
from ml.recipe import ServingRecipe


def _chain(model: keras.Model) -> list[keras.Layer]:
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


class GradCam:
    """Heat maps for one model; build once per process and reuse (the check runs a forward pass)."""

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self.layers = _chain(model)
        if not self.layers:
            raise GradCamError(f"model {model.name} has no layers")
        size = tuple(int(d) for d in model.inputs[0].shape[1:])
        probe = np.random.default_rng(0).uniform(0, 255, (1, *size)).astype(np.float32)
        try:
            features, _, probabilities = self._forward(probe)
        except (ValueError, TypeError) as exc:  # a layer fed what another branch should feed it
            raise GradCamError(
                f"model {model.name} is not one chain of layers; Grad-CAM cannot follow it"
            ) from exc
        if features is None:
            raise GradCamError(f"model {model.name} has no spatial feature map to explain")
        expected = np.asarray(model(probe, training=False))
        if expected.shape != tuple(probabilities.shape) or not np.allclose(
            np.asarray(probabilities), expected, atol=1e-4
        ):
            raise GradCamError(
                f"model {model.name} is not one chain of layers; Grad-CAM cannot follow it"
            )
        self.layer_name = self.layers[self._feature_index].name

    def _forward(self, batch):
        """Run the chain: (last spatial feature map, logits, probabilities)."""
        x = batch
        features = None
        head = self.layers[-1]
        for index, layer in enumerate(self.layers[:-1]):
            x = layer(x, training=False)
            if len(x.shape) == 4:
                features, self._feature_index = x, index
        if isinstance(head, keras.layers.Dense) and head.activation is keras.activations.softmax:
            logits = keras.ops.matmul(keras.ops.cast(x, "float32"), head.kernel) + head.bias
            probabilities = keras.ops.softmax(logits)
        else:
            # A head we cannot split: the score is the output itself.
            probabilities = head(x, training=False)
            logits = probabilities
        return features, logits, probabilities

    def explain(self, image: np.ndarray, class_index: int) -> HeatMap:
        """The heat map for ``class_index`` on one float32 (size, size, 3) model input."""
        batch = tf.convert_to_tensor(image[np.newaxis].astype(np.float32))
        with tf.GradientTape() as tape:
            features, logits, _ = self._forward(batch)
            score = logits[:, class_index]
        gradients = tape.gradient(score, features)
        features = tf.cast(features, tf.float32)[0]
        weights = tf.reduce_mean(tf.cast(gradients, tf.float32)[0], axis=(0, 1))
        cam = tf.nn.relu(tf.reduce_sum(features * weights, axis=-1)).numpy()
        peak = float(cam.max())
        grid = cam / peak if peak > 0 else np.zeros_like(cam)
        return HeatMap(class_index=class_index, layer=self.layer_name, grid=grid)


class Explainer:
    """Heat maps for a bundle's model: the same input as its predictions, the classes by name."""

    def __init__(self, loaded: Bundle) -> None:
        self.gradcam = GradCam(loaded.model)
        self.input_size = int(loaded.manifest["input_size"])
        self.class_names: list[str] = list(loaded.manifest["class_names"])
        # The same input its predictions get; a recipe this code cannot follow is a BundleError.
        self.preprocessing = ServingRecipe.checked(loaded.manifest, loaded.path).preprocessing

    @classmethod
    def from_bundle(cls, path: str | Path) -> Explainer:
        """Raises ``BundleError`` for a bundle that does not load, ``GradCamError`` for a model
        that cannot be explained."""
        return cls(load_bundle(path))

    def explain_bytes(self, blob: bytes, class_name: str) -> HeatMap:
        """The heat map of ``class_name`` on an encoded photo; ``ImageDecodeError`` on bad bytes."""
        if class_name not in self.class_names:
            raise GradCamError(f"the model has no class {class_name!r}")
        photo = decode_image(blob, at_least=self.input_size)
        heat = self.gradcam.explain(
            self.preprocessing.from_array(photo), self.class_names.index(class_name)
        )
        height, width = photo.shape[:2]
        left, top, right, bottom = self.preprocessing.seen_region(width, height)
        region = (left / width, top / height, right / width, bottom / height)
        return HeatMap(heat.class_index, heat.layer, heat.grid, region)
