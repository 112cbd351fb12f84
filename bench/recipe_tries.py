"""Benchmark: what the serving-side choices buy one trained model, on both sets, without retraining.

    .venv/bin/python -m bench.recipe_tries runs/<run> --name NAME

For a run folder of ``ml train`` or ``bench.train_ham10000`` (its bundle and split), every photo of
the validation and test splits and of the external set (``../shared/data/isic2018-test-external``
by default) is scored through the bundle's ONNX export as each set of test-time views would serve
it; for each, the temperature is fitted on validation and the decision rules chosen as
``ml.train`` chooses them: the named class (most probable, or a prior shift for balanced
accuracy) and the referral threshold (on validation alone, or on validation and the external
photos). Each row gives the internal and external numbers and what serving it costs (ONNX Runtime,
one photo at a time). Writes ``docs/benchmarks/recipe-tries-NAME.{json,md}``. Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DOCS = ROOT / "docs" / "benchmarks"
VIEW_SETS = ("none", "flips", "dihedral")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder holding bundle/ (and its split.json)")
    parser.add_argument("--name", required=True, help="results name: recipe-tries-NAME.{json,md}")
    parser.add_argument(
        "--data", type=Path, default=SHARED / "data" / "ham10000-200x150", help="the dataset"
    )
    parser.add_argument("--external", type=Path, default=SHARED / "data" / "isic2018-test-external")
    parser.add_argument("--views", nargs="+", default=list(VIEW_SETS), help="test-time view sets")
    return parser.parse_args(argv)


def score(engine, recipe, samples) -> np.ndarray:
    """Raw softmax outputs of ``samples`` through the recipe's preprocessing and views."""
    rows = []
    for start in range(0, len(samples), 16):
        chunk = samples[start : start + 16]
        batch = np.stack([recipe.preprocessing.from_file(s.path) for s in chunk])
        rows.append(recipe.raw_probabilities(engine.run, batch))
    return np.concatenate(rows)


def serving_ms(engine, recipe, samples, count: int = 30) -> float:
    """Median ms per photo, one photo per call: preprocessing, views and model."""
    times = []
    for sample in samples[:count]:
        data = sample.path.read_bytes()
        started = time.perf_counter()
        recipe.raw_probabilities(engine.run, recipe.preprocessing.from_bytes(data)[np.newaxis])
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000.0, 1)


def tries(
    run: Path, data: Path, external_dir: Path, view_sets: list[str]
) -> tuple[dict, list[dict]]:
    from ml.bundle import SPLIT_FILE, open_bundle
    from ml.calibration import calibrate, fit_temperature, log_probabilities
    from ml.classes import CLASSES
    from ml.datasets import detect_and_load
    from ml.decisions import DecisionRules
    from ml.engines import open_engine
    from ml.judge import judge
    from ml.operating_points import choose_top_class_rule
    from ml.recipe import ServingRecipe
    from ml.referral import choose_referral_rule
    from ml.splits import split_from_json
    from ml.tta import TestTimeAugmentation

    with open_bundle(run / "bundle") as opened:
        manifest = opened.manifest
        engine = open_engine(opened, threads=os.cpu_count())
        recorded = json.loads(opened.file(SPLIT_FILE).read_text())
    split = split_from_json(detect_and_load(data), recorded)
    external = detect_and_load(external_dir)
    labels = {
        "val": np.array([s.label_index for s in split.val]),
        "test": np.array([s.label_index for s in split.test]),
        "external": np.array([s.label_index for s in external]),
    }
    train_labels = np.array([s.label_index for s in split.train])
    attributes = [dict(s.attributes) for s in split.test]
    rows = []
    for name in view_sets:
        recipe = ServingRecipe(
            {**manifest, "test_time_augmentation": TestTimeAugmentation.named(name).to_manifest()}
        )
        started = time.monotonic()
        raw = {
            "val": score(engine, recipe, split.val),
            "test": score(engine, recipe, split.test),
            "external": score(engine, recipe, external),
        }
        temperature = fit_temperature(log_probabilities(raw["val"]), labels["val"])
        probs = {part: calibrate(values, temperature) for part, values in raw.items()}
        print(f"[tries] {name}: scored in {time.monotonic() - started:.0f} s", flush=True)
        cost = serving_ms(engine, recipe, split.test)
        balanced = choose_top_class_rule(labels["val"], probs["val"], train_labels, CLASSES)
        for top_name, top in (("most probable", None), ("balanced", balanced)):
            for chosen_on, outside in (
                ("validation", None),
                ("validation + external", (labels["external"], probs["external"])),
            ):
                referral = choose_referral_rule(
                    labels["val"], probs["val"], CLASSES, external=outside
                )
                rules = DecisionRules(referral, top)
                test = judge(labels["test"], probs["test"], CLASSES, rules, attributes)
                ext = judge(labels["external"], probs["external"], CLASSES, rules)
                rows.append(
                    {
                        "views": name,
                        "top_class": top_name
                        if top is None
                        else f"balanced (tau {top.tau:g}, floor {top.min_probability:.0%})",
                        "referral_chosen_on": chosen_on,
                        "temperature": round(temperature, 3),
                        "serving_ms_per_photo": cost,
                        "internal": headline_numbers(test),
                        "external": headline_numbers(ext),
                        "threshold": referral.malignant_threshold,
                        "subgroups_flagged": test.get("subgroups", {}).get("flagged", []),
                    }
                )
                print(f"[tries] {_line(rows[-1])}", flush=True)
    return manifest, rows


