"""Validate an uploaded or fetched image and turn it into the copy SkinSight stores.

Accepted formats (decided from the bytes, never from the file name or the client's content type):

* JPEG: what every phone camera, dermatoscope and clinic export produces.
* PNG: lossless screenshots and dermatoscope exports.
* WebP: what browsers produce when a photo is saved or pasted from the web.

Everything else is refused before any decoder other than these three sees it: TIFF, EPS, ICO/CUR,
BMP, PSD, JPEG 2000, PCX and the other formats Pillow can read have a long CVE history in their
decoders and add nothing for skin photos; GIF and animated PNG/WebP are animations, not photos; SVG,
HTML, XML, PDF and scripts are documents that a browser might render or run.

The stored copy is always re-encoded from decoded pixels, so it never contains the user's bytes:
no EXIF (GPS included), no ICC profile, no XMP, no comments, and nothing a browser could sniff as
HTML. It is upright (EXIF orientation applied), 8-bit RGB, and at most ``max_side`` pixels on its
long side. The same pixels always produce the same stored bytes, so the model sees the same input
whether a photo came rotated with an EXIF tag, as RGBA, or as plain upright RGB.

Known simplification: embedded ICC profiles are dropped, not applied (a Display P3 or CMYK
profile is not converted to sRGB). Applying them would mean feeding untrusted profiles to
LittleCMS; the colour shift is small next to lighting differences between photos.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image

from ml.preprocess import to_rgb
from webapp.errors import ApplicationError
from webapp.intake.quality import QualityProblem, photo_quality_problems

__all__ = [
    "ALLOWED_FORMATS",
    "ImageRejected",
    "NormalizedImage",
    "format_megabytes",
    "normalize_image",
    "sniff_format",
]

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})

# Quality 95 with 4:4:4 chroma keeps lesion borders and colour detail that 4:2:0 would smear;
# the stored copy is what the model and the clinician see.
JPEG_QUALITY = 95

# Names used in messages to the user.
_FORMAT_LABELS = {
    "JPEG": "JPEG",
    "PNG": "PNG",
    "WEBP": "WebP",
    "GIF": "GIF",
    "TIFF": "TIFF",
    "BMP": "BMP",
    "ICO": "ICO",
    "PSD": "Photoshop (PSD)",
    "JPEG2000": "JPEG 2000",
    "HEIC": "HEIC",
    "AVIF": "AVIF",
    "EPS": "EPS",
    "SVG": "SVG",
    "JXL": "JPEG XL",
}

# Sniffed kinds that are not images at all; the message says what the file looks like instead.
_DOCUMENT_LABELS = {
    "HTML": "HTML",
    "XML": "an XML document",
    "PDF": "a PDF document",
    "SCRIPT": "a script",
    "ZIP": "a ZIP archive",
    "EXECUTABLE": "a program",
    "TEXT": "text",
}

# EXIF orientation tag value -> the transposition that makes the picture upright.
_ORIENTATION_FIX = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION_TAG = 0x0112


class ImageRejected(ApplicationError):
    """The file cannot be accepted; ``str(exc)`` is a plain sentence to show to the user."""


@dataclass(frozen=True)
class NormalizedImage:
    """The stored copy. ``original_*`` describe the file as uploaded: its format and declared
    pixel size, before orientation and downscaling; ``width``/``height`` are the stored copy's."""

    content: bytes
    content_type: str
    extension: str
    width: int
    height: int
    original_format: str
    original_width: int
    original_height: int
    sha256: str
    # What would make the photo unfit to classify (webapp.intake.quality); the caller decides.
    quality_problems: tuple[QualityProblem, ...] = ()


def format_megabytes(n_bytes: int) -> str:
    """``20 * 1024 * 1024`` -> ``"20 MB"``, ``26_528_972`` -> ``"25.3 MB"`` (1 MB = 1024 KiB)."""
    value = n_bytes / (1024 * 1024)
    text = f"{value:.1f}"
    return (text[:-2] if text.endswith(".0") else text) + " MB"


def _format_megapixels(pixels: int) -> str:
    # 50_000_000 -> "50", 12_500_000 -> "12.5", 5_000 -> "0.005"
    value = pixels / 1_000_000
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def sniff_format(data: bytes) -> str | None:
    """Name what the bytes are from their first bytes alone, or ``None`` if unknown.

    Returns a Pillow format name for images (``"JPEG"``, ``"PNG"``, ``"WEBP"``, ``"GIF"``,
    ``"TIFF"`` ...) and a kind for documents (``"HTML"``, ``"SVG"``, ``"XML"``, ``"PDF"``,
    ``"SCRIPT"`` ...) so that a rejection can say what the file looked like.
    """
    head = data[:512]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "TIFF"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith((b"\x00\x00\x01\x00", b"\x00\x00\x02\x00")):
        return "ICO"
    if head.startswith(b"8BPS"):
        return "PSD"
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "JPEG2000"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "JXL"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1"):
            return "HEIC"
    if head.startswith(b"%PDF"):
        return "PDF"
    if head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):
        return "EPS"
    if head.startswith(b"PK\x03\x04"):
        return "ZIP"
    if head.startswith((b"\x7fELF", b"MZ")):
        return "EXECUTABLE"
    if head.startswith(b"#!"):
        return "SCRIPT"
    return _sniff_text(head)


