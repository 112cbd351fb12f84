"""The one image preprocessing used by training, evaluation and serving.

Steps, in order:

1. ``decode_image``: Pillow decode, EXIF orientation applied, any mode converted to 8-bit RGB
   (transparency composited on white). The tf.data pipeline calls this same function, so a
   training image and an uploaded image go through identical decoding.
2. ``resize_image`` / ``resize_batch``: ``tf.image.resize`` (bilinear, antialias) straight to
   ``size x size`` (aspect ratio not kept, as in the source paper), float32 in 0..255.
3. Normalisation is *not* done here: each model starts with its own Rescaling/Normalization
   layers, so callers always feed raw 0..255 pixels and cannot pick the wrong scheme.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

RESIZE_METHOD = "bilinear"
RESIZE_ANTIALIAS = True

# Pillow reports 16-bit greyscale under several names depending on byte order and version.
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
_BACKGROUND = (255, 255, 255)

# How imported models expect their input; wrapping with these makes them take 0..255 like ours.
INPUT_SCALINGS: dict[str, str] = {
    "0-255": "model takes raw 0..255 pixels",
    "0-1": "model takes pixels / 255",
    "-1-1": "model takes pixels / 127.5 - 1",
}


class ImageDecodeError(ValueError):
    """The bytes are not an image Pillow can decode."""


def decode_image(data: bytes) -> np.ndarray:
    """Decode image bytes to an upright ``uint8`` array of shape (H, W, 3)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            return np.asarray(_to_rgb(upright), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"cannot decode image: {exc}") from exc


def decode_image_file(path: str | bytes) -> np.ndarray:
    """``decode_image`` on a file; accepts bytes paths because tf.numpy_function passes those."""
    if isinstance(path, bytes):
        path = path.decode("utf-8")
    with open(path, "rb") as handle:
        return decode_image(handle.read())


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "F":
        image = _high_depth_to_l(image)
        mode = image.mode
    if mode == "P":
        # Palette images may carry transparency; go through RGBA so it is composited.
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode != "RGB":
        # CMYK, YCbCr, LAB, L, 1 ...: Pillow's own conversions are correct for these.
        return image.convert("RGB")
    return image


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    # Integer modes hold 16-bit data (wider values are clipped); float images are 0..1 or 0..255.
    peak = 65535.0
    if image.mode == "F":
        peak = 1.0 if values.size and values.max() <= 1.0 else 255.0
    scaled = np.clip(np.rint(values / peak * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled)


def resize_image(image: Any, size: int) -> Any:
    """Resize one (H, W, 3) image to a float32 (size, size, 3) tensor in 0..255."""
    import tensorflow as tf

    resized = tf.image.resize(
        tf.cast(image, tf.float32),
        (size, size),
        method=RESIZE_METHOD,
        antialias=RESIZE_ANTIALIAS,
    )
    return tf.clip_by_value(resized, 0.0, 255.0)


def resize_batch(images: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Resize differently sized uint8 images into one float32 (N, size, size, 3) array."""
    if len(images) == 0:
        return np.zeros((0, size, size, 3), dtype=np.float32)
    return np.stack([np.asarray(resize_image(image, size)) for image in images])


def preprocessing_description(input_size: int, normalisation: str) -> dict[str, Any]:
    """What goes into the bundle manifest, so a reader knows exactly what the model expects."""
    return {
        "decode": "pillow; EXIF orientation applied; converted to RGB, alpha composited on white",
        "resize": {
            "op": "tf.image.resize",
            "method": RESIZE_METHOD,
            "antialias": RESIZE_ANTIALIAS,
            "size": [input_size, input_size],
            "keep_aspect_ratio": False,
        },
        "input": "float32 RGB, 0..255",
        "normalisation": normalisation,
        "normalisation_in_model": True,
    }
