"""Training-time augmentation, run inside the training step (see ``ml.train.augmented``)."""

from __future__ import annotations

from typing import Any

from ml.training_config import check_colour_jitter

# Random resized crops: each side zoomed independently to between this much in and out (a crop of
# 60% to 110% of the side, so 36% to 121% of the area, aspect ratios up to about 1.8), shifted by up
# to this share of the side.
CROP_ZOOM = (-0.4, 0.1)
CROP_SHIFT = 0.1


def build_augmenter(seed: int = 0, colour_jitter: float = 0.0, random_crops: bool = False) -> Any:
    """Rotation, zoom and both flips: lesions have no canonical orientation or scale.

    ``random_crops`` replaces the gentle zoom (15% either way, aspect kept) by random resized crops
    (``CROP_ZOOM``, ``CROP_SHIFT``): photos from other clinics frame lesions closer or farther, and
    not always centred. ``colour_jitter`` (0 to <1) adds random brightness, contrast and saturation
    changes of that strength, standing in for the different cameras, dermatoscopes and lighting of
    real uploads. Hue is left alone: a lesion's colour (blue-white veil, red vessels) is diagnostic.
    """
    import keras

    check_colour_jitter(colour_jitter)
    steps = [
        keras.layers.RandomFlip("horizontal_and_vertical", seed=seed),
        keras.layers.RandomRotation(0.25, fill_mode="reflect", seed=seed + 1),
    ]
    if random_crops:
        steps += [
            keras.layers.RandomZoom(
                CROP_ZOOM, width_factor=CROP_ZOOM, fill_mode="reflect", seed=seed + 2
            ),
            keras.layers.RandomTranslation(
                CROP_SHIFT, CROP_SHIFT, fill_mode="reflect", seed=seed + 6
            ),
        ]
    else:
        steps.append(keras.layers.RandomZoom(0.15, fill_mode="reflect", seed=seed + 2))
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
