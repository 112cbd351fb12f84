import io

import numpy as np
import pytest
from PIL import Image

from ml.preprocess import ImageDecodeError, Preprocessing, decode_image


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _asymmetric_rgb() -> np.ndarray:
    pixels = np.zeros((24, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (250, 0, 0)  # left half red
    pixels[:12, 20:] = (0, 250, 0)  # top right green
    pixels[12:, 20:] = (0, 0, 250)  # bottom right blue
    return pixels


def test_exif_rotated_jpeg_matches_upright() -> None:
    upright = _asymmetric_rgb()
    # Store the pixels rotated and let EXIF orientation 6 ("rotate 90 CW to view") undo it.
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_image(_encode(stored, "JPEG", quality=100, exif=exif))
    reference = decode_image(_encode(Image.fromarray(upright), "JPEG", quality=100))
    assert decoded.shape == upright.shape
    assert np.abs(decoded.astype(int) - reference.astype(int)).mean() < 3


def test_palette_with_transparency_composites_on_white() -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    image.info["transparency"] = 0
    decoded = decode_image(_encode(image, "PNG"))
    assert decoded.dtype == np.uint8
    assert decoded.shape == (4, 4, 3)
    assert (decoded == 255).all()


@pytest.mark.parametrize(
    ("image", "fmt", "expected"),
    [
        (Image.new("CMYK", (3, 3), (0, 255, 255, 0)), "JPEG", (255, 0, 0)),
        (Image.new("LA", (3, 3), (100, 0)), "PNG", (255, 255, 255)),
        (Image.new("LA", (3, 3), (100, 255)), "PNG", (100, 100, 100)),
        (Image.new("L", (3, 3), 77), "PNG", (77, 77, 77)),
        (Image.new("RGBA", (3, 3), (0, 0, 200, 255)), "PNG", (0, 0, 200)),
    ],
)
def test_modes_convert_to_rgb(image: Image.Image, fmt: str, expected: tuple) -> None:
    decoded = decode_image(_encode(image, fmt))
    assert decoded.shape == (3, 3, 3)
    assert decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - np.array(expected)).max() <= 3


def test_sixteen_bit_greyscale_scaled_to_eight_bits() -> None:
    values = np.full((5, 5), 65535, dtype=np.uint16)
    values[0, 0] = 0
    image = Image.fromarray(values)
    decoded = decode_image(_encode(image, "PNG"))
    assert decoded.shape == (5, 5, 3)
    assert decoded[1, 1].tolist() == [255, 255, 255]
    assert decoded[0, 0].tolist() == [0, 0, 0]


def test_garbage_bytes_raise_decode_error() -> None:
    with pytest.raises(ImageDecodeError):
        decode_image(b"not an image")


def test_a_batch_of_differently_sized_photos_has_one_shape_and_range() -> None:
    images = [_asymmetric_rgb(), np.full((50, 70, 3), 255, dtype=np.uint8)]
    batch = Preprocessing(16).batch(images)
    assert batch.shape == (2, 16, 16, 3)
    assert batch.dtype == np.float32
    assert batch.min() >= 0
    assert batch.max() <= 255
    assert np.allclose(batch[1], 255)
