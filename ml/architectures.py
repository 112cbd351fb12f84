"""Model builders from the source paper, plus the freezing helpers for fine-tuning.

Every builder returns an *uncompiled* ``keras.Model`` whose input is float32 RGB in 0..255 of
shape (input_size, input_size, 3): the architecture's normalisation is its first layer, built
only from core Keras layers, so ``keras.saving.load_model(path, safe_mode=True)`` needs no
custom objects. ``ml.train`` compiles with the optimizer from ``ARCHITECTURES``, whose names and
defaults come from ``ml.architecture_defaults``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
from keras import layers

from ml.architecture_defaults import (
    ARCHITECTURE_DEFAULTS,
    ARCHITECTURE_NAMES,
    ArchitectureDefaults,
    architecture_defaults,
)
from ml.classes import NUM_CLASSES
from ml.pretrained import check_input_size, resolve_weights
from ml.training_config import check_weight_decay

# ImageNet statistics that DenseNet's Keras weights were trained with (RGB, 0..1 scale).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Weights = str | Path | None


def build_basic_cnn(num_classes: int = NUM_CLASSES, input_size: int = 224) -> keras.Model:
    """The paper's plain CNN: three conv/pool/dropout blocks (256, 128, 64), dense 32, softmax."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="to_unit_range")(inputs)
    for filters in (256, 128, 64):
        x = layers.Conv2D(filters, 3, activation="relu", name=f"conv_{filters}")(x)
        x = layers.MaxPooling2D(name=f"pool_{filters}")(x)
        x = layers.Dropout(0.3, name=f"dropout_{filters}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(32, activation="relu", name="dense_32")(x)
    outputs = _probabilities(num_classes)(x)
    return keras.Model(inputs, outputs, name="basic_cnn")


def _probabilities(num_classes: int) -> layers.Dense:
    """The softmax output, in float32 even under mixed precision: float16 would round the small
    probabilities of rare classes, which calibration and the refer decision depend on."""
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")


def _backbone_weights(architecture: str, weights: Weights, weights_dir: Weights) -> str | None:
    if weights is None:
        return None
    if weights == "imagenet":
        return str(resolve_weights(architecture, weights_dir))
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"weights file for {architecture} not found: {path}")
    return str(path)


def build_mobilenet_v2(
    num_classes: int = NUM_CLASSES,
    input_size: int = 224,
    weights: Weights = "imagenet",
    dropout: float = 0.3,
    head_filters: int = 256,
    weights_dir: Weights = None,
) -> keras.Model:
    """MobileNetV2 (no top) + the paper's head: conv 3x3, global average pool, dropout, softmax.

    ``weights``: ``"imagenet"`` (resolved by ``ml.pretrained``), ``None`` or a weights file.
    """
    weights_path = _backbone_weights("mobilenet_v2", weights, weights_dir)
    check_input_size("mobilenet_v2", input_size, pretrained=weights_path is not None)
    inputs = keras.Input((input_size, input_size, 3), name="image")
    # MobileNetV2 was trained on pixels scaled to [-1, 1].
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_symmetric_range")(inputs)
    backbone = keras.applications.MobileNetV2(
        include_top=False,
        weights=weights_path,
        input_shape=(input_size, input_size, 3),
    )
    x = backbone(x)
    x = layers.Conv2D(head_filters, 3, padding="same", activation="relu", name="head_conv")(x)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = _probabilities(num_classes)(x)
    return keras.Model(inputs, outputs, name="mobilenet_v2")


