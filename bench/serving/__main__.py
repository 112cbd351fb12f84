"""Serving benchmark: SkinSight against the seed's Flask design and BentoML, same photos, same model.

    make bench-serving                    # or: .venv/bin/python -m bench.serving
    .venv/bin/python -m bench.serving --bundle var/training/.../bundle --uploads 500

In one run, on this machine, with the real 600x450 photos of ../shared/data/fullsize-samples and one
MobileNetV2 (224 px) bundle: (a) the bare engine, (b) the seed's design (Flask + gunicorn, Keras
`predict` per image), (c) BentoML with adaptive batching over the bundle's ONNX export, (d) SkinSight
end to end through its API. Prints the table and writes docs/performance.md (with the command, date
and machine) and docs/benchmarks/serving.json. Not part of the test suite.

Without --bundle, a MobileNetV2 with the ImageNet backbone and an untrained head is made once under
var/bench/bundle: the served computation is the same as a trained one's, the answers are not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.bundles import PHOTOS, mobilenet_bundle
from bench.serving.figure import draw

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "benchmarks" / "serving.json"
REPORT = ROOT / "docs" / "benchmarks" / "serving.md"
FIGURE = ROOT / "docs" / "benchmarks" / "serving.png"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serving", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--bundle", type=Path, help="a bundle folder (default: made once)")
    parser.add_argument("--uploads", type=int, default=500, help="backlog size for (d)")
    parser.add_argument("--requests", type=int, default=300, help="requests for (b) and (c)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--idle-uploads", type=int, default=20)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], choices=["engine", "seed", "bentoml"])
    parser.add_argument("--no-docs", action="store_true", help="print only; write no files")
    return parser.parse_args(argv)


def _fmt(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cpu(numbers: dict) -> str:
    """All processes' CPU milliseconds per image."""
    return _fmt(sum(numbers["cpu_ms_per_image"].values())) if "cpu_ms_per_image" in numbers else "-"


