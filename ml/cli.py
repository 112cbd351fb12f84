"""Command line for training, evaluating, predicting with, importing and inspecting bundles.

Expected failures (bad dataset, bad bundle, missing pretrained weights, unreadable image)
print one ``error: ...`` line and exit with status 2; anything else is a bug and keeps its
traceback. TensorFlow is imported only by the subcommands that need it, so ``--help`` and
``inspect`` stay fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml.bundle import BundleError, open_bundle
from ml.classes import CLASSES
from ml.training_config import ConfigError, add_training_options, options_from_args

EXIT_USAGE = 2


def _expected_errors() -> tuple[type[BaseException], ...]:
    from ml.datasets import DatasetError
    from ml.preprocess import ImageDecodeError
    from ml.pretrained import PretrainedWeightsUnavailable

    return (
        BundleError,
        DatasetError,
        ImageDecodeError,
        PretrainedWeightsUnavailable,
        ConfigError,
        FileExistsError,
        FileNotFoundError,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ml",
        description="SkinSight models: train, evaluate, predict, import and inspect bundles.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_train_command(commands)
    _add_evaluate_command(commands)
    _add_predict_command(commands)
    _add_import_command(commands)
    _add_inspect_command(commands)
    return parser


def _add_train_command(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="train a model and write a bundle",
        description="Train an architecture; writes OUT/bundle (model bundle) and OUT/report.",
    )
    train.add_argument(
        "--data",
        dest="data_dir",
        required=True,
        type=Path,
        help="dataset folder (HAM10000 "
        "layout, web-app snapshot with labels.csv, or one folder per class)",
    )
    train.add_argument(
        "--out",
        dest="out_dir",
        type=Path,
        default=None,
        help="new run folder for bundle and report (default: runs/<architecture>-<UTC time>)",
    )
    add_training_options(train)
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress")


def _add_evaluate_command(commands: Any) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a bundle on a dataset and write a report",
        description="Evaluate BUNDLE on DATA. When DATA holds every image of the split the "
        "bundle recorded, that split is used; otherwise all of DATA is evaluated.",
    )
    evaluate.add_argument("bundle", type=Path, help="bundle folder or .zip")
    evaluate.add_argument("--data", required=True, type=Path, help="dataset folder")
    evaluate.add_argument(
        "--split",
        choices=("test", "val", "train", "all"),
        default="test",
        help="recorded split to evaluate (default: test)",
    )
    evaluate.add_argument(
        "--external",
        type=Path,
        default=None,
        help="labelled photos from other sources (labels.csv layout): judged beside DATA with the "
        "same recipe and rules, and reported first",
    )
    evaluate.add_argument("--out", required=True, type=Path, help="folder for the report")
    evaluate.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")


def _add_predict_command(commands: Any) -> None:
    predict = commands.add_parser(
        "predict",
        help="print class probabilities for images",
        description="Print calibrated class probabilities for each IMAGE.",
    )
    predict.add_argument("bundle", type=Path, help="bundle folder or .zip")
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _add_import_command(commands: Any) -> None:
    importer = commands.add_parser(
        "import",
        help="turn a Keras model (JSON + H5 weights, .keras or .h5; Keras 2 or 3) into a bundle",
        description="Import the paper's deployment files (--json with --weights) or a single "
        "model file (--model) into a new bundle. Files written by Keras 2 (tf.keras, as the "
        "paper's app saved them) or Keras 3 are accepted; Lambda layers are refused because "
        "loading them would run code from the file. The model must output 7 classes in the "
        f"order {', '.join(CLASSES)}.",
    )
    importer.add_argument("--json", type=Path, default=None, help="Keras model JSON file")
    importer.add_argument("--weights", type=Path, default=None, help="H5 weights for --json")
    importer.add_argument("--model", type=Path, default=None, help=".keras or .h5 model file")
    importer.add_argument("--architecture", required=True, help="name recorded in the manifest")
    importer.add_argument(
        "--input-scale",
        choices=("0-255", "0-1", "-1-1"),
        default="0-255",
        help="pixel range the model was trained on; 0-1 and -1-1 add a "
        "rescaling layer so the bundle takes 0..255; write --input-scale=-1-1 with '=' "
        "(default: 0-255)",
    )
    importer.add_argument("--out", required=True, type=Path, help="new bundle folder")


def _add_inspect_command(commands: Any) -> None:
    inspect = commands.add_parser(
        "inspect",
        help="print a bundle's manifest summary and verify its hashes",
        description="Verify every file hash of BUNDLE and print its manifest summary.",
    )
    inspect.add_argument("bundle", type=Path, help="bundle folder or .zip")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        "train": _train,
        "evaluate": _evaluate,
        "predict": _predict,
        "import": _import,
        "inspect": _inspect,
    }
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    expected = _expected_errors()
    try:
        return handlers[args.command](args)
    except expected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _train(args: argparse.Namespace) -> int:
    from ml.train import TrainConfig, train

    options = options_from_args(args)
    if options.get("out_dir") is None:
        stamp = datetime.now(UTC)
        options["out_dir"] = Path("runs") / f"{options['architecture']}-{stamp:%Y%m%d-%H%M%S}"
    bundle = train(TrainConfig.from_options(options), progress=not args.quiet)
    print(bundle)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ml.evaluate import evaluate_bundle
    from ml.judge import headline

    result = evaluate_bundle(
        args.bundle,
        args.data,
        args.out,
        split=args.split,
        batch_size=args.batch_size,
        external_dir=args.external,
    )
    metrics = result["metrics"]
    print(f"evaluated {result['count']} images ({result['selection']})")
    for label, numbers in (("held-out", metrics), ("external", metrics.get("external"))):
        if numbers:
            print(f"{label}: {headline(numbers)}")
    for name, path in sorted(result["report"].items()):
        print(f"{name}: {path}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ml.predict import Predictor

    predictor = Predictor.from_bundle(args.bundle)
    blobs = []
    for path in args.images:
        if not path.is_file():
            raise FileNotFoundError(f"image not found: {path}")
        blobs.append(path.read_bytes())
    probabilities = predictor.predict_bytes(blobs)
    names = predictor.class_names
    named = [
        predictor.top_class(dict(zip(names, map(float, row), strict=True))) for row in probabilities
    ]
    if args.json:
        rows = [
            {
                "image": str(path),
                "probabilities": dict(zip(names, map(float, row), strict=True)),
                "top_class": top,
            }
            for path, row, top in zip(args.images, probabilities, named, strict=True)
        ]
        print(json.dumps(rows, indent=2))
        return 0
    print("image\t" + "\t".join(names) + "\ttop")
    for path, row, top in zip(args.images, probabilities, named, strict=True):
        cells = "\t".join(f"{p:.4f}" for p in row)
        print(f"{path}\t{cells}\t{top}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from ml.bundle.keras_io import import_model_files

    bundle = import_model_files(
        args.out,
        architecture=args.architecture,
        json_path=args.json,
        weights_path=args.weights,
        model_path=args.model,
        input_scale=args.input_scale,
    )
    print(bundle)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    with open_bundle(args.bundle) as opened:
        print(_manifest_summary(opened.manifest))
    print("hashes: ok")
    return 0


def _manifest_summary(manifest: dict[str, Any]) -> str:
    metrics = manifest.get("metrics") or {}
    lines = [
        f"name: {manifest.get('name')}",
        f"architecture: {manifest['architecture']}",
        f"created_at: {manifest.get('created_at')}",
        f"input_size: {manifest['input_size']}",
        f"classes: {', '.join(manifest['class_names'])}",
        f"calibration_temperature: {manifest.get('calibration_temperature')}",
        f"pretrained: {manifest.get('pretrained')}",
        f"parent: {manifest.get('parent')}",
        f"dataset_sha256: {manifest.get('dataset_sha256')}",
        f"accuracy: {metrics.get('accuracy')}",
        "files:",
        *(f"  {name}  {digest}" for name, digest in sorted(manifest["files"].items())),
    ]
    return "\n".join(lines)
