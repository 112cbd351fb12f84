"""Charts the model pages draw as inline SVG from stored numbers (no image files to fetch or protect).

The referral trade-off: for each malignant threshold, the share of melanomas referred (up) against the
share of benign photos referred (across). Lower thresholds find more melanomas and send more benign
photos to a clinician; the chosen threshold is marked, with the 90% melanoma target.
"""

from __future__ import annotations

from ml.referral import TARGET_MELANOMA_SENSITIVITY

WIDTH, HEIGHT, PAD = 320, 220, 34


def _x(share: float) -> float:
    return round(PAD + share * (WIDTH - 2 * PAD), 1)


def _y(share: float) -> float:
    return round(HEIGHT - PAD - share * (HEIGHT - 2 * PAD), 1)


def tradeoff_chart(metrics: dict) -> dict | None:
    """Coordinates for the trade-off curve of one evaluation's ``metrics``; None without the data."""
    points = [
        (p["benign_referral_rate"], p["melanoma_sensitivity"])
        for p in metrics.get("referral_tradeoff") or []
        if p.get("benign_referral_rate") is not None and p.get("melanoma_sensitivity") is not None
    ]
    if len(points) < 2:
        return None
    chosen = metrics.get("referral") or {}
    marked = None
    if (
        chosen.get("benign_referral_rate") is not None
        and chosen.get("melanoma_sensitivity") is not None
    ):
        marked = {
            "x": _x(chosen["benign_referral_rate"]),
            "y": _y(chosen["melanoma_sensitivity"]),
            "threshold": chosen.get("threshold"),
            "melanoma_sensitivity": chosen["melanoma_sensitivity"],
            "benign_referral_rate": chosen["benign_referral_rate"],
        }
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "line": " ".join(f"{_x(x)},{_y(y)}" for x, y in sorted(points)),
        "chosen": marked,
        "target_y": _y(TARGET_MELANOMA_SENSITIVITY),
        "target": TARGET_MELANOMA_SENSITIVITY,
        "x_ticks": [{"at": _x(t), "label": f"{t * 100:.0f}%"} for t in ticks],
        "y_ticks": [{"at": _y(t), "label": f"{t * 100:.0f}%"} for t in ticks],
        "left": PAD,
        "right": WIDTH - PAD,
        "top": PAD,
        "bottom": HEIGHT - PAD,
    }
