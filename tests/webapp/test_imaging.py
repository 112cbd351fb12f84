"""Crafted inputs from docs "Bad input" against webapp.intake.imaging (no Django needed)."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from webapp.errors import ApplicationError
from webapp.intake.imaging import (
    ALLOWED_FORMATS,
    ImageRejected,
    NormalizedImage,
    normalize_image,
    sniff_format,
)

try:  # imported as a package when tests/ has __init__ files, as a top-level module otherwise
    from tests.webapp import imaging_samples as samples
except ImportError:  # pragma: no cover
    import imaging_samples as samples

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 50_000_000, "max_side": 2048}


def normalize(data: bytes, **overrides) -> NormalizedImage:
    return normalize_image(data, **{**LIMITS, **overrides})


def pixels(result: NormalizedImage) -> np.ndarray:
    with Image.open(io.BytesIO(result.content)) as im:
        assert im.mode == "RGB"
        return np.asarray(im).astype(np.int64)


def jpeg_markers(data: bytes) -> list[int]:
    """The marker codes of a JPEG's header segments, up to the start of scan."""
    assert data[:2] == b"\xff\xd8"
    markers, pos = [], 2
    while pos < len(data):
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            return markers
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        pos += 2 + length
    raise AssertionError("no start of scan")


def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return chunks


def assert_clean(result: NormalizedImage) -> None:
    """The stored copy carries pixels and nothing else."""
    content = result.content
    if result.content_type == "image/jpeg":
        # SOI is not listed; APP0 (JFIF), DQT, SOF0/SOF2, DHT, SOS only. No APP1 (EXIF, XMP),
        # APP2 (ICC), APP13 (IPTC) or COM (comment).
        assert set(jpeg_markers(content)) <= {0xE0, 0xDB, 0xC0, 0xC2, 0xC4, 0xDA}
    else:
        assert set(png_chunks(content)) <= {b"IHDR", b"IDAT", b"IEND"}
    for needle in (b"Exif", b"ICC_PROFILE", b"http://ns.adobe.com", b"patient-name"):
        assert needle not in content[:200], needle
    assert b"<html" not in content.lower()
    assert b"<script" not in content.lower()
    assert result.sha256 == hashlib.sha256(content).hexdigest()


# --- rejected inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(samples.REJECTED))
def test_crafted_input_is_rejected_with_a_plain_message(name):
    generate, expected = samples.REJECTED[name]
    data = generate()
    started = time.monotonic()
    with pytest.raises(ImageRejected) as caught:
        normalize(data)
    message = str(caught.value)
    assert expected in message
    assert message.endswith(".")
    # Internal details (exception types, Pillow wording) never reach the user.
    for leak in ("Error", "PIL", "Traceback", "decoder", "DOS attack"):
        assert leak not in message
    assert time.monotonic() - started < 2


def test_image_rejected_is_an_expected_refusal_answered_400():
    assert issubclass(ImageRejected, ApplicationError) and ImageRejected.status == 400


def test_oversized_file_says_its_size_and_the_limit():
    data = b"\xff\xd8\xff" + bytes(26_528_972 - 3)
    with pytest.raises(ImageRejected, match=r"^The file is 25\.3 MB; the limit is 20 MB\.$"):
        normalize(data)


def test_decompression_bomb_is_refused_before_decoding():
    bomb = samples.decompression_bomb_png(100_000, 100_000)
    assert len(bomb) < 200
    started = time.monotonic()
    with pytest.raises(ImageRejected) as caught:
        normalize(bomb)
    assert time.monotonic() - started < 0.5
    assert str(caught.value) == (
        "The image is 100000×100000 pixels; the limit is 50 megapixels."  # noqa: RUF001
    )


def test_pillow_bomb_warning_becomes_a_rejection_only_inside_the_call():
    # Above Pillow's warning threshold but below our own limit: only the warning can stop it.
    limit_before = Image.MAX_IMAGE_PIXELS
    filters_before = list(warnings.filters)
    width = 10_000
    height = Image.MAX_IMAGE_PIXELS // width + 1
    with pytest.raises(ImageRejected, match=f"{width}×{height} pixels"):  # noqa: RUF001
        normalize(samples.decompression_bomb_png(width, height), max_pixels=10**9)
    assert limit_before == Image.MAX_IMAGE_PIXELS
    assert warnings.filters == filters_before
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_pixel_limit_is_checked_against_the_callers_limit():
    data = samples.png(samples.photo(100, 100))
    with pytest.raises(ImageRejected, match=r"100×100 pixels; the limit is 0\.005 megapixels"):  # noqa: RUF001
        normalize(data, max_pixels=5_000)
    assert normalize(data, max_pixels=10_000).width == 100


