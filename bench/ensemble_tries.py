"""Benchmark: trained runs averaged into one ensemble, judged on both sets from their recorded outputs.

    .venv/bin/python -m bench.ensemble_tries RUN RUN [RUN ...] --name NAME

Each run folder (of ``ml train`` or ``bench.train_ham10000``) holds ``report/predictions.npz``: its raw
validation, test and external outputs through its own test-time views. The runs must share one split (the
same photos in the same order; the same seed gives it). Their softmax outputs are averaged, a temperature
is fitted on validation, and the rules are chosen as ``ml.train`` chooses them (the balanced named class;
the referral threshold on validation and the external photos); then each member alone and the ensemble
are judged on the test split and the external photos. Serving an ensemble runs every member: its cost
is the members' ONNX Runtime times added up, measured here one photo at a time. Writes
``docs/benchmarks/ensemble-tries-NAME.{json,md}``. Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from bench.recipe_tries import (
    SHARED,
    headline_numbers,
    numbers_line,
    pair,
    serving_ms,
    stamped,
    write_results,
)

PREDICTIONS = Path("report") / "predictions.npz"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "runs", type=Path, nargs="+", help="run folders holding bundle/ and report/"
    )
    parser.add_argument("--name", required=True, help="results name: ensemble-tries-NAME.{json,md}")
    parser.add_argument(
        "--data", type=Path, default=SHARED / "data" / "ham10000-200x150", help="the dataset"
    )
    return parser.parse_args(argv)


def _recorded(run: Path) -> dict[str, np.ndarray]:
    path = run / PREDICTIONS
    if not path.is_file():
        raise SystemExit(f"error: {path} not found: train the run with `ml train` first")
    with np.load(path) as saved:
        if "external_probs" not in saved:
            raise SystemExit(f"error: {path} has no external outputs: train with --external")
        return {key: saved[key] for key in saved.files}


def _check_same_split(runs: list[Path], recorded: list[dict]) -> None:
    first = recorded[0]
    for run, other in zip(runs[1:], recorded[1:], strict=True):
        for key in ("val_labels", "eval_labels", "external_labels"):
            if not np.array_equal(first[key], other[key]):
                raise SystemExit(
                    f"error: {run} and {runs[0]} were not scored on the same {key[:-7]} photos: "
                    "train the members with the same seed and data"
                )


def _judged(raw: dict[str, np.ndarray], labels: dict, train_labels: np.ndarray) -> dict:
    from ml.calibration import calibrate, fit_temperature, log_probabilities
    from ml.classes import CLASSES
    from ml.decisions import DecisionRules
    from ml.judge import judge
    from ml.operating_points import choose_top_class_rule
    from ml.referral import choose_referral_rule

    temperature = fit_temperature(log_probabilities(raw["val"]), labels["val"])
    probs = {part: calibrate(values, temperature) for part, values in raw.items()}
    top = choose_top_class_rule(labels["val"], probs["val"], train_labels, CLASSES)
    referral = choose_referral_rule(
        labels["val"], probs["val"], CLASSES, external=(labels["external"], probs["external"])
    )
    rules = DecisionRules(referral, top)
    return {
        "temperature": round(temperature, 3),
        "top_class": f"balanced (tau {top.tau:g}, floor {top.min_probability:.0%})",
        "threshold": referral.malignant_threshold,
        "internal": headline_numbers(judge(labels["test"], probs["test"], CLASSES, rules)),
        "external": headline_numbers(judge(labels["external"], probs["external"], CLASSES, rules)),
    }


def tries(runs: list[Path], data: Path) -> list[dict]:
    from ml.bundle import SPLIT_FILE, open_bundle
    from ml.datasets import detect_and_load
    from ml.engines import open_engine
    from ml.recipe import ServingRecipe
    from ml.splits import split_from_json

    recorded = [_recorded(run) for run in runs]
    _check_same_split(runs, recorded)
    labels = {
        "val": recorded[0]["val_labels"],
        "test": recorded[0]["eval_labels"],
        "external": recorded[0]["external_labels"],
    }
    costs, names, train_labels = [], [], None
    for run in runs:
        with open_bundle(run / "bundle") as opened:
            manifest = opened.manifest
            engine = open_engine(opened, threads=os.cpu_count())
            split = split_from_json(
                detect_and_load(data), json.loads(opened.file(SPLIT_FILE).read_text())
            )
            costs.append(serving_ms(engine, ServingRecipe(manifest), split.test))
        names.append(manifest.get("name") or run.name)
        train_labels = np.array([s.label_index for s in split.train])
    rows = []
    for name, saved, cost in zip(names, recorded, costs, strict=True):
        raw = {
            "val": saved["val_probs"],
            "test": saved["eval_probs"],
            "external": saved["external_probs"],
        }
        rows.append(
            {"members": [name], "serving_ms_per_photo": cost, **_judged(raw, labels, train_labels)}
        )
        print(f"[ensemble] {_line(rows[-1])}", flush=True)
    averaged = {
        part: np.mean([saved[key] for saved in recorded], axis=0)
        for part, key in (
            ("val", "val_probs"),
            ("test", "eval_probs"),
            ("external", "external_probs"),
        )
    }
    rows.append(
        {
            "members": names,
            "serving_ms_per_photo": round(sum(costs), 1),
            **_judged(averaged, labels, train_labels),
        }
    )
    print(f"[ensemble] {_line(rows[-1])}", flush=True)
    return rows


def _line(row: dict) -> str:
    return f"{' + '.join(row['members'])}: " + numbers_line(row)


def render_markdown(result: dict) -> str:
    lines = [
        "# Ensemble tries",
        "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}; machine: {result['machine']}  ",
        "Each member alone, then their averaged softmax outputs; temperature and rules chosen on "
        "validation (the referral threshold on validation and the external photos, so external "
        "referral numbers are optimistic). Each cell is internal test / external.",
        "",
        "| members | named class | threshold | balanced accuracy | melanoma recall (named) | "
        "melanomas referred | benign referred | ECE | serving ms/photo |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        keys = (
            "balanced_accuracy",
            "melanoma_recall",
            "melanoma_referred",
            "benign_referred",
            "ece",
        )
        lines.append(
            f"| {' + '.join(row['members'])} | {row['top_class']} | {row['threshold']:.3f} | "
            f"{' | '.join(pair(row, key) for key in keys)} | {row['serving_ms_per_photo']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    if len(args.runs) < 2:
        raise SystemExit("error: an ensemble needs at least two runs")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = stamped("bench.ensemble_tries", argv, rows=tries(args.runs, args.data))
    write_results(f"ensemble-tries-{args.name}", result, render_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
