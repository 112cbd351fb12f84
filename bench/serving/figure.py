"""The serving benchmark's figure: each design's throughput against the issue's targets, and
where each one's CPU goes per image (docs/benchmarks/serving.png)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

LABELS = {
    "seed": "(b) seed: Flask + Keras",
    "bentoml": "(c) BentoML + ONNX",
    "skinsight": "(d) SkinSight",
}
# The seed's target multiple (issue 9): SkinSight at least 4.5x the seed and at least BentoML.
SEED_MULTIPLE = 4.5


def _throughput(results: dict, name: str) -> float:
    numbers = results[name]
    return numbers["classified_per_second"] if name == "skinsight" else numbers["per_second"]


def draw(results: dict, path: Path) -> None:
    names = [name for name in LABELS if results.get(name)]
    fig = Figure(figsize=(11, 3.6))
    speed, cpu = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})

    rates = [_throughput(results, name) for name in names]
    rows = range(len(names))
    speed.barh(rows, rates, color=["#999999", "#6a8caf", "#c8553d"][: len(names)])
    speed.set_yticks(list(rows), [LABELS[name] for name in names])
    speed.invert_yaxis()
    speed.set_xlabel("images classified per second (higher is better)")
    for row, rate in zip(rows, rates, strict=True):
        speed.text(rate, row, f" {rate:.1f}", va="center")
    if results.get("seed"):
        target = SEED_MULTIPLE * results["seed"]["per_second"]
        speed.axvline(target, color="black", linestyle="--", linewidth=1)
        speed.text(target, len(names) - 0.45, f" {SEED_MULTIPLE}x seed", fontsize=8)
    speed.set_xlim(
        0, max([*rates, SEED_MULTIPLE * results.get("seed", {}).get("per_second", 0)]) * 1.25
    )

    groups: list[str] = []
    for name in names:
        for group in results[name].get("cpu_ms_per_image", {}):
            if group not in groups:
                groups.append(group)
    groups.sort(key=lambda group: group == "load client")  # the client's share last
    left = [0.0] * len(names)
    for group in groups:
        widths = [results[name].get("cpu_ms_per_image", {}).get(group, 0.0) for name in names]
        cpu.barh(rows, widths, left=left, label=group)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for row, total in zip(rows, left, strict=True):
        cpu.text(total, row, f" {total:.0f} ms", va="center")
    cpu.set_yticks(list(rows), [""] * len(names))
    cpu.invert_yaxis()
    cpu.set_xlim(0, max(left) * 1.2)
    cpu.set_xlabel("CPU milliseconds per image, all processes of the design (lower is better)")
    cpu.legend(fontsize=8, ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    when = results["run"]["date"].replace("T", " ")[:16]
    fig.suptitle(f"Serving benchmark, {when} UTC, {results['run']['cores']} CPU cores")
    fig.tight_layout()
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110, bbox_inches="tight")