def test_truncated_png_is_rejected():
    data = samples.png(samples.photo(128, 128, seed=5))
    with pytest.raises(ImageRejected, match=r"^The PNG file is truncated or corrupt\.$"):
        normalize(data[: len(data) - 40])


# --- accepted inputs ------------------------------------------------------------------------------


def test_jpeg_is_stored_as_clean_jpeg():
    data = samples.jpeg()
    result = normalize(data)
    assert (result.content_type, result.extension, result.original_format) == (
        "image/jpeg",
        "jpg",
        "JPEG",
    )
    assert (result.width, result.height) == (64, 48)
    assert (result.original_width, result.original_height) == (64, 48)
    assert result.content != data
    assert_clean(result)
    with Image.open(io.BytesIO(result.content)) as stored:
        assert stored.format == "JPEG"
        # 4:4:4: every component has sampling factor 1x1.
        assert [(h, v) for _id, h, v, _table in stored.layer] == [(1, 1)] * 3


def test_png_and_webp_are_stored_as_png():
    for data, fmt in ((samples.png(), "PNG"), (samples.encode(samples.photo(), "WEBP"), "WEBP")):
        result = normalize(data)
        assert (result.content_type, result.extension, result.original_format) == (
            "image/png",
            "png",
            fmt,
        )
        assert_clean(result)


def test_large_photo_is_downscaled_not_refused():
    data = samples.large_photo_jpeg(6000, 4000)
    result = normalize(data)
    assert (result.original_width, result.original_height) == (6000, 4000)
    assert (result.width, result.height) == (2048, 1365)
    assert pixels(result).shape == (1365, 2048, 3)
    assert_clean(result)


@pytest.mark.parametrize(("width", "height"), [(9000, 6700), (12000, 9000), (16320, 12240)])
def test_phone_photos_of_60_108_and_200_megapixels_are_scaled_down_not_refused(width, height):
    data = samples.large_photo_jpeg(width, height)
    assert len(data) <= LIMITS["max_bytes"]
    result = normalize(data, max_jpeg_pixels=256_000_000)
    assert (result.original_width, result.original_height) == (width, height)
    assert result.width == 2048
    assert result.height == round(height * 2048 / width)
    assert_clean(result)


def test_a_jpeg_beyond_what_its_reduced_decoding_can_bring_down_is_refused():
    data = samples.jpeg(samples.photo(100, 100))
    # Declared size over the JPEG limit:
    with pytest.raises(ImageRejected, match=r"100×100 pixels; the limit is 0\.005 megapixels"):  # noqa: RUF001
        normalize(data, max_jpeg_pixels=5_000)
    # Small enough to need no scaling, so decoded at full size, over the memory bound:
    with pytest.raises(ImageRejected, match=r"100×100 pixels; the limit is 0\.005 megapixels"):  # noqa: RUF001
        normalize(data, max_pixels=5_000, max_side=4096)
    # Decoded at 1/8 scale (13 x 13) for a 12-pixel result: within the bound.
    assert normalize(data, max_pixels=5_000, max_side=12).width == 12


def test_large_portrait_png_keeps_its_aspect_ratio():
    image = samples.photo(300, 200, seed=4).resize((1500, 3000), Image.Resampling.BILINEAR)
    result = normalize(samples.png(image), max_side=1000)
    assert (result.width, result.height) == (500, 1000)
    assert (result.original_width, result.original_height) == (1500, 3000)


def test_small_image_is_not_upscaled():
    result = normalize(samples.png(samples.photo(7, 5)))
    assert (result.width, result.height) == (7, 5)


def test_polyglot_jpeg_html_is_stored_without_any_html():
    data = samples.jpeg_html_polyglot()
    assert b"<html" in data and b"<script" in data
    result = normalize(data)
    assert result.content_type == "image/jpeg"
    assert sniff_format(result.content) == "JPEG"
    assert b"<html" not in result.content.lower()
    assert b"<script" not in result.content.lower()
    assert_clean(result)


def test_exif_gps_icc_xmp_and_comments_are_stripped_from_jpeg():
    data = samples.jpeg_with_everything()
    with Image.open(io.BytesIO(data)) as source:
        assert source.getexif().get_ifd(samples.GPS_IFD)[1] == "N"
        assert "icc_profile" in source.info and "comment" in source.info and "xmp" in source.info
    result = normalize(data)
    assert_clean(result)
    assert b"patient-name" not in result.content
    with Image.open(io.BytesIO(result.content)) as stored:
        assert not stored.getexif()
        assert not {"icc_profile", "comment", "xmp", "exif"} & set(stored.info)


