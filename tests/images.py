"""Small real images for tests."""

import io

import numpy as np
from PIL import Image


def photo_array(width: int = 96, height: int = 72, seed: int = 0) -> np.ndarray:
    """A photo-like picture of skin: a warm gradient, a dark blob and a few dark hairs across it.

    It compresses like a photo, not like noise; the hairs give it the sharp edges of a photo in
    focus, so the upload quality gate takes it for one.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [180 + 40 * xx / width, 140 + 30 * yy / height, 120 + 20 * (xx + yy) / (width + height)], -1
    )
    cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
    blob = np.exp(-(((yy - cy) / (height / 5)) ** 2 + ((xx - cx) / (width / 5)) ** 2))
    base = base * (1 - 0.6 * blob[..., None])
    half_width = max(0.6, max(width, height) / 300)
    for angle, offset in zip(rng.uniform(0, np.pi, 4), rng.uniform(0.2, 0.8, 4), strict=True):
        distance = np.abs(
            np.cos(angle) * (xx - offset * width) + np.sin(angle) * (yy - offset * height)
        )
        base = base * np.where(distance <= half_width, 0.45, 1.0)[..., None]
    return np.clip(base, 0, 255).astype(np.uint8)


def encode(array: np.ndarray, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def jpeg_bytes(width: int = 96, height: int = 72, seed: int = 0) -> bytes:
    return encode(photo_array(width, height, seed), "JPEG", quality=90)


def png_bytes(width: int = 96, height: int = 72, seed: int = 0) -> bytes:
    return encode(photo_array(width, height, seed), "PNG")
