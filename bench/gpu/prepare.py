"""`python -m bench.gpu.prepare [--bundle DIR] [--data DIR] [--out var/gpu-inputs] [--images N] [--weights FILE]`

Packs what the GPU check needs into one folder small enough to travel to a GPU host (at most 60 MiB):
the bundle's ONNX export and manifest, N photos of a HAM10000-layout dataset drawn evenly across the
classes with their labels, and optionally an ImageNet weights file for MobileNetV2 (no top).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

from bench.bundles import SHARED, mobilenet_bundle
from ml.bundle import MANIFEST_NAME, ONNX_FILE
from ml.classes import CLASSES
from ml.datasets import detect_and_load

LIMIT_BYTES = 60 * 2**20  # the device takes 64 MiB of tree per call; leave room for the code
LABELS = "labels.csv"


def even_draw(paths_by_class: dict[str, list[str]], count: int) -> list[tuple[str, str]]:
    """``count`` (path, class) pairs, taking from each class in turn while it has photos left."""
    queues = {dx: list(paths) for dx, paths in paths_by_class.items()}
    drawn: list[tuple[str, str]] = []
    while len(drawn) < count and any(queues.values()):
        for dx in CLASSES:
            if queues.get(dx) and len(drawn) < count:
                drawn.append((queues[dx].pop(0), dx))
    return drawn


def prepare(bundle: Path, data: Path, out: Path, images: int, weights: Path | None) -> dict:
    if not (bundle / ONNX_FILE).is_file():
        raise SystemExit(
            f"{bundle / ONNX_FILE} not found: the bundle has no ONNX export to measure"
        )
    by_class: dict[str, list[str]] = defaultdict(list)
    for sample in detect_and_load(data):
        by_class[CLASSES[sample.label_index]].append(str(sample.path))
    shutil.rmtree(out, ignore_errors=True)
    (out / "images").mkdir(parents=True)
    shutil.copy2(bundle / ONNX_FILE, out / ONNX_FILE)
    shutil.copy2(bundle / MANIFEST_NAME, out / MANIFEST_NAME)
    if weights is not None:
        shutil.copy2(weights, out / "mobilenet_v2_notop.h5")
    with (out / LABELS).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "dx"])
        for index, (path, dx) in enumerate(even_draw(by_class, images)):
            name = f"images/{index:05d}{Path(path).suffix.lower()}"
            shutil.copy2(path, out / name)
            writer.writerow([name, dx])
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    if size > LIMIT_BYTES:
        shutil.rmtree(out)
        raise SystemExit(f"{size / 2**20:.1f} MiB is over the {LIMIT_BYTES / 2**20:.0f} MiB a device call "
                         "carries: ask for fewer --images")  # fmt: skip
    return {"folder": str(out), "mib": round(size / 2**20, 1), "images": images}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.prepare")
    parser.add_argument("--bundle", type=Path, help="default: the serving benchmark's MobileNetV2")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "ham10000-200x150",
                        help="a HAM10000-layout folder (default: ../shared's HAM10000)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("var/gpu-inputs"))
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--weights", type=Path, help="MobileNetV2 ImageNet weights without the top")
    args = parser.parse_args(argv)
    if args.bundle is None:
        args.bundle = mobilenet_bundle()
    print(json.dumps(prepare(args.bundle, args.data, args.out, args.images, args.weights)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
