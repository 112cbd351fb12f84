"""Audit: do any external photos appear, resized or recropped, among the training data?

    .venv/bin/python -m bench.near_duplicates

Hashes every HAM10000 photo (whole and as its centred square) and every external photo with
``ml.near_duplicates``, and lists each external photo whose closest HAM10000 photo is within a
few bits, with the distribution of closest distances, into ``docs/benchmarks/near-duplicates.{json,md}``.
Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DOCS = ROOT / "docs" / "benchmarks"


def main(argv=None) -> int:
    from ml.datasets import detect_and_load
    from ml.near_duplicates import MATCH_DISTANCE, hashes_of, near_duplicates

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "ham10000-200x150")
    parser.add_argument("--external", type=Path, default=SHARED / "data" / "isic2018-test-external")
    parser.add_argument("--max-distance", type=int, default=MATCH_DISTANCE)
    args = parser.parse_args(argv)
    for folder in (args.data, args.external):
        if not folder.is_dir():
            raise SystemExit(f"error: folder not found: {folder}")
    training = [
        (s.image_id, hashes_of(s.path, with_centre=True)) for s in detect_and_load(args.data)
    ]
    external_samples = detect_and_load(args.external)
    external = [(s.image_id, hashes_of(s.path, with_centre=False)) for s in external_samples]
    # The closest distance of every external photo, to show where the threshold sits.
    closest = near_duplicates(training, external, max_distance=256)
    matches = [m for m in closest if m.distance <= args.max_distance]
    dx = {s.image_id: s.dx for s in external_samples}
    result = {
        "command": "python -m bench.near_duplicates " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "training_photos": len(training),
        "external_photos": len(external),
        "max_distance": args.max_distance,
        "closest_distance_histogram": dict(sorted(Counter(m.distance for m in closest).items())),
        "matches": [
            {
                "external": m.external_id,
                "dx": dx[m.external_id],
                "training": m.training_id,
                "distance": m.distance,
            }
            for m in matches
        ],
    }
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "near-duplicates.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Near-duplicate audit: external photos against the training data",
        "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}; machine: {result['machine']}  ",
        f"{len(external)} external photos against {len(training)} HAM10000 photos (each hashed whole "
        f"and as its centred square; 256-bit difference hash). **{len(matches)} external photo(s)** "
        f"lie within {args.max_distance} bits of a HAM10000 photo.",
        "",
        "Closest distance of each external photo (bits: photos):",
        "",
        ", ".join(f"{d}: {n}" for d, n in result["closest_distance_histogram"].items()),
        "",
    ]
    if matches:
        lines += [
            "| external photo | dx | closest HAM10000 photo | bits apart |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {m['external']} | {m['dx']} | {m['training']} | {m['distance']} |"
            for m in result["matches"]
        ]
    (DOCS / "near-duplicates.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
