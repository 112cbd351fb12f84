"""Grad-CAM points at the lesion: a small model learns to find a dark spot drawn anywhere on skin, and
its heat map must follow the spot wherever it is drawn."""

import io

import keras
import numpy as np
import pytest
from PIL import Image

from ml.gradcam import GradCam
from ml.heatmaps import GradCamError, overlay_png

SIZE = 48
RADIUS = 6


def _skin(rng) -> np.ndarray:
    image = np.empty((SIZE, SIZE, 3))
    image[:] = (214, 170, 150)
    return image + rng.normal(0, 10, image.shape)


def _with_spot(image: np.ndarray, row: int, col: int) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    spot = (yy - row) ** 2 + (xx - col) ** 2 <= RADIUS**2
    out = image.copy()
    out[spot] = (70, 40, 35)
    return out


def _spot_mask(row: int, col: int) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    return (yy - row) ** 2 + (xx - col) ** 2 <= RADIUS**2


@pytest.fixture(scope="module")
def spot_finder():
    """Class 1 = a dark spot somewhere, class 0 = plain skin; trained until it tells them apart."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images, labels = [], []
    for index in range(240):
        image = _skin(rng)
        if index % 2:
            row, col = rng.integers(RADIUS + 1, SIZE - RADIUS - 1, size=2)
            image = _with_spot(image, row, col)
        images.append(np.clip(image, 0, 255))
        labels.append(index % 2)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(0.003),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        np.stack(images).astype(np.float32), np.array(labels), epochs=30, batch_size=24, verbose=0
    )
    assert history.history["accuracy"][-1] > 0.95, "the spot finder did not learn its task"
    return model


@pytest.mark.parametrize("row,col", [(12, 12), (35, 34), (12, 36)])
def test_the_heat_map_follows_the_drawn_spot(spot_finder, row, col):
    image = np.clip(_with_spot(_skin(np.random.default_rng(row * col)), row, col), 0, 255)
    heat = GradCam(spot_finder).explain(image.astype(np.float32), class_index=1)

    assert heat.grid.shape == (12, 12)
    assert heat.grid.max() == pytest.approx(1.0)
    peak_row, peak_col = np.unravel_index(np.argmax(heat.grid), heat.grid.shape)
    # The peak cell (4 px per cell) lies within a cell of the spot's centre.
    assert abs(peak_row * 4 + 2 - row) <= RADIUS + 4
    assert abs(peak_col * 4 + 2 - col) <= RADIUS + 4
    full = np.asarray(Image.fromarray(heat.grid.astype(np.float32), "F").resize((SIZE, SIZE)))
    spot = _spot_mask(row, col)
    assert full[spot].mean() > 3 * full[~spot].mean()


def test_a_model_with_branches_is_refused():
    inputs = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    b = keras.layers.Conv2D(4, 1)(inputs)
    x = keras.layers.Add()([a, b])
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(7, activation="softmax")(x)
    with pytest.raises(GradCamError, match="not one chain"):
        GradCam(keras.Model(inputs, outputs))


def test_a_model_without_a_spatial_map_is_refused():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(7, activation="softmax")(x)
    with pytest.raises(GradCamError, match="no spatial feature map"):
        GradCam(keras.Model(inputs, outputs))


def test_the_overlay_has_the_photos_size_and_is_clear_where_cold():
    grid = np.zeros((4, 4), dtype=np.float32)
    grid[0, 0] = 1.0
    png = Image.open(io.BytesIO(overlay_png(grid, 600, 450)))

    assert png.size == (600, 450)
    assert png.mode == "RGBA"
    pixels = np.asarray(png)
    assert pixels[10, 10, 3] > 100  # hot corner: opaque
    assert tuple(pixels[10, 10, :3]) == (255, 0, 0)  # and red
    assert pixels[400, 550, 3] == 0  # cold corner: transparent