def test_exif_and_text_are_stripped_from_png():
    data = samples.png_with_everything()
    with Image.open(io.BytesIO(data)) as source:
        source.load()
        assert source.getexif().get_ifd(samples.GPS_IFD)[1] == "N"
    result = normalize(data)
    assert_clean(result)
    assert b"patient-name" not in result.content


def test_same_pixels_give_the_same_stored_bytes():
    image = samples.photo(80, 60, seed=9)
    as_png = normalize(samples.png(image))
    assert normalize(samples.png(image)) == as_png
    # A different container with identical pixels stores identical bytes.
    assert normalize(samples.encode(image, "WEBP", lossless=True)).content == as_png.content
    assert normalize(samples.png(image.convert("RGBA"))).content == as_png.content
    assert normalize(samples.png(image, exif=samples.exif_bytes(1, gps=True))) == as_png
    as_jpeg = normalize(samples.jpeg(image))
    assert normalize(samples.jpeg(image)) == as_jpeg


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_becomes_upright_exactly_for_png(orientation):
    upright = samples.photo(64, 48, seed=orientation)
    reference = normalize(samples.png(upright))
    data = samples.oriented(upright, orientation, "PNG")
    with Image.open(io.BytesIO(data)) as source:
        source.load()
        assert source.getexif()[samples.ORIENTATION_TAG] == orientation
        if orientation >= 5:
            assert source.size == (48, 64)
    result = normalize(data)
    assert (result.width, result.height) == (64, 48)
    assert np.array_equal(pixels(result), pixels(reference))
    assert result.content == reference.content


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_becomes_upright_for_jpeg(orientation):
    upright = samples.photo(64, 48, seed=orientation)
    reference = pixels(normalize(samples.jpeg(upright)))
    result = normalize(samples.oriented(upright, orientation, "JPEG"))
    got = pixels(result)
    assert got.shape == reference.shape == (48, 64, 3)
    difference = np.abs(got - reference)
    # Only JPEG rounding separates them; a wrong orientation differs by ~100 on average.
    assert difference.mean() < 1.5
    assert difference.max() < 24
    # The red marker is in the top-left corner.
    assert got[1, 1, 0] > 200 and got[1, 1, 1] < 60
    assert_clean(result)


def test_unknown_orientation_value_is_treated_as_upright():
    upright = samples.photo()
    data = samples.png(upright, exif=samples.exif_bytes(9))
    assert normalize(data).content == normalize(samples.png(upright)).content


# --- colour modes ---------------------------------------------------------------------------------


def test_cmyk_jpeg_becomes_rgb():
    original = np.asarray(samples.photo()).astype(np.int64)
    result = normalize(samples.cmyk_jpeg())
    assert result.content_type == "image/jpeg"
    assert np.abs(pixels(result) - original).mean() < 6


def test_opaque_rgba_equals_rgb_and_transparency_becomes_white():
    image = samples.photo()
    assert normalize(samples.rgba_png()).content == normalize(samples.png(image)).content
    clear = pixels(normalize(samples.rgba_png(alpha=0)))
    assert (clear == 255).all()
    ramp = pixels(normalize(samples.rgba_gradient_alpha_png()))
    original = np.asarray(image).astype(np.int64)
    assert (ramp[:, 0] == 255).all()  # alpha 0 on the left edge
    assert np.array_equal(ramp[:, -1], original[:, -1])  # alpha 255 on the right edge


def test_palette_png_becomes_rgb_with_transparent_entries_white():
    palette_image = samples.photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    expected = np.asarray(palette_image.convert("RGB")).astype(np.int64)
    assert np.array_equal(pixels(normalize(samples.palette_png())), expected)

    index = palette_image.getpixel((0, 0))
    result = pixels(normalize(samples.palette_png(transparent_index=index)))
    mask = np.asarray(palette_image) == index
    assert (result[mask] == 255).all()
    assert np.array_equal(result[~mask], expected[~mask])


@pytest.mark.parametrize("generate", [samples.greyscale_png, samples.la_png, samples.bilevel_png])
def test_greyscale_modes_become_rgb_with_equal_channels(generate):
    got = pixels(normalize(generate()))
    assert got.shape == (48, 64, 3)
    assert np.array_equal(got[..., 0], got[..., 1])
    assert np.array_equal(got[..., 1], got[..., 2])


def test_greyscale_jpeg_becomes_rgb_jpeg():
    result = normalize(samples.greyscale_jpeg())
    assert result.content_type == "image/jpeg"
    got = pixels(result)
    assert np.abs(got[..., 0] - got[..., 2]).max() <= 2


