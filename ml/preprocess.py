"""The one image preprocessing used by uploads, training, evaluation and serving.

Pillow and numpy only: the web process (which has no TensorFlow) stores uploads through
``to_rgb`` and workers feed models through a bundle's ``Preprocessing``, so both see the same
pixels.

Steps, in order:

1. ``decode_image``: Pillow decode (a JPEG at 1/2, 1/4 or 1/8 scale when that is still at
   least the model's input size: libjpeg then skips most of the work), EXIF orientation
   applied, any mode converted to 8-bit RGB by ``to_rgb`` (transparency composited on white,
   16-bit and float images scaled onto 0..255).
2. Fit to a square: the whole photo stretched (the source paper's way), or its centred square.
3. ``resize_image``: bilinear with antialiasing (a triangle filter widened by the scale
   factor), computed on float32 pixels, to ``size x size``. Pillow's float-mode resampler gives
   the same numbers as ``tf.image.resize(method="bilinear", antialias=True)`` (which older
   bundles name) to 1e-3.
4. Optionally, Shades of Gray colour constancy on the resized image.
5. Normalisation is *not* done here: each model starts with its own Rescaling/Normalization
   layers, so callers always feed raw 0..255 pixels and cannot pick the wrong scheme.

A bundle's manifest records this recipe; ``Preprocessing.from_manifest`` refuses a bundle that
asks for anything else rather than serving it with inputs it was not trained on.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
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


def centre_square(image: np.ndarray) -> np.ndarray:
    """The largest centred square of an (H, W, 3) image (a view, no copy)."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[top : top + side, left : left + side]


def shades_of_gray(image: np.ndarray, power: float) -> np.ndarray:
    """Shades of Gray colour constancy (Finlayson and Trezzi, 2004) on a float32 0..255 image.

    The light falling on the lesion is estimated per channel as the Minkowski ``power``-mean of the
    pixels (power 1 is grey-world, infinity is max-RGB); each channel is then scaled so that light
    comes out grey, keeping the estimate's length, so a photo already lit in grey is unchanged.
    Dermatoscopes, cameras and clinics tint photos differently; the lesion's own colours are what
    the model should learn, not the tint.
    """
    pixels = image.astype(np.float64).reshape(-1, 3)
    # Scaled to 0..1 before the power: 255**6 summed over a photo would lose precision in float32.
    light = np.mean((pixels / 255.0) ** power, axis=0) ** (1.0 / power)
    norm = float(np.sqrt(np.sum(light**2)))
    if norm == 0.0:
        return image.astype(np.float32)
    # A channel that is black everywhere has nothing to rebalance: it keeps its scale.
    gains = np.where(light > 0, norm / (np.sqrt(3.0) * np.where(light > 0, light, 1.0)), 1.0)
    out = image.astype(np.float32) * gains.astype(np.float32)
    return np.clip(out, 0.0, 255.0, out=out)


# --- the recipe a bundle records ------------------------------------------------------------------

STRETCH = "stretch"
CENTRE_CROP = "centre_crop"
FITS = (STRETCH, CENTRE_CROP)
SHADES_OF_GRAY = "shades_of_gray"
# The Minkowski norm that colour-constancy studies on dermoscopy found best (Barata et al., 2015).
SHADES_OF_GRAY_POWER = 6
# What a manifest's preprocessing may hold: anything else is a step this code does not perform.
_KNOWN_STEPS = frozenset(
    {"decode", "resize", "colour_constancy", "input", "normalisation", "normalisation_in_model"}
)
_KNOWN_RESIZE_KEYS = frozenset({"op", "method", "antialias", "size", "keep_aspect_ratio", "crop"})


