"""Training-time augmentation, run inside the training step (see ``ml.train.augmented``)."""

from __future__ import annotations

from typing import Any


def build_augmenter(seed: int = 0, colour_jitter: float = 0.0) -> Any:
    """Rotation, zoom and both flips: lesions have no canonical orientation or scale.

    ``colour_jitter`` (0 to <1) adds random brightness, contrast and saturation changes of that
    strength, standing in for the different cameras, dermatoscopes and lighting of real uploads.
    Hue is left alone: a lesion's colour (blue-white veil, red vessels) is diagnostic.
    """
    import keras

    check_colour_jitter(colour_jitter)
    steps = [
        keras.layers.RandomFlip("horizontal_and_vertical", seed=seed),
        keras.layers.RandomRotation(0.25, fill_mode="reflect", seed=seed + 1),
        keras.layers.RandomZoom(0.15, fill_mode="reflect", seed=seed + 2),
    ]
    if colour_jitter:
        steps += [
            keras.layers.RandomBrightness(colour_jitter, value_range=(0, 255), seed=seed + 3),
            keras.layers.RandomContrast(colour_jitter, value_range=(0, 255), seed=seed + 4),
            # Keras' saturation factor is 0.5 for "unchanged", so the range is centred there.
            # It runs on 0..1 pixels: on 0..255 ones Keras 3.15 clips saturation at 255, not 1,
            # and over-saturated colours come back as negative pixel values.
            keras.layers.Rescaling(1 / 255),
            keras.layers.RandomSaturation(
                (0.5 - colour_jitter / 2, 0.5 + colour_jitter / 2),
                value_range=(0, 1),
                seed=seed + 5,
            ),
            keras.layers.Rescaling(255),
        ]
    return keras.Sequential(steps, name="augmentation")


def check_colour_jitter(strength: float) -> None:
    if not 0.0 <= strength < 1.0:
        raise ValueError(f"colour jitter must be at least 0 and below 1, not {strength}")
