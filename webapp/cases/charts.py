"""Small server-drawn charts (inline SVG geometry), so the pages need no charting script."""

WIDTH, HEIGHT, PAD = 480, 160, 24


def malignant_trend(visits: list[dict]) -> dict | None:
    """Points of the malignant probability over a lesion's classified visits, in SVG coordinates.

    None with fewer than two classified visits: one point is not a trend.
    """
    scored = [v for v in visits if v["malignant_probability"] is not None]
    if len(scored) < 2:
        return None
    step = (WIDTH - 2 * PAD) / (len(scored) - 1)
    points = [
        {
            "x": round(PAD + i * step, 1),
            "y": round(HEIGHT - PAD - v["malignant_probability"] * (HEIGHT - 2 * PAD), 1),
            "label": f"{v['created_at'][:10]}: {v['malignant_probability']:.0%}",
        }
        for i, v in enumerate(scored)
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
        "top": PAD,
        "bottom": HEIGHT - PAD,
        "right": WIDTH - PAD,
        "polyline": " ".join(f"{p['x']},{p['y']}" for p in points),
        "points": points,
    }
