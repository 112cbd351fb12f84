"""Save, load and import model bundles (``model.keras`` + metadata + ``manifest.json``).

Loading always verifies the manifest hashes *before* the Keras file is deserialised, and
deserialises with ``safe_mode=True``; a bundle whose model disagrees with its manifest (class
count, input size) is refused rather than served.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ml.bundle.archive import Bundle, open_bundle
from ml.bundle.manifest import (
    METRICS_FILE,
    MODEL_FILE,
    ONNX_FILE,
    SPLIT_FILE,
    TRAINING_FILE,
    BundleError,
    write_manifest,
)
from ml.classes import CLASSES
from ml.legacy_keras import is_legacy_config, legacy_h5_config, load_legacy_h5, load_legacy_pair
from ml.onnx_export import CHECK_IMAGES, export_checked, synthetic_check_inputs
from ml.preprocess import INPUT_SCALINGS, Preprocessing


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n")


def save_bundle(
    model: keras.Model,
    out_dir: str | Path,
    *,
    architecture: str,
    input_size: int,
    class_names: Sequence[str] = CLASSES,
    preprocessing: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    split: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    calibration_temperature: float = 1.0,
    pretrained: str | None = None,
    parent: str | None = None,
    decision_thresholds: dict[str, Any] | None = None,
    test_time_augmentation: dict[str, Any] | None = None,
    dataset_sha256: str | None = None,
    name: str | None = None,
    check_images: Sequence[str | Path] = (),
) -> Path:
    """Write a new bundle directory and return its path; never overwrites a non-empty one.

    The model is exported to ONNX too, checked against the Keras model on ``check_images`` (real
    image files where the caller has them, else synthetic images), see ``ml.onnx_export``.

    The bundle is assembled in a hidden sibling directory and renamed into place, so a crash
    half-way never leaves something that looks like a bundle.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise BundleError(f"refusing to overwrite existing bundle location {out_dir}")
    _check_savable(model, class_names, calibration_temperature)
    preprocessing = preprocessing or Preprocessing(int(input_size)).describe("unknown")
    recipe = Preprocessing.from_manifest(preprocessing, int(input_size))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        model.save(staging / MODEL_FILE)
        for name, payload in (
            (SPLIT_FILE, split),
            (TRAINING_FILE, training),
            (METRICS_FILE, metrics),
        ):
            if payload is not None:
                _write_json(staging / name, payload)
        onnx = _export_onnx(model, staging, recipe, check_images)
        import tensorflow as tf

        write_manifest(
            staging,
            {
                "name": name or out_dir.name,
                "architecture": architecture,
                "class_names": list(class_names),
                "input_size": int(input_size),
                "preprocessing": preprocessing,
                "test_time_augmentation": test_time_augmentation,
                "calibration_temperature": float(calibration_temperature),
                "decision_thresholds": decision_thresholds,
                "metrics": metrics,
                "dataset_sha256": dataset_sha256,
                "pretrained": pretrained,
                "parent": parent,
                "model_file": MODEL_FILE,
                "onnx": onnx,
                "framework": {"keras": keras.__version__, "tensorflow": tf.__version__},
            },
        )
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _check_savable(model: keras.Model, class_names: Sequence[str], temperature: float) -> None:
    output_classes = int(model.output_shape[-1])
    if output_classes != len(class_names):
        raise BundleError(
            f"model outputs {output_classes} classes but {len(class_names)} class names were given"
        )
    if temperature <= 0:
        raise BundleError(f"calibration temperature must be > 0, got {temperature}")


def _export_onnx(
    model: keras.Model,
    bundle_dir: Path,
    preprocessing: Preprocessing,
    check_images: Sequence[str | Path],
) -> dict[str, Any]:
    paths = list(check_images)[:CHECK_IMAGES]
    if not paths:
        inputs = synthetic_check_inputs(preprocessing.size)
        return export_checked(model, bundle_dir, inputs, source="synthetic")
    inputs = np.stack([preprocessing.from_file(str(path)) for path in paths])
    return export_checked(model, bundle_dir, inputs, source="real")


def add_onnx_export(bundle_dir: str | Path, check_images: Sequence[str | Path] = ()) -> dict:
    """Give a verified bundle that lacks one an ONNX export (imported bundles from older code);
    rewrites its manifest. Returns the manifest's ``onnx`` record."""
    bundle_dir = Path(bundle_dir)
    with open_bundle(bundle_dir) as opened:
        record = opened.manifest.get("onnx") or {}
        if record.get("file") and opened.file(ONNX_FILE) is not None:
            return record
        loaded = with_keras_model(opened)
    (bundle_dir / ONNX_FILE).unlink(missing_ok=True)
    manifest = dict(loaded.manifest)
    recipe = Preprocessing.from_manifest(manifest["preprocessing"], int(manifest["input_size"]))
    manifest["onnx"] = _export_onnx(loaded.model, bundle_dir, recipe, check_images)
    write_manifest(bundle_dir, manifest)
    return manifest["onnx"]


def load_bundle(path: str | Path) -> Bundle:
    """Verify a bundle directory or ``.zip`` and load its Keras model."""
    with open_bundle(path) as opened:
        loaded = with_keras_model(opened)
    # The model lives in memory now; point at what the caller gave, not a deleted scratch copy.
    return loaded.with_model(loaded.model, Path(path))


