"""What an inference worker child pays to start: opening the active bundle and warming it up.

Each case runs in a fresh interpreter, as a forked child imports what it serves with; wall seconds
and peak resident memory come from the child itself. Cases: the checked ONNX export (what a
child serves), the same bundle without its export (the Keras fallback), and importing Keras'
bundle code alone (what every child paid on top of ONNX Runtime while ``ml.engines`` imported it
with the module). Results: docs/benchmarks/child-startup.json and docs/performance.md.

    .venv/bin/python -m bench.child_startup [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

from bench.bundles import best_available_bundle

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "docs" / "benchmarks" / "child-startup.json"
REPORT = ROOT / "docs" / "performance.md"
SECTION = "## Inference child start-up"

# VmHWM, not getrusage: ru_maxrss survives fork and exec, so a child would report its parent's peak.
_PEAK = """
def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""
# Printed by the child: seconds from its start to a warm predictor, and its peak RSS in MB.
_SERVE = (
    _PEAK
    + """
import sys, time
started = time.perf_counter()
from ml.predict import Predictor
predictor = Predictor.from_bundle(sys.argv[1])
predictor.warm_up()
seconds = time.perf_counter() - started
tf = "tensorflow" in sys.modules
print(predictor.engine_name, seconds, peak_mb(), tf)
"""
)
_IMPORT_KERAS_IO = (
    _PEAK
    + """
import sys, time
started = time.perf_counter()
import ml.bundle.keras_io
seconds = time.perf_counter() - started
print("import only", seconds, peak_mb(), True)
"""
)


def _run(code: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, check=True
    )
    engine, seconds, rss, tf = done.stdout.split()[-4:]
    return {"engine": engine, "seconds": float(seconds), "rss_mb": float(rss), "tensorflow": tf}


def _without_onnx(bundle: Path, scratch: Path) -> Path:
    """A copy of ``bundle`` whose export is missing: the predictor falls back to Keras."""
    copy = scratch / "keras-only"
    shutil.copytree(bundle, copy)
    (copy / "model.onnx").unlink()
    return copy


def measure(repeats: int) -> dict:
    bundle, which = best_available_bundle()
    with tempfile.TemporaryDirectory() as scratch:
        keras_only = _without_onnx(bundle, Path(scratch))
        cases = {
            "onnx export (served)": (_SERVE, str(bundle)),
            "keras fallback (no export)": (_SERVE, str(keras_only)),
            "import ml.bundle.keras_io alone": (_IMPORT_KERAS_IO,),
        }
        rows = {}
        for name, (code, *args) in cases.items():
            runs = []
            for index in range(repeats):
                runs.append(_run(code, *args))
                print(f"{name}: run {index + 1}/{repeats}: {runs[-1]}", flush=True)
            rows[name] = {
                "engine": runs[-1]["engine"],
                "tensorflow_loaded": runs[-1]["tensorflow"] == "True",
                "seconds_median": round(median(r["seconds"] for r in runs), 2),
                "rss_mb_median": round(median(r["rss_mb"] for r in runs)),
            }
    return {
        "command": "python -m bench.child_startup"
        + (f" --repeats {repeats}" if repeats != 3 else ""),
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {platform.python_version()}, 2 CPU cores",
        "bundle": which,
        "repeats": repeats,
        "cases": rows,
    }


def markdown(result: dict) -> str:
    lines = [
        SECTION,
        "",
        f"`{result['command']}`, {result['date']}, {result['machine']}; bundle: {result['bundle']}; "
        f"median of {result['repeats']} fresh interpreters each.",
        "",
        "| case | seconds to a warm predictor | peak RSS MB | TensorFlow loaded |",
        "|---|---:|---:|---|",
    ]
    for name, row in result["cases"].items():
        loaded = "yes" if row["tensorflow_loaded"] else "no"
        lines.append(f"| {name} | {row['seconds_median']} | {row['rss_mb_median']} | {loaded} |")
    lines += [
        "",
        "Before 2026-12-03 `ml.engines` imported Keras' bundle code with the module, so a child serving "
        "the export paid the last row on top of the first; now only the fallback imports it.",
        "",
    ]
    return "\n".join(lines)


def write_report(result: dict) -> None:
    text = REPORT.read_text()
    section = markdown(result)
    if SECTION in text:
        start = text.index(SECTION)
        following = text.find("\n## ", start + len(SECTION))
        end = len(text) if following < 0 else following + 1
        text = text[:start] + section + text[end:]
    else:
        text = text.rstrip() + "\n\n" + section
    REPORT.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result = measure(args.repeats)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    write_report(result)
    print(json.dumps(result["cases"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