def build_densenet169(
    num_classes: int = NUM_CLASSES,
    input_size: int = 224,
    weights: Weights = "imagenet",
    dropout: float = 0.3,
    weights_dir: Weights = None,
) -> keras.Model:
    """DenseNet169 (no top) + global average pool, dropout, softmax."""
    weights_path = _backbone_weights("densenet169", weights, weights_dir)
    check_input_size("densenet169", input_size, pretrained=weights_path is not None)
    inputs = keras.Input((input_size, input_size, 3), name="image")
    # Same arithmetic as keras' "torch" preprocessing, (x/255 - mean) / std, as one
    # serialisable layer working on 0..255 input.
    x = layers.Normalization(
        mean=[255.0 * m for m in IMAGENET_MEAN],
        variance=[(255.0 * s) ** 2 for s in IMAGENET_STD],
        name="imagenet_normalisation",
    )(inputs)
    backbone = keras.applications.DenseNet169(
        include_top=False,
        weights=weights_path,
        input_shape=(input_size, input_size, 3),
    )
    x = backbone(x)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = _probabilities(num_classes)(x)
    return keras.Model(inputs, outputs, name="densenet169")


def get_backbone(model: keras.Model) -> keras.Model | None:
    """The nested pretrained network of a transfer model, or None for the basic CNN."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested[0] if nested else None


def freeze_backbone(model: keras.Model) -> None:
    """Phase 1: train only the new head on top of a frozen pretrained network."""
    backbone = get_backbone(model)
    if backbone is None:
        raise ValueError(f"model {model.name} has no pretrained backbone to freeze")
    backbone.trainable = False


def unfreeze_top_layers(model: keras.Model, num_layers: int) -> None:
    """Phase 2: make the top ``num_layers`` backbone layers trainable, BatchNorm excluded.

    BatchNorm stays frozen because its moving statistics would be re-estimated from small,
    skewed dermatoscopy batches and wreck the ImageNet features. Recompile after calling.
    """
    backbone = get_backbone(model)
    if backbone is None:
        raise ValueError(f"model {model.name} has no pretrained backbone to unfreeze")
    backbone.trainable = True
    cutoff = max(len(backbone.layers) - num_layers, 0)
    for index, layer in enumerate(backbone.layers):
        is_batch_norm = isinstance(layer, layers.BatchNormalization)
        layer.trainable = index >= cutoff and not is_batch_norm


@dataclass(frozen=True)
class ArchitectureSpec:
    """An architecture's registry defaults and the builder of its Keras model."""

    defaults: ArchitectureDefaults
    builder: Callable[..., keras.Model]

    @property
    def name(self) -> str:
        return self.defaults.name

    def build(self, num_classes: int, input_size: int, **kwargs: Any) -> keras.Model:
        if not self.defaults.transfer:
            kwargs.pop("weights", None)
            kwargs.pop("weights_dir", None)
        return self.builder(num_classes=num_classes, input_size=input_size, **kwargs)

    def make_optimizer(
        self, learning_rate: Any, weight_decay: float = 0.0
    ) -> keras.optimizers.Optimizer:
        """The paper's optimizer; with ``weight_decay`` its decoupled-decay form (AdamW for Adam).

        Biases and BatchNorm scales/offsets are not decayed: shrinking them regularises nothing.
        """
        check_weight_decay(weight_decay)
        decay = weight_decay or None
        if self.defaults.optimizer == "sgd":
            optimizer = keras.optimizers.SGD(
                learning_rate=learning_rate, momentum=0.9, weight_decay=decay
            )
        elif decay:
            optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=decay)
        else:
            optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        if decay:
            optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        return optimizer


_BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "basic_cnn": build_basic_cnn,
    "mobilenet_v2": build_mobilenet_v2,
    "densenet169": build_densenet169,
}
if set(_BUILDERS) != set(ARCHITECTURE_NAMES):  # a new registry entry needs its builder here
    raise RuntimeError(
        f"builders {sorted(_BUILDERS)} differ from the registry's {ARCHITECTURE_NAMES}"
    )

ARCHITECTURES: dict[str, ArchitectureSpec] = {
    name: ArchitectureSpec(ARCHITECTURE_DEFAULTS[name], _BUILDERS[name])
    for name in ARCHITECTURE_NAMES
}


def get_architecture(name: str) -> ArchitectureSpec:
    return ARCHITECTURES[architecture_defaults(name).name]
