"""The one image preprocessing used by uploads, training, evaluation and serving.

Pillow and numpy only: the web process (which has no TensorFlow) stores uploads through
``to_rgb`` and workers feed models through ``model_input``, so both see the same pixels.

Steps, in order:

1. ``decode_image``: Pillow decode (a JPEG at 1/2, 1/4 or 1/8 scale when that is still at
   least the model's input size: libjpeg then skips most of the work), EXIF orientation
   applied, any mode converted to 8-bit RGB by ``to_rgb`` (transparency composited on white,
   16-bit and float images scaled onto 0..255).
2. ``resize_image``: bilinear with antialiasing (a triangle filter widened by the scale
   factor), computed on float32 pixels, straight to ``size x size`` (aspect ratio not kept, as
   in the source paper). Pillow's float-mode resampler gives the same numbers as
   ``tf.image.resize(method="bilinear", antialias=True)`` (which older bundles name) to 1e-3.
3. Normalisation is *not* done here: each model starts with its own Rescaling/Normalization
   layers, so callers always feed raw 0..255 pixels and cannot pick the wrong scheme.

A bundle's manifest records this recipe; ``check_preprocessing`` refuses a bundle that asks
for anything else rather than serving it with inputs it was not trained on.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

RESIZE_METHOD = "bilinear"
RESIZE_ANTIALIAS = True
RESIZE_OP = "pillow-float32"
# Resize implementations that compute the recipe above: bundles written before resizing moved
# out of TensorFlow name TensorFlow's op, which gives the same numbers.
REPRODUCIBLE_RESIZE_OPS = frozenset({RESIZE_OP, "tf.image.resize"})
MODEL_INPUT = "float32 RGB, 0..255"

_BACKGROUND = (255, 255, 255)
_TRANSPARENT_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})

# How imported models expect their input; wrapping with these makes them take 0..255 like ours.
INPUT_SCALINGS: dict[str, str] = {
    "0-255": "model takes raw 0..255 pixels",
    "0-1": "model takes pixels / 255",
    "-1-1": "model takes pixels / 127.5 - 1",
}


class ImageDecodeError(ValueError):
    """The bytes are not an image Pillow can decode."""


class UnsupportedPreprocessing(ValueError):
    """A bundle's manifest asks for preprocessing this code does not reproduce."""


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB, with transparency composited on white.

    Returns ``image`` itself when it already is RGB, so callers can tell whether a copy was made.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        if "transparency" in image.info or (
            image.palette is not None and image.palette.mode == "RGBA"
        ):
            return _on_white(image.convert("RGBA"))
        return image.convert("RGB")
    if mode in _TRANSPARENT_MODES:
        return _on_white(image.convert("RGBA"))
    if mode in ("1", "L") and "transparency" in image.info:
        return _on_white(image.convert("RGBA"))
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_high_depth_to_grey(image)).convert("RGB")
    # L, 1, CMYK, YCbCr, LAB, HSV, RGBX: Pillow's own conversions are exact for these.
    return image.convert("RGB")