def _sniff_text(head: bytes) -> str | None:
    # Markup is recognised the way a browser would: after a byte-order mark and white space,
    # case-insensitively, anywhere in the first bytes for the tell-tale tags.
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n\x0c").lower()
    if not text:
        return None
    if b"<svg" in text:
        return "SVG"
    html_tags = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<iframe", b"<img")
    if any(tag in text for tag in html_tags):
        return "HTML"
    if text.startswith(b"<?xml") or text.startswith(b"<"):
        return "XML"
    if all(32 <= byte < 127 or byte in b"\t\r\n\x0c" for byte in text):
        return "TEXT"
    return None


def _rejection_for(kind: str | None) -> str:
    if kind in _FORMAT_LABELS:
        return f"{_FORMAT_LABELS[kind]} images are not accepted; upload a JPEG, PNG or WebP photo."
    if kind in _DOCUMENT_LABELS:
        return f"The file is not an image we accept: it looks like {_DOCUMENT_LABELS[kind]}."
    return "The file is not an image we accept; upload a JPEG, PNG or WebP photo."


def normalize_image(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    max_side: int,
    max_jpeg_pixels: int | None = None,
) -> NormalizedImage:
    """Check ``data`` and return the upright, metadata-free RGB copy to store.

    Raises :class:`ImageRejected` for anything that is not a single-frame JPEG, PNG or WebP that
    decodes completely within the size limits. Images larger than ``max_side`` on their long side
    are scaled down, not refused. ``max_pixels`` bounds what is decoded into memory, checked before
    any pixel is: a PNG or WebP above it is refused, while a JPEG is decoded at 1/2, 1/4 or 1/8
    scale when that is still at least the final size, so a phone's 50, 108 or 200-megapixel photo
    is scaled down, not refused, up to ``max_jpeg_pixels`` declared (default: 64 x ``max_pixels``,
    what the 1/8 scale can bring back under ``max_pixels``).
    """
    if not data:
        raise ImageRejected("The file is empty.")
    if len(data) > max_bytes:
        raise ImageRejected(
            f"The file is {format_megabytes(len(data))}; "
            f"the limit is {format_megabytes(max_bytes)}."
        )
    kind = sniff_format(data)
    if kind not in ALLOWED_FORMATS:
        raise ImageRejected(_rejection_for(kind))
    label = _FORMAT_LABELS[kind]

    # Pillow's own bomb check only warns below 2 * MAX_IMAGE_PIXELS; turn that warning into an
    # error for this call only, rather than changing the process-wide limit other code relies on.
    # Our own max_pixels check below is the real guard; this is a second line. (catch_warnings
    # is process-wide, so a concurrent thread may briefly see these filters too; the only effect
    # is that its own Pillow bomb warnings also raise, which is what we want anyway.)
    with warnings.catch_warnings():
        # Pillow warns about damaged EXIF and similar in user files; that is noise in our logs,
        # not news. Filters match newest first, so the bomb rule below still wins for its class.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            rgb, original_size = _decode_to_rgb(
                data, kind, label, max_pixels, max_side, max_jpeg_pixels or 64 * max_pixels
            )
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(_too_many_pixels(_declared_size(data, kind), max_pixels)) from exc
        except MemoryError:
            raise
        except Exception as exc:
            # Pillow's decoders signal malformed input with a zoo of exception types (OSError,
            # SyntaxError, ValueError, EOFError, struct.error, IndexError ...). Whatever the type,
            # bytes that do not decode are the user's problem to fix, not a server error.
            raise ImageRejected(f"The {label} file is truncated or corrupt.") from exc

    content, content_type, extension = _encode(rgb, kind)
    return NormalizedImage(
        content=content,
        content_type=content_type,
        extension=extension,
        width=rgb.width,
        height=rgb.height,
        original_format=kind,
        original_width=original_size[0],
        original_height=original_size[1],
        sha256=hashlib.sha256(content).hexdigest(),
        quality_problems=tuple(photo_quality_problems(rgb)),
    )


def _open(data: bytes, kind: str) -> Image.Image:
    # Only the plugin for the sniffed format may parse the bytes: a file that starts like a PNG
    # is never handed to the TIFF or EPS decoder.
    if kind == "JPEG":
        # The JPEG header parser alone, without Image.open's bomb check on the declared size: a
        # 200-megapixel JPEG is decoded at 1/8 scale, so its declared size is not what it costs.
        # Our own checks in _decode_to_rgb guard it instead.
        Image.preinit()  # registers the JPEG plugin (Image.open does this itself)
        factory, _accept = Image.OPEN[kind]
        return factory(io.BytesIO(data))
    return Image.open(io.BytesIO(data), formats=[kind])