def headline_numbers(metrics: dict) -> dict:
    """The numbers a tries table shows for one set, from ``ml.judge.judge``."""
    referral = metrics.get("referral") or {}
    return {
        "n": metrics["n"],
        "balanced_accuracy": metrics["balanced_accuracy"],
        "accuracy": metrics["accuracy"],
        "melanoma_recall": metrics["melanoma"]["sensitivity"],
        "macro_auc": metrics["roc_auc"].get("macro"),
        "ece": metrics["ece"],
        "melanoma_referred": referral.get("melanoma_sensitivity"),
        "benign_referred": referral.get("benign_referral_rate"),
        "all_referred": referral.get("referral_rate"),
    }


def numbers_line(row: dict) -> str:
    """One row's headline numbers, internal / external, for the progress lines."""
    i, e = row["internal"], row["external"]
    return (
        f"BMCA {i['balanced_accuracy']:.3f} / {e['balanced_accuracy']:.3f}, melanomas referred "
        f"{i['melanoma_referred']:.3f} / {e['melanoma_referred']:.3f}, benign referred "
        f"{i['benign_referred']:.3f} / {e['benign_referred']:.3f}, ECE {i['ece']:.3f} / "
        f"{e['ece']:.3f}, {row['serving_ms_per_photo']} ms"
    )


def _line(row: dict) -> str:
    return (
        f"{row['views']}, {row['top_class']}, referral on {row['referral_chosen_on']}: "
        + numbers_line(row)
    )


def pair(row: dict, key: str) -> str:
    """A table cell: the internal and the external value of ``key``."""
    return f"{row['internal'][key]:.3f} / {row['external'][key]:.3f}"


def stamped(module: str, argv, **fields) -> dict:
    """A results dict headed by the command that made it, the date and the machine."""
    return {
        "command": f"python -m {module} " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU",
        **fields,
    }


def write_results(stem: str, result: dict, markdown: str) -> None:
    """``docs/benchmarks/STEM.json`` and ``STEM.md``."""
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (DOCS / f"{stem}.md").write_text(markdown)


def render_markdown(result: dict) -> str:
    lines = [
        f"# Serving-side tries on {result['run']}",
        "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}; machine: {result['machine']}  ",
        "Internal: the bundle's held-out test split (HAM10000, unseen lesions); external: "
        f"{result['external']} (photos from other sources, also used to choose the referral "
        "threshold where the row says so, so its external referral numbers there are optimistic). "
        "Each cell is internal / external.",
        "",
        "| views | named class | referral threshold chosen on | threshold | balanced accuracy | "
        "melanoma recall (named) | melanomas referred | benign referred | all referred | ECE | "
        "serving ms/photo |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        cells = [pair(row, key) for key in ("balanced_accuracy", "melanoma_recall")] + [
            pair(row, key)
            for key in ("melanoma_referred", "benign_referred", "all_referred", "ece")
        ]
        lines.append(
            f"| {row['views']} | {row['top_class']} | {row['referral_chosen_on']} | "
            f"{row['threshold']:.3f} | {' | '.join(cells)} | {row['serving_ms_per_photo']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    for folder in (args.data, args.external, args.run / "bundle"):
        if not folder.is_dir():
            raise SystemExit(f"error: folder not found: {folder}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    manifest, rows = tries(args.run, args.data, args.external, args.views)
    result = stamped(
        "bench.recipe_tries",
        argv,
        run=manifest.get("name"),
        external=str(args.external),
        rows=rows,
    )
    write_results(f"recipe-tries-{args.name}", result, render_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