def table(results: dict) -> str:
    engine, seed, bento, ours = (results.get(k) for k in ("engine", "seed", "bentoml", "skinsight"))
    rows = [
        "| | images/s | p50 ms | p95 ms | CPU ms/image | notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    if engine:
        ort = engine["onnxruntime"]
        for batch, numbers in ort["batches"].items():
            rows.append(
                f"| (a) ONNX Runtime, batch {batch}, preprocessed tensors | "
                f"{_fmt(numbers['images_per_second'])} | {_fmt(numbers['ms_per_call'])} | - | - | "
                f"engine alone |"
            )
        keras = engine["keras"]
        rows.append(
            f"| (a) Keras tf.function, batch 1 | {_fmt(keras['tf_function_batch_1']['images_per_second'])} "
            f"| {_fmt(keras['tf_function_batch_1']['ms_per_call'])} | - | - | eager call: "
            f"{_fmt(keras['eager_batch_1']['ms_per_call'])} ms |"
        )
        rows.append(
            f"| (a) decode + resize of one photo | - | {_fmt(engine['preprocess_ms_per_image'])} "
            f"| - | - | Pillow, JPEG draft |"
        )
    for label, numbers in (("(b) seed: Flask + gunicorn, Keras predict", seed),
                           ("(c) BentoML adaptive batching, ONNX Runtime", bento)):  # fmt: skip
        if numbers:
            rows.append(
                f"| {label} | {_fmt(numbers['per_second'])} | {_fmt(numbers['p50_ms'])} | "
                f"{_fmt(numbers['p95_ms'])} | {_cpu(numbers)} | {numbers['requests']} requests, "
                f"{numbers['clients']} clients, {numbers['errors']} errors |"
            )
    if ours:
        rows.append(
            f"| (d) SkinSight, classified (backlog of {ours['backlog_uploads']}) | "
            f"{_fmt(ours['classified_per_second'])} | {_fmt(ours['created_to_finished_p50_ms'])} | "
            f"{_fmt(ours['created_to_finished_p95_ms'])} | {_cpu(ours)} | created → finished; mean batch "
            f"{_fmt(ours['mean_batch_jobs'])} jobs; {ours['not_done']} not done |"
        )
        rows.append(
            f"| (d) SkinSight, accepted | {_fmt(ours['accepted_per_second'])} | "
            f"{_fmt(ours['accept_p50_ms'])} | {_fmt(ours['accept_p95_ms'])} | - | "
            f"{ours['clients']} clients, {ours['accept_errors']} errors |"
        )
        rows.append(
            f"| (d) SkinSight at idle, accepted | - | {_fmt(ours.get('idle_accept_p50_ms'))} | "
            f"{_fmt(ours.get('idle_accept_p95_ms'))} | - | one upload at a time, 600x450 JPEG |"
        )
        rows.append(
            f"| (d) SkinSight at idle, upload → pushed result | - | "
            f"{_fmt(ours['idle_upload_to_push_p50_ms'])} | "
            f"{_fmt(ours['idle_upload_to_push_p95_ms'])} | - | one upload at a time |"
        )
    return "\n".join(rows)


def ratios(results: dict) -> dict:
    ours = results.get("skinsight") or {}
    out = {}
    for key in ("seed", "bentoml"):
        if results.get(key) and ours:
            out[f"skinsight_vs_{key}"] = ours["classified_per_second"] / results[key]["per_second"]
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    if not PHOTOS.is_dir():
        print(f"{PHOTOS} is absent: the benchmark needs the real photos beside the checkout.")
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    photos = sorted(PHOTOS.iterdir())
    bundle = args.bundle or mobilenet_bundle()
    results: dict = {}
    if "engine" not in args.skip:
        from bench.serving.engine import measure_engine

        print("(a) bare engine…", flush=True)
        results["engine"] = measure_engine(bundle, photos)
    if "seed" not in args.skip:
        from bench.serving.seed_server import measure_seed

        print("(b) seed design…", flush=True)
        results["seed"] = measure_seed(bundle, photos, total=args.requests, clients=args.clients)
    if "bentoml" not in args.skip:
        from bench.serving.bentoml_runner import measure_bentoml

        print("(c) BentoML…", flush=True)
        results["bentoml"] = measure_bentoml(
            bundle, photos, total=args.requests, clients=args.clients
        )
    from bench.serving.skinsight import measure_skinsight

    print("(d) SkinSight end to end…", flush=True)
    results["skinsight"] = measure_skinsight(
        bundle,
        photos,
        total=args.uploads,
        clients=args.clients,
        idle_uploads=args.idle_uploads,
        worker_concurrency=args.worker_concurrency,
    )
    results["ratios"] = ratios(results)
    results["run"] = {
        "command": "python -m bench.serving " + shlex.join(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()}: {os.cpu_count()} cores, {platform.platform()}",
        "cores": os.cpu_count(),
        "bundle": str(bundle),
    }
    report = markdown(results)
    print(report)
    if not args.no_docs:
        RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
        REPORT.write_text(report)
        draw(results, FIGURE)
        print(f"wrote {REPORT}, {RESULTS} and {FIGURE}; docs/performance.md discusses them")
    return 0


def markdown(results: dict) -> str:
    run = results["run"]
    lines = [
        "# Serving benchmark: latest run",
        "",
        f"`{run['command']}` on {run['date']}, {run['machine']}; bundle `{run['bundle']}`.",
        "",
        table(results),
        "",
        "![Throughput and CPU per image](serving.png)",
        "",
    ]
    for name, value in results["ratios"].items():
        lines.append(f"- {name.replace('_', ' ')}: {value:.2f}x (classified images per second)")
    for name in ("seed", "bentoml", "skinsight"):
        cpu = (results.get(name) or {}).get("cpu_ms_per_image")
        if cpu:
            parts = ", ".join(f"{group} {ms}" for group, ms in cpu.items())
            lines.append(f"- CPU ms per image, {name}: {parts}")
    stages = (results.get("skinsight") or {}).get("worker_stage_means_ms") or {}
    if stages:
        lines += ["", "Mean milliseconds per stage during (d) (from the portal's own metrics):", ""]
        lines += [f"- {stage}: {ms}" for stage, ms in sorted(stages.items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
