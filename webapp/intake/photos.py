"""A photo in, checked: an uploaded file or an image URL becomes a re-encoded image that passed
the content checks and the retake gate, or a refusal that says why (``ImageRejected``,
``UrlRejected``)."""

from django.conf import settings

from webapp.intake.imaging import (
    ImageRejected,
    NormalizedImage,
    format_megabytes,
    normalize_image,
)
from webapp.intake.url_fetch import fetch_url
from webapp.metrics import ACCEPT_SECONDS, UPLOADS, timed


def photo_from_file(image_file) -> NormalizedImage:
    """An uploaded file (a Django ``UploadedFile``), judged by its content alone."""
    if image_file.size > settings.UPLOAD_MAX_BYTES:
        UPLOADS.labels("rejected").inc()
        raise ImageRejected(
            f"The file is {format_megabytes(image_file.size)}; "
            f"the limit is {format_megabytes(settings.UPLOAD_MAX_BYTES)}."
        )
    image_file.seek(0)
    return _normalize(image_file.read())


def photo_from_url(url: str) -> NormalizedImage:
    """The image at ``url``, fetched through the SSRF guard."""
    with timed(ACCEPT_SECONDS, "fetch"):
        fetched = fetch_url(
            url,
            max_bytes=settings.UPLOAD_MAX_BYTES,
            timeout=settings.URL_FETCH_TIMEOUT,
            max_redirects=settings.URL_FETCH_MAX_REDIRECTS,
            allowed_networks=settings.URL_FETCH_ALLOWED_NETWORKS,
        )
    return _normalize(fetched.content)


def _normalize(data: bytes) -> NormalizedImage:
    try:
        with timed(ACCEPT_SECONDS, "normalize"):
            image = normalize_image(
                data,
                max_bytes=settings.UPLOAD_MAX_BYTES,
                max_pixels=settings.UPLOAD_MAX_PIXELS,
                max_side=settings.UPLOAD_MAX_SIDE,
                max_jpeg_pixels=settings.UPLOAD_MAX_JPEG_PIXELS,
            )
        if image.quality_problems and settings.UPLOAD_QUALITY_GATE:
            # A retake is better than a guess: nothing is stored for a photo that cannot be judged.
            raise ImageRejected(
                " ".join(problem.message for problem in image.quality_problems),
                quality=[problem.code for problem in image.quality_problems],
            )
    except ImageRejected:
        UPLOADS.labels("rejected").inc()
        raise
    return image
