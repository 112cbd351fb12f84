"""Is a photo fit to classify? Clear failures are refused with a request to retake, never guessed at.

The checks look at a copy at most ANALYSIS_SIDE pixels on its long side. Thresholds were measured
(2026-11-27) on the 126 full-size HAM10000 photos of ../shared/data/fullsize-samples and on 1,500 to
3,000 of the 200x150 HAM10000 images, and every one of those passes with a margin:

- darkness: mean luminance 113.8 at the least on the full-size photos, 66.8 on the small ones;
- blur: dermatoscopic photos are smooth, so only strong blur can be told apart. The variance of the
  Laplacian is 11.1 at the least on the full-size photos (5.7 on the small ones); a 4 px Gaussian
  blur of a 600x450 photo gives 2.9 at the median and 7.1 at most, so the gate refuses most photos
  that blurred and lets lighter blur through rather than refuse sharp, smooth lesions;
- not skin: a colour rule for skin fails on dermoscopy (some samples have no pixel a YCbCr skin rule
  accepts), so only images with almost no colour (mean saturation 0.059 at the least on the samples)
  or dominated by saturated greens and blues (at most 65% of any sample) are refused.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image

ANALYSIS_SIDE = 256
MIN_SIDE = 64
MIN_MEAN_LUMINANCE = 45.0
BRIGHT_LEVEL = 250
MAX_BRIGHT_SHARE = 0.5
MIN_SHARPNESS = 4.0
MIN_MEAN_SATURATION = 0.03
COOL_SATURATION, COOL_HUES = 0.2, (75.0, 260.0)
MAX_COOL_SHARE = 0.8


@dataclass(frozen=True)
class QualityProblem:
    code: str
    message: str


def _analysis_copy(rgb: Image.Image) -> Image.Image:
    copy = rgb.copy()
    copy.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE), Image.Resampling.BILINEAR)
    return copy


def _sharpness(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: low when nothing in the picture has an edge."""
    laplacian = (
        4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    )
    return float(laplacian.var())


def photo_quality_problems(rgb: Image.Image) -> list[QualityProblem]:
    """What makes this RGB photo unfit to classify; empty when it may be classified."""
    width, height = rgb.size
    if min(width, height) < MIN_SIDE:
        return [
            QualityProblem(
                "too_small",
                f"The photo is only {width}x{height} pixels, too small to judge. Take it closer, "
                "so that the spot fills much of the picture.",
            )
        ]
    small = _analysis_copy(rgb)
    grey = np.asarray(small.convert("L"), dtype=np.float64)
    hsv = np.asarray(small.convert("HSV"), dtype=np.float64)
    hue, saturation = hsv[..., 0] * 360 / 255, hsv[..., 1] / 255
    problems = []
    if grey.mean() < MIN_MEAN_LUMINANCE:
        problems.append(
            QualityProblem(
                "too_dark",
                "The photo is too dark to judge. Retake it in good light, such as daylight "
                "or a bright lamp.",
            )
        )
    elif (grey >= BRIGHT_LEVEL).mean() > MAX_BRIGHT_SHARE:
        problems.append(
            QualityProblem(
                "overexposed",
                "Most of the photo is washed out. Retake it without flash or direct glare.",
            )
        )
    # A dark or washed-out photo has little contrast, hence few edges: blur is judged on the others.
    if not problems and _sharpness(grey) < MIN_SHARPNESS:
        problems.append(
            QualityProblem(
                "blurred",
                "The photo looks out of focus. Hold the camera still, let it focus on the spot, "
                "and retake it.",
            )
        )
    cool = (saturation > COOL_SATURATION) & (hue >= COOL_HUES[0]) & (hue <= COOL_HUES[1])
    if saturation.mean() < MIN_MEAN_SATURATION or cool.mean() > MAX_COOL_SHARE:
        problems.append(
            QualityProblem(
                "not_skin",
                "This does not look like a colour photo of skin. Upload a colour photo of the "
                "spot itself.",
            )
        )
    return problems