def with_keras_model(opened: Bundle) -> Bundle:
    """The bundle with its Keras model loaded (its files ``open_bundle`` has just verified)."""
    manifest = opened.manifest
    model_file = manifest.get("model_file", MODEL_FILE)
    model_path = opened.file(model_file)
    if model_path is None:
        raise BundleError(f"bundle {opened.path}: manifest does not list model file {model_file}")
    try:
        model = keras.saving.load_model(model_path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for corrupt or unsafe files
        raise BundleError(f"bundle {opened.path}: cannot load {model_file}: {exc}") from exc
    _check_model_matches(model, manifest, str(opened.path))
    return opened.with_model(model)


def _check_model_matches(model: keras.Model, manifest: dict[str, Any], where: str) -> None:
    classes = int(model.output_shape[-1])
    expected = len(manifest["class_names"])
    if classes != expected:
        raise BundleError(
            f"bundle {where}: model outputs {classes} classes, manifest lists {expected}"
        )
    height, width = model.input_shape[1:3]
    size = manifest["input_size"]
    if (height, width) != (size, size) and (height, width) != (None, None):
        raise BundleError(
            f"bundle {where}: model input is {height}x{width}, manifest says {size}x{size}"
        )


def _read_source_model(
    json_path: Path | None, weights_path: Path | None, model_path: Path | None
) -> keras.Model:
    if model_path is not None:
        if json_path is not None or weights_path is not None:
            raise BundleError("give either --model or --json with --weights, not both")
        if not model_path.is_file():
            raise BundleError(f"model file not found: {model_path}")
        legacy = legacy_h5_config(model_path) if model_path.suffix.lower() == ".h5" else None
        if legacy is not None:
            return load_legacy_h5(model_path, legacy)
        try:
            return keras.saving.load_model(model_path, safe_mode=True, compile=False)
        except Exception as exc:
            raise BundleError(f"cannot load model file {model_path}: {exc}") from exc
    if json_path is None or weights_path is None:
        raise BundleError("importing needs --model FILE, or both --json FILE and --weights FILE")
    for required in (json_path, weights_path):
        if not required.is_file():
            raise BundleError(f"file not found: {required}")
    text = json_path.read_text(encoding="utf-8")
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise BundleError(f"{json_path} is not JSON: {exc}") from exc
    if is_legacy_config(config):
        # The paper's deployment files: written by Keras 2, read through the legacy loader.
        return load_legacy_pair(config, weights_path)
    try:
        model = keras.models.model_from_json(text)
    except Exception as exc:
        raise BundleError(f"cannot build a model from JSON {json_path}: {exc}") from exc
    try:
        model.load_weights(weights_path)
    except Exception as exc:
        raise BundleError(
            f"weights {weights_path} do not fit the model in {json_path}: {exc}"
        ) from exc
    return model


def _wrap_input_scaling(model: keras.Model, input_scale: str, input_size: int) -> keras.Model:
    if input_scale == "0-255":
        return model
    inputs = keras.Input((input_size, input_size, 3), name="image")
    if input_scale == "0-1":
        scaled = keras.layers.Rescaling(1.0 / 255.0, name="to_unit_range")(inputs)
    else:
        scaled = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_symmetric_range")(inputs)
    return keras.Model(inputs, model(scaled), name=f"imported_{model.name}")


def import_model_files(
    out_dir: str | Path,
    *,
    architecture: str,
    json_path: str | Path | None = None,
    weights_path: str | Path | None = None,
    model_path: str | Path | None = None,
    input_scale: str = "0-255",
    class_names: Sequence[str] = CLASSES,
    parent: str | None = None,
    check_images: Sequence[str | Path] = (),
) -> Path:
    """Turn a Keras JSON + H5 weights pair, or a ``.keras`` / ``.h5`` model, into a bundle.

    ``input_scale`` says what pixel range the source model was trained on; it is wrapped with a
    Rescaling layer so that, like every bundle, it takes raw 0..255 pixels.
    """
    if input_scale not in INPUT_SCALINGS:
        raise BundleError(
            f"unknown input scale {input_scale!r}; choose one of {', '.join(INPUT_SCALINGS)}"
        )
    source = _read_source_model(
        Path(json_path) if json_path else None,
        Path(weights_path) if weights_path else None,
        Path(model_path) if model_path else None,
    )
    output_shape = source.output_shape
    classes = int(output_shape[-1])
    if len(output_shape) != 2 or classes != len(class_names):
        raise BundleError(
            f"imported model outputs shape {tuple(output_shape)}, expected (None, "
            f"{len(class_names)}) for the classes {', '.join(class_names)}"
        )
    input_shape = source.input_shape
    if len(input_shape) != 4 or input_shape[1] is None or input_shape[1] != input_shape[2]:
        raise BundleError(f"imported model needs a square image input, found {input_shape}")
    input_size = int(input_shape[1])
    model = _wrap_input_scaling(source, input_scale, input_size)
    description = Preprocessing(input_size).describe(INPUT_SCALINGS[input_scale])
    sources = [str(p) for p in (json_path, weights_path, model_path) if p]
    return save_bundle(
        model,
        out_dir,
        architecture=architecture,
        input_size=input_size,
        class_names=class_names,
        preprocessing=description,
        training={"imported_from": [os.path.basename(s) for s in sources]},
        parent=parent,
        check_images=check_images,
    )