def test_16_bit_greyscale_is_scaled_not_clipped():
    grey8 = np.asarray(samples.photo().convert("L")).astype(np.uint16)
    # The same picture in 16 bits (v * 257 maps 0..255 onto 0..65535 exactly) stores identically.
    sixteen = normalize(samples.png16_grey(grey8 * 257))
    assert sixteen.content == normalize(samples.greyscale_png()).content

    ramp = np.arange(0, 65536, 16, dtype=np.uint16).reshape(64, 64)
    got = pixels(normalize(samples.png16_grey(ramp)))[..., 0]
    assert got.min() == 0 and got.max() == 255
    assert len(np.unique(got)) == 256  # every level used: a clip would leave almost all at 255
    expected = np.rint(ramp.astype(np.float64) * 255 / 65535)
    assert np.abs(got - expected).max() <= 1


def test_16_bit_rgb_is_scaled():
    values = np.zeros((8, 8, 3), dtype=np.uint16)
    values[..., 0] = 65535
    values[..., 1] = 32768
    got = pixels(normalize(samples.png16_rgb(values)))
    assert (got[..., 0] == 255).all()
    assert (np.abs(got[..., 1] - 128) <= 1).all()
    assert (got[..., 2] == 0).all()


def test_webp_with_alpha_is_composited_on_white():
    image = samples.photo().convert("RGBA")
    image.putalpha(0)
    got = pixels(normalize(samples.encode(image, "WEBP", lossless=True)))
    assert (got == 255).all()


# --- sniffing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xd8\xff\xe0rest", "JPEG"),
        (b"\x89PNG\r\n\x1a\nrest", "PNG"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WEBP"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),
        (b"GIF89a", "GIF"),
        (b"II*\x00", "TIFF"),
        (b"MM\x00*", "TIFF"),
        (b"\x00\x00\x01\x00\x01\x00", "ICO"),
        (b"%PDF-1.4", "PDF"),
        (b"%!PS-Adobe-3.0 EPSF-3.0", "EPS"),
        (b"  <HTML><BODY>", "HTML"),
        (b"<svg onload=alert(1)>", "SVG"),
        (b"<?xml version='1.0'?><svg>", "SVG"),
        (b"\x00\x00\x00\x1cftypheic", "HEIC"),
        (b"", None),
        (b"\x01\x02\x03", None),
    ],
)
def test_sniff_format(data, expected):
    assert sniff_format(data) == expected


def test_allow_list_is_exactly_jpeg_png_webp():
    assert set(ALLOWED_FORMATS) == {"JPEG", "PNG", "WEBP"}


def test_content_decides_not_the_claimed_type():
    # A real PNG renamed .jpg is a PNG; an HTML page renamed .png is refused. The API takes bytes
    # only, so there is no name or content type to trust in the first place.
    assert normalize(samples.png()).original_format == "PNG"
    with pytest.raises(ImageRejected, match="looks like HTML"):
        normalize(samples.HTML_PAGE)


# --- fuzzing --------------------------------------------------------------------------------------

_FUZZ_BASES = {
    "JPEG": samples.jpeg(samples.photo(48, 32, seed=11), exif=samples.exif_bytes(6, gps=True)),
    "PNG": samples.png_with_everything(),
}


# func_only: the budget is for the call, not for session fixtures that may start first.
@pytest.mark.timeout(10, func_only=True)
@pytest.mark.parametrize("seed", range(300))
def test_fuzzed_file_is_normalized_or_rejected(seed):
    fmt = "JPEG" if seed % 2 == 0 else "PNG"
    data = samples.mutate(_FUZZ_BASES[fmt], random.Random(seed))
    started = time.monotonic()
    try:
        result = normalize(data, max_pixels=4_000_000, max_side=512)
    except ImageRejected as exc:
        assert str(exc).endswith(".")
    else:
        assert result.content_type in ("image/jpeg", "image/png")
        assert max(result.width, result.height) <= 512
        assert_clean(result)
    assert time.monotonic() - started < 5


def test_a_fresh_process_decodes_a_jpeg(tmp_path):
    # The JPEG header parser is looked up in Pillow's plugin table, which Pillow fills lazily:
    # in a web process that has opened no image yet, a lookup without registering it failed.
    photo = tmp_path / "a.jpg"
    photo.write_bytes(samples.jpeg(samples.photo(64, 48)))
    code = (
        "import sys; from webapp.intake.imaging import normalize_image; "
        "r = normalize_image(open(sys.argv[1], 'rb').read(), max_bytes=10**7, "
        "max_pixels=10**7, max_side=512); print(r.width, r.height)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(photo)],
        capture_output=True, text=True, timeout=60, check=True,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.stdout.split() == ["64", "48"]