def _on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _high_depth_to_grey(image: Image.Image) -> np.ndarray:
    # Pillow's convert("L") clips 16-bit values at 255 (a white picture); scale the whole range
    # onto 0..255 instead, rounding to nearest. Integer modes hold 16-bit data (wider values are
    # clipped); float images hold 0..1 when nothing exceeds 1, else 0..255.
    if image.mode.startswith("I;16"):
        dtype = np.dtype(">u2" if image.mode.endswith("B") else "<u2")
        values = np.frombuffer(image.tobytes(), dtype=dtype).reshape(image.height, image.width)
        return ((values.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)
    values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if image.mode == "I":
        values = np.clip(np.rint(values), 0, 65535)
        return ((values.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)
    peak = 1.0 if values.size and values.max() <= 1.0 else 255.0
    return np.clip(np.rint(values / peak * 255.0), 0, 255).astype(np.uint8)


def decode_image(data: bytes, *, at_least: int | None = None) -> np.ndarray:
    """Decode image bytes to an upright ``uint8`` array of shape (H, W, 3).

    With ``at_least``, a JPEG is decoded at the smallest of 1/1, 1/2, 1/4 or 1/8 scale that keeps
    both sides at least that many pixels: enough for a model of that input size, at a fraction
    of the cost.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            if at_least is not None and image.format == "JPEG":
                image.draft("RGB", (at_least, at_least))
            image.load()
            upright = ImageOps.exif_transpose(image)
            return np.asarray(to_rgb(upright), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"cannot decode image: {exc}") from exc


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Resize one uint8 (H, W, 3) image to a float32 (size, size, 3) array in 0..255."""
    if image.shape[:2] == (size, size):
        return image.astype(np.float32)
    # One float32 plane per channel: resampling in float keeps the fractions that an 8-bit
    # resize would round away (and that the models were trained with).
    out = np.empty((size, size, 3), dtype=np.float32)
    for channel in range(3):
        plane = Image.fromarray(np.ascontiguousarray(image[..., channel], dtype=np.float32), "F")
        out[..., channel] = plane.resize((size, size), Image.Resampling.BILINEAR)
    return np.clip(out, 0.0, 255.0, out=out)


def resize_batch(images: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Resize differently sized uint8 images into one float32 (N, size, size, 3) array."""
    batch = np.empty((len(images), size, size, 3), dtype=np.float32)
    for index, image in enumerate(images):
        batch[index] = resize_image(image, size)
    return batch


def model_input(data: bytes, size: int) -> np.ndarray:
    """Encoded image bytes -> the float32 (size, size, 3) array a model of that size takes."""
    return resize_image(decode_image(data, at_least=size), size)


def model_input_file(path: str | bytes, size: int) -> np.ndarray:
    """``model_input`` on a file; accepts bytes paths because tf.numpy_function passes those."""
    if isinstance(path, bytes):
        path = path.decode("utf-8")
    with open(path, "rb") as handle:
        return model_input(handle.read(), int(size))


def preprocessing_description(input_size: int, normalisation: str) -> dict[str, Any]:
    """What goes into the bundle manifest, so a reader knows exactly what the model expects."""
    return {
        "decode": "pillow; JPEG draft at >= input size; EXIF orientation applied; "
        "converted to RGB, alpha composited on white",
        "resize": {
            "op": RESIZE_OP,
            "method": RESIZE_METHOD,
            "antialias": RESIZE_ANTIALIAS,
            "size": [input_size, input_size],
            "keep_aspect_ratio": False,
        },
        "input": MODEL_INPUT,
        "normalisation": normalisation,
        "normalisation_in_model": True,
    }


def check_preprocessing(recorded: Any, input_size: int) -> None:
    """Raise ``UnsupportedPreprocessing`` unless ``model_input`` computes what ``recorded`` asks."""
    if not isinstance(recorded, dict):
        raise UnsupportedPreprocessing(f"preprocessing must be an object, found {recorded!r}")
    resize = recorded.get("resize")
    if not isinstance(resize, dict):
        raise UnsupportedPreprocessing("preprocessing records no resize step")
    wanted = {
        "op": (resize.get("op"), "one of " + ", ".join(sorted(REPRODUCIBLE_RESIZE_OPS))),
        "method": (resize.get("method"), RESIZE_METHOD),
        "antialias": (resize.get("antialias"), RESIZE_ANTIALIAS),
        "size": (resize.get("size"), [input_size, input_size]),
        "keep_aspect_ratio": (resize.get("keep_aspect_ratio"), False),
    }
    for key, (found, expected) in wanted.items():
        ok = found in REPRODUCIBLE_RESIZE_OPS if key == "op" else found == expected
        if not ok:
            raise UnsupportedPreprocessing(
                f"resize {key} {found!r} cannot be reproduced (this code does {expected!r})"
            )
    if recorded.get("input") != MODEL_INPUT or recorded.get("normalisation_in_model") is not True:
        raise UnsupportedPreprocessing(
            f"the model must take {MODEL_INPUT} with its normalisation inside it; the bundle says "
            f"input {recorded.get('input')!r}, normalisation in model "
            f"{recorded.get('normalisation_in_model')!r}"
        )
