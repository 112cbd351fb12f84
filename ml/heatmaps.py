"""Heat maps as values and as pictures, without TensorFlow: what a Grad-CAM map is (`ml.gradcam` makes
one), why a model cannot have one, and the transparent overlay laid over a photo. Worker processes import
this before they fork; TensorFlow is imported only by the children that compute maps.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

# Channel maps this far below the peak are noise; they are drawn fully transparent.
TRANSPARENT_BELOW = 0.15
OVERLAY_OPACITY = 0.6
# A cold-to-hot ramp (blue, cyan, yellow, red), readable over skin tones.
_RAMP_STOPS = np.array([0.0, 0.35, 0.65, 1.0])
_RAMP_COLOURS = np.array([[0, 0, 255], [0, 255, 255], [255, 255, 0], [255, 0, 0]], dtype=float)


class GradCamError(ValueError):
    """The model's structure does not allow a Grad-CAM heat map."""


# (left, top, right, bottom) as fractions of the photo's width and height.
Region = tuple[float, float, float, float]
WHOLE_PHOTO: Region = (0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True)
class HeatMap:
    class_index: int
    layer: str
    # (rows, cols) in 0..1, the peak at 1; all zeros when nothing in the map speaks for the class.
    grid: np.ndarray
    # The part of the photo the model saw, which the grid covers (a centre crop sees less).
    region: Region = WHOLE_PHOTO


def upsample(grid: np.ndarray, width: int, height: int, region: Region = WHOLE_PHOTO) -> np.ndarray:
    """The grid laid over a width x height photo: stretched over ``region`` (the part the model
    saw), zero outside it."""
    left, top = round(region[0] * width), round(region[1] * height)
    right, bottom = round(region[2] * width), round(region[3] * height)
    heat = np.zeros((height, width), dtype=np.float32)
    if right > left and bottom > top:
        plane = Image.fromarray(np.ascontiguousarray(grid, dtype=np.float32), "F")
        inside = plane.resize((right - left, bottom - top), Image.Resampling.BILINEAR)
        heat[top:bottom, left:right] = np.clip(np.asarray(inside), 0, 1)
    return heat


def overlay_png(grid: np.ndarray, width: int, height: int, region: Region = WHOLE_PHOTO) -> bytes:
    """A transparent PNG of the heat map at the photo's size, to lay over it: hot is red and opaque,
    cold is blue and faint, below ``TRANSPARENT_BELOW`` nothing."""
    heat = upsample(grid, width, height, region)
    rgba = np.empty((height, width, 4), dtype=np.uint8)
    for channel in range(3):
        rgba[..., channel] = np.interp(heat, _RAMP_STOPS, _RAMP_COLOURS[:, channel])
    # Opacity rises from nothing at TRANSPARENT_BELOW, so the map has no hard edge.
    alpha = np.clip((heat - TRANSPARENT_BELOW) / (1 - TRANSPARENT_BELOW), 0, 1) * OVERLAY_OPACITY
    rgba[..., 3] = np.rint(alpha * 255)
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, format="PNG", optimize=False)
    return out.getvalue()