@dataclass(frozen=True)
class Preprocessing:
    """How a photo becomes a model's input, as one bundle records it.

    Steps, in order: decode (``decode_image``); fit the photo to a square, by stretching the whole
    photo (``stretch``, as in the source paper) or by taking its centred square (``centre_crop``,
    which keeps a lesion's shape and matches photos framed closer); resize to ``size`` x ``size``;
    optionally Shades of Gray colour constancy. Training, evaluation, serving and heat maps all go
    through one instance built from the manifest, so they cannot feed a model different pixels.
    """

    size: int
    fit: str = STRETCH
    # Shades of Gray's Minkowski power; None: no colour constancy.
    colour_constancy_power: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise UnsupportedPreprocessing(f"input size must be a whole number, not {self.size!r}")
        if self.fit not in FITS:
            raise UnsupportedPreprocessing(
                f"fit {self.fit!r} cannot be reproduced (this code does {', '.join(FITS)})"
            )
        power = self.colour_constancy_power
        if power is not None and not (
            isinstance(power, int | float) and not isinstance(power, bool) and 1 <= power <= 64
        ):
            raise UnsupportedPreprocessing(
                f"Shades of Gray power must be a number from 1 to 64, not {power!r}"
            )

    # -- computing inputs
    def from_array(self, image: np.ndarray) -> np.ndarray:
        """One uint8 (H, W, 3) photo -> the float32 (size, size, 3) input, 0..255."""
        if self.fit == CENTRE_CROP:
            image = centre_square(image)
        pixels = resize_image(image, self.size)
        if self.colour_constancy_power is not None:
            pixels = shades_of_gray(pixels, self.colour_constancy_power)
        return pixels

    def from_bytes(self, data: bytes) -> np.ndarray:
        """Encoded image bytes -> the model input; raises ``ImageDecodeError`` on bad bytes."""
        return self.from_array(decode_image(data, at_least=self.size))

    def from_file(self, path: str | bytes | Path) -> np.ndarray:
        """``from_bytes`` on a file; accepts bytes paths because tf.numpy_function passes those."""
        if isinstance(path, bytes):
            path = path.decode("utf-8")
        with open(path, "rb") as handle:
            return self.from_bytes(handle.read())

    def batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Differently sized uint8 photos -> one float32 (N, size, size, 3) batch."""
        out = np.empty((len(images), self.size, self.size, 3), dtype=np.float32)
        for index, image in enumerate(images):
            out[index] = self.from_array(image)
        return out

    def seen_region(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the part of a width x height photo the model sees."""
        if self.fit == STRETCH:
            return 0, 0, width, height
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return left, top, left + side, top + side

    # -- the manifest record
    def describe(self, normalisation: str) -> dict[str, Any]:
        """What goes into the bundle manifest, so a reader knows exactly what the model expects."""
        resize: dict[str, Any] = {
            "op": RESIZE_OP,
            "method": RESIZE_METHOD,
            "antialias": RESIZE_ANTIALIAS,
            "size": [self.size, self.size],
            "keep_aspect_ratio": self.fit == CENTRE_CROP,
        }
        if self.fit == CENTRE_CROP:
            resize["crop"] = "centre"
        recorded: dict[str, Any] = {
            "decode": "pillow; JPEG draft at >= input size; EXIF orientation applied; "
            "converted to RGB, alpha composited on white",
            "resize": resize,
            "input": MODEL_INPUT,
            "normalisation": normalisation,
            "normalisation_in_model": True,
        }
        if self.colour_constancy_power is not None:
            recorded["colour_constancy"] = {
                "method": SHADES_OF_GRAY,
                "power": self.colour_constancy_power,
                "applied_to": "the resized image",
            }
        return recorded

    @classmethod
    def from_manifest(cls, recorded: Any, input_size: int) -> Preprocessing:
        """The recipe a manifest records; ``UnsupportedPreprocessing`` for anything this code does
        not reproduce exactly (an unknown step, another resize, another colour method)."""
        if not isinstance(recorded, dict):
            raise UnsupportedPreprocessing(f"preprocessing must be an object, found {recorded!r}")
        unknown = sorted(set(recorded) - _KNOWN_STEPS)
        if unknown:
            raise UnsupportedPreprocessing(
                f"unknown preprocessing step(s) {', '.join(unknown)}: this code cannot perform them"
            )
        fit = _recorded_fit(recorded.get("resize"), input_size)
        if (
            recorded.get("input") != MODEL_INPUT
            or recorded.get("normalisation_in_model") is not True
        ):
            raise UnsupportedPreprocessing(
                f"the model must take {MODEL_INPUT} with its normalisation inside it; the bundle "
                f"says input {recorded.get('input')!r}, normalisation in model "
                f"{recorded.get('normalisation_in_model')!r}"
            )
        return cls(int(input_size), fit, _recorded_colour_constancy(recorded))


def _recorded_fit(resize: Any, input_size: int) -> str:
    if not isinstance(resize, dict):
        raise UnsupportedPreprocessing("preprocessing records no resize step")
    unknown = sorted(set(resize) - _KNOWN_RESIZE_KEYS)
    if unknown:
        raise UnsupportedPreprocessing(f"unknown resize setting(s) {', '.join(unknown)}")
    keep_aspect = resize.get("keep_aspect_ratio")
    checks = (
        ("op", resize.get("op") in REPRODUCIBLE_RESIZE_OPS,
         "one of " + ", ".join(sorted(REPRODUCIBLE_RESIZE_OPS))),
        ("method", resize.get("method") == RESIZE_METHOD, RESIZE_METHOD),
        ("antialias", resize.get("antialias") == RESIZE_ANTIALIAS, RESIZE_ANTIALIAS),
        ("size", resize.get("size") == [input_size, input_size], [input_size, input_size]),
        (
            "keep_aspect_ratio",
            keep_aspect is False or (keep_aspect is True and resize.get("crop") == "centre"),
            "False, or True with a centre crop",
        ),
        ("crop", resize.get("crop") == ("centre" if keep_aspect is True else None),
         "'centre' when the aspect ratio is kept, else none"),
    )  # fmt: skip
    for key, ok, expected in checks:
        if not ok:
            raise UnsupportedPreprocessing(
                f"resize {key} {resize.get(key)!r} cannot be reproduced (this code does {expected})"
            )
    return CENTRE_CROP if keep_aspect else STRETCH


def _recorded_colour_constancy(recorded: dict[str, Any]) -> float | None:
    step = recorded.get("colour_constancy")
    if step is None:
        return None
    if not isinstance(step, dict) or step.get("method") != SHADES_OF_GRAY:
        raise UnsupportedPreprocessing(
            f"colour constancy {step!r} cannot be reproduced (this code does {SHADES_OF_GRAY})"
        )
    return step.get("power")
