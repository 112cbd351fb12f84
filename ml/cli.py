"""Command line for training, evaluating, predicting with, importing and inspecting bundles.

Expected failures (bad dataset, bad bundle, missing pretrained weights, unreadable image)
print one ``error: ...`` line and exit with status 2; anything else is a bug and keeps its
traceback. TensorFlow is imported only by the subcommands that need it, so ``--help`` and
``inspect`` stay fast.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml.classes import CLASSES
from ml.data import CLASS_WEIGHTINGS
from ml.manifest import BundleError, read_manifest, unpack_bundle
from ml.schedules import SCHEDULES

EXIT_USAGE = 2
ARCHITECTURE_NAMES = ("basic_cnn", "mobilenet_v2", "densenet169")


def _expected_errors() -> tuple[type[BaseException], ...]:
    from ml.data import DatasetError
    from ml.preprocess import ImageDecodeError
    from ml.pretrained import PretrainedWeightsUnavailable

    return (
        BundleError,
        DatasetError,
        ImageDecodeError,
        PretrainedWeightsUnavailable,
        FileExistsError,
        FileNotFoundError,
    )


def _number(text: str, unit: str = "") -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # "nan" and "inf" parse as floats but mean nothing here
        raise argparse.ArgumentTypeError(f"not a number{unit}: {text!r}")
    return value


def _positive_minutes(text: str) -> float:
    value = _number(text, " of minutes")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 minutes, not {text}")
    return value


def _fraction_below_one(text: str) -> float:
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, not {text}")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ml",
        description="SkinSight models: train, evaluate, predict, import and inspect bundles.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a model and write a bundle",
        description="Train an architecture; writes OUT/bundle (model bundle) and OUT/report.",
    )
    train.add_argument(
        "--data",
        required=True,
        type=Path,
        help="dataset folder (HAM10000 "
        "layout, web-app snapshot with labels.csv, or one folder per class)",
    )
    train.add_argument(
        "--out",
        type=Path,
        default=None,
        help="new run folder for bundle and report (default: runs/<architecture>-<UTC time>)",
    )
    train.add_argument(
        "--architecture",
        choices=ARCHITECTURE_NAMES,
        default="mobilenet_v2",
        help="model to train (default: mobilenet_v2, ImageNet transfer learning)",
    )
    train.add_argument(
        "--image-size", type=int, default=None, help="square input size in pixels (default: 224)"
    )
    train.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs per phase (default: the architecture's paper setting)",
    )
    train.add_argument(
        "--head-epochs",
        type=int,
        default=None,
        help="epochs of phase 1 (head only for transfer models); overrides --epochs",
    )
    train.add_argument(
        "--fine-tune-epochs",
        type=int,
        default=None,
        help="epochs of phase 2 (fine-tuning the upper backbone); 0 skips it; overrides --epochs",
    )
    train.add_argument("--learning-rate", type=float, default=None, help="phase-1 learning rate")
    train.add_argument(
        "--find-lr",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run a learning-rate range test before phase 1 and train with its suggestion "
        "(curve in OUT/report/lr_range.png); an explicit --learning-rate still wins "
        "(default: on for densenet169 unless --learning-rate is given, off otherwise)",
    )
    train.add_argument(
        "--fine-tune-learning-rate", type=float, default=None, help="phase-2 learning rate"
    )
    train.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="plateau",
        help="learning-rate schedule per phase: plateau (constant, halved when validation loss "
        "stalls for 3 epochs; the paper's) or cosine (one-epoch warm-up, then cosine decay "
        "to 1%% of the rate) (default: plateau)",
    )
    train.add_argument(
        "--max-minutes",
        type=_positive_minutes,
        default=None,
        help="wall-clock cap on training: no epoch is started that would end past it, and "
        "fine-tuning is skipped once it is reached (default: no cap)",
    )
    train.add_argument(
        "--label-smoothing",
        type=_fraction_below_one,
        default=0.0,
        help="train against targets mixed with this share of a uniform distribution, so the "
        "model is not pushed to certainty on hard or mislabelled images (default: 0, off)",
    )
    train.add_argument(
        "--weight-decay",
        type=_non_negative,
        default=0.0,
        help="decoupled weight decay per step, scaled by the learning rate (AdamW for Adam, "
        "SGD's own otherwise); biases and BatchNorm are not decayed (default: 0, off)",
    )
    train.add_argument(
        "--colour-jitter",
        type=_fraction_below_one,
        default=0.0,
        help="strength of random brightness, contrast and saturation changes during "
        "training, e.g. 0.2; hue is never changed (default: 0, off)",
    )
    train.add_argument(
        "--class-weighting",
        choices=CLASS_WEIGHTINGS,
        default="balanced",
        help="loss weights against class imbalance: balanced (n/(k*count)), sqrt (softer), none",
    )
    train.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="batch size (default: 16 for basic_cnn, 32 for transfer models)",
    )
    train.add_argument("--seed", type=int, default=0, help="seed for split, shuffling, init")
    train.add_argument(
        "--val-fraction",
        type=float,
        default=0.15,
        help="share of lesions for validation (default: 0.15)",
    )
    train.add_argument(
        "--test-fraction",
        type=float,
        default=0.15,
        help="share of lesions for the test split (default: 0.15)",
    )
    train.add_argument(
        "--no-pretrained",
        action="store_true",
        help="train transfer models from random weights, not ImageNet",
    )
    train.add_argument(
        "--weights-dir",
        type=Path,
        default=None,
        help="folder with Keras ImageNet weight files (default: "
        "$PRETRAINED_WEIGHTS_DIR, then ~/.keras/models, then download)",
    )
    train.add_argument(
        "--fine-tune-layers",
        type=int,
        default=None,
        help="backbone layers unfrozen in phase 2 (default: per architecture)",
    )
    train.add_argument(
        "--limit-per-class",
        type=int,
        default=None,
        help="use at most this many images per class (quick runs)",
    )
    train.add_argument(
        "--no-cache",
        action="store_true",
        help="do not cache decoded images in memory (for very large datasets)",
    )
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress")

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
    evaluate.add_argument("--out", required=True, type=Path, help="folder for the report")
    evaluate.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")

    predict = commands.add_parser(
        "predict",
        help="print class probabilities for images",
        description="Print calibrated class probabilities for each IMAGE.",
    )
    predict.add_argument("bundle", type=Path, help="bundle folder or .zip")
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")

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

    inspect = commands.add_parser(
        "inspect",
        help="print a bundle's manifest summary and verify its hashes",
        description="Verify every file hash of BUNDLE and print its manifest summary.",
    )
    inspect.add_argument("bundle", type=Path, help="bundle folder or .zip")
    return parser


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

    out = args.out or Path("runs") / (f"{args.architecture}-{datetime.now(UTC):%Y%m%d-%H%M%S}")
    config = TrainConfig(
        data_dir=args.data,
        out_dir=out,
        architecture=args.architecture,
        image_size=args.image_size,
        epochs=args.epochs,
        head_epochs=args.head_epochs,
        fine_tune_epochs=args.fine_tune_epochs,
        learning_rate=args.learning_rate,
        fine_tune_learning_rate=args.fine_tune_learning_rate,
        class_weighting=args.class_weighting,
        batch_size=args.batch_size,
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        no_pretrained=args.no_pretrained,
        weights_dir=args.weights_dir,
        fine_tune_layers=args.fine_tune_layers,
        limit=args.limit_per_class,
        cache=not args.no_cache,
        find_lr=args.find_lr,
        schedule=args.schedule,
        max_minutes=args.max_minutes,
        label_smoothing=args.label_smoothing,
        weight_decay=args.weight_decay,
        colour_jitter=args.colour_jitter,
    )
    bundle = train(config, progress=not args.quiet)
    print(bundle)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ml.evaluate import evaluate_bundle

    result = evaluate_bundle(
        args.bundle, args.data, args.out, split=args.split, batch_size=args.batch_size
    )
    print(f"evaluated {result['count']} images ({result['selection']})")
    print(f"accuracy: {result['metrics'].get('accuracy')}")
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
    if args.json:
        rows = [
            {"image": str(path), "probabilities": dict(zip(names, map(float, row), strict=True))}
            for path, row in zip(args.images, probabilities, strict=True)
        ]
        print(json.dumps(rows, indent=2))
        return 0
    print("image\t" + "\t".join(names) + "\ttop")
    for path, row in zip(args.images, probabilities, strict=True):
        cells = "\t".join(f"{p:.4f}" for p in row)
        print(f"{path}\t{cells}\t{names[int(row.argmax())]}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from ml.bundle import import_model_files

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
    path: Path = args.bundle
    if path.is_file() and path.suffix == ".zip":
        with tempfile.TemporaryDirectory(prefix="skinsight-inspect-") as scratch:
            manifest = read_manifest(unpack_bundle(path, Path(scratch) / "bundle"))
    else:
        manifest = read_manifest(path, verify=True)
    print(_manifest_summary(manifest))
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