def _decode_to_rgb(
    data: bytes, kind: str, label: str, max_pixels: int, max_side: int, max_jpeg_pixels: int
) -> tuple[Image.Image, tuple[int, int]]:
    with _open(data, kind) as im:
        if im.format not in (kind, "MPO"):
            raise ImageRejected(_rejection_for(im.format))
        width, height = im.size
        # Declared dimensions are known from the header alone: refuse bombs before decoding.
        if width < 1 or height < 1:
            raise ImageRejected(f"The {label} file is truncated or corrupt.")
        if kind == "JPEG" and width * height > max_jpeg_pixels:
            raise ImageRejected(_too_many_pixels((width, height), max_jpeg_pixels))
        # Multi-picture JPEGs (MPO) from cameras carry a preview or depth map as extra frames;
        # the first frame is the photo. Anything else with frames is an animation.
        if im.format != "MPO" and getattr(im, "n_frames", 1) > 1:
            raise ImageRejected("Animated images are not accepted.")
        if kind == "JPEG" and max(width, height) > max_side:
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the result is still at least the
            # final size on both sides: a 48-megapixel photo then costs a quarter of the memory
            # and LANCZOS still does the last step, so quality is unchanged.
            im.draft(im.mode, _fitted_size((width, height), max_side))
        # What will be decoded (a JPEG at its draft scale) must fit the memory bound.
        if im.size[0] * im.size[1] > max_pixels:
            raise ImageRejected(_too_many_pixels((width, height), max_pixels))
        im.load()
        orientation = _orientation(im)
        # Every step below makes a new image when it changes anything; work inside the `with`
        # so that a large RGB photo is not copied once more just to outlive the closed file.
        rgb = to_rgb(im)
        if orientation in _ORIENTATION_FIX:
            rgb = rgb.transpose(_ORIENTATION_FIX[orientation])
        rgb = _fit(rgb, max_side)
        if rgb is im:
            rgb = im.copy()
    return rgb, (width, height)


def _declared_size(data: bytes, kind: str) -> tuple[int, int] | None:
    # Only reached when Pillow's own bomb check fired inside Image.open, before we could read
    # .size: run the format's header parser alone (no pixel is decoded) to name the size.
    try:
        Image.init()
        factory, _accept = Image.OPEN[kind]
        return tuple(factory(io.BytesIO(data)).size)
    except Exception:
        return None


def _too_many_pixels(size: tuple[int, int] | None, max_pixels: int) -> str:
    limit = f"the limit is {_format_megapixels(max_pixels)} megapixels."
    if size is None:
        return f"The image has too many pixels; {limit}"
    # The multiplication sign is what the user reads; "x" would look like a typo.
    return f"The image is {size[0]}×{size[1]} pixels; {limit}"  # noqa: RUF001


def _orientation(im: Image.Image) -> int:
    # A damaged EXIF block is common after some editors and says nothing about the pixels, so it
    # means "no orientation" rather than a rejection.
    try:
        value = im.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _fitted_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    long_side = max(width, height)
    if long_side <= max_side:
        return size
    scale = max_side / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def _fit(rgb: Image.Image, max_side: int) -> Image.Image:
    size = _fitted_size(rgb.size, max_side)
    if size == rgb.size:
        return rgb
    # reducing_gap: shrink by an integer factor first, then LANCZOS the rest; several times
    # faster on large photos and, per Pillow's docs, indistinguishable from plain LANCZOS.
    return rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode(rgb: Image.Image, kind: str) -> tuple[bytes, str, str]:
    # A fresh image object with nothing in .info (EXIF, ICC profile, XMP, comments, text chunks),
    # so none of it can reach the encoder: Pillow's savers fall back to im.info for some of these.
    # A copy of the pixels costs 0.05 ms for a 600x450 photo; rebuilding them from tobytes() did
    # the same in 1.2 ms.
    clean = rgb.copy()
    clean.info = {}
    buffer = io.BytesIO()
    if kind == "JPEG":
        # JPEG stays JPEG: re-encoding a photo as PNG would triple its size for no gain.
        # No optimize=True: its extra Huffman pass made the encode of a 600x450 photo 3.7x slower
        # (on the accept path) to save 2% of the bytes.
        clean.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0)
        return buffer.getvalue(), "image/jpeg", "jpg"
    # PNG and WebP sources become PNG: lossless, so a lossless WebP or PNG keeps its pixels.
    clean.save(buffer, "PNG", optimize=False, compress_level=6)
    return buffer.getvalue(), "image/png", "png"
