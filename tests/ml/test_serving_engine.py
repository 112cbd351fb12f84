"""The serving engine: ONNX export checked and used, Keras fallback, preprocessing owned by the bundle."""

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.architectures import build_basic_cnn
from ml.bundle import MANIFEST_NAME, ONNX_FILE, BundleError, read_manifest, write_manifest
from ml.bundle.keras_io import add_onnx_export, load_bundle, save_bundle
from ml.predict import Predictor
from ml.preprocess import Preprocessing, decode_image, resize_image
from tests.processes import modules_loaded

SIZE = 32


def _bundle(tmp_path: Path, check_images=()) -> Path:
    model = build_basic_cnn(7, SIZE)
    return save_bundle(
        model, tmp_path / "bundle", architecture="basic_cnn", input_size=SIZE,
        preprocessing=Preprocessing(SIZE).describe("none"), check_images=check_images,
    )  # fmt: skip


def _rewrite_manifest(bundle: Path, **changes) -> None:
    manifest = read_manifest(bundle, verify=False)
    manifest.update(changes)
    write_manifest(bundle, manifest)


def test_onnx_export_agrees_with_keras_on_real_photos(tmp_path, sample_photos) -> None:
    photos = list(sample_photos.values())
    bundle = _bundle(tmp_path, check_images=photos)
    record = read_manifest(bundle)["onnx"]
    assert record["file"] == ONNX_FILE
    assert record["checked_on"] == f"{len(photos)} real images"
    assert record["max_abs_diff"] <= 1e-4
    assert record["same_top_class"] is True

    served = Predictor.from_bundle(bundle)
    assert served.engine_name == "onnxruntime-cpu"
    blobs = [path.read_bytes() for path in photos]
    keras_model = load_bundle(bundle).model
    batch = np.stack([Preprocessing(SIZE).from_bytes(blob) for blob in blobs])
    expected = np.asarray(keras_model(batch, training=False), dtype=np.float64)
    got = served.predict_bytes(blobs)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()


@pytest.mark.parametrize("damage", ["missing", "corrupt", "unloadable"])
def test_keras_serves_when_the_onnx_file_is_missing_or_corrupt(tmp_path, damage) -> None:
    bundle = _bundle(tmp_path)
    reference = Predictor.from_bundle(bundle)
    assert reference.engine_name == "onnxruntime-cpu"
    onnx_path = bundle / ONNX_FILE
    if damage == "missing":
        onnx_path.unlink()
    elif damage == "corrupt":
        onnx_path.write_bytes(onnx_path.read_bytes()[:100])
    else:
        # Listed with a matching hash, yet not a graph ONNX Runtime can load.
        onnx_path.write_bytes(b"not an onnx graph")
        _rewrite_manifest(bundle)
    fallback = Predictor.from_bundle(bundle)
    assert fallback.engine_name == "keras-compiled"
    image = np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    np.testing.assert_allclose(
        fallback.predict_arrays([image]), reference.predict_arrays([image]), atol=1e-5
    )


def test_a_failed_onnx_check_leaves_no_file_and_keras_serves(tmp_path) -> None:
    bundle = _bundle(tmp_path)
    (bundle / ONNX_FILE).unlink()
    _rewrite_manifest(bundle, onnx={"file": None, "error": "check failed: max abs difference 0.3"})
    assert ONNX_FILE not in read_manifest(bundle)["files"]
    assert Predictor.from_bundle(bundle).engine_name == "keras-compiled"


def test_an_older_bundle_gets_its_onnx_export_on_import(tmp_path) -> None:
    bundle = _bundle(tmp_path)
    (bundle / ONNX_FILE).unlink()
    _rewrite_manifest(bundle, onnx=None)
    record = add_onnx_export(bundle)
    assert record["file"] == ONNX_FILE
    assert record["checked_on"] == "8 synthetic images"
    assert ONNX_FILE in read_manifest(bundle)["files"]  # verified: the hash was recorded
    assert Predictor.from_bundle(bundle).engine_name == "onnxruntime-cpu"


@pytest.mark.parametrize(
    ("resize_changes", "message"),
    [
        ({"method": "nearest"}, "resize method 'nearest'"),
        ({"op": "cv2.resize"}, "resize op 'cv2.resize'"),
        ({"keep_aspect_ratio": True}, "resize keep_aspect_ratio True"),
        ({"size": [64, 64]}, "resize size [64, 64]"),
    ],
)
def test_a_bundle_with_preprocessing_the_code_cannot_reproduce_is_refused(
    tmp_path, resize_changes, message
) -> None:
    bundle = _bundle(tmp_path)
    preprocessing = read_manifest(bundle)["preprocessing"]
    preprocessing["resize"].update(resize_changes)
    _rewrite_manifest(bundle, preprocessing=preprocessing)
    with pytest.raises(BundleError, match=re.escape(message)):
        Predictor.from_bundle(bundle)


def test_a_bundle_whose_model_expects_other_input_is_refused(tmp_path) -> None:
    bundle = _bundle(tmp_path)
    preprocessing = read_manifest(bundle)["preprocessing"]
    preprocessing["input"] = "float32 RGB, 0..1"
    _rewrite_manifest(bundle, preprocessing=preprocessing)
    with pytest.raises(BundleError, match=re.escape("must take float32 RGB, 0..255")):
        Predictor.from_bundle(bundle)


def test_bundles_that_name_tensorflow_resize_are_still_served(tmp_path) -> None:
    # Written before resizing moved to Pillow: same kernel, same numbers (next test).
    bundle = _bundle(tmp_path)
    preprocessing = read_manifest(bundle)["preprocessing"]
    preprocessing["resize"]["op"] = "tf.image.resize"
    _rewrite_manifest(bundle, preprocessing=preprocessing)
    assert Predictor.from_bundle(bundle).input_size == SIZE


def test_pillow_resize_matches_tensorflow_bilinear_antialias_on_real_photos(sample_photos) -> None:
    import tensorflow as tf

    for path in sample_photos.values():
        image = decode_image(path.read_bytes())
        for size in (224, 96, 700):
            expected = tf.image.resize(
                tf.cast(image, tf.float32), (size, size), method="bilinear", antialias=True
            )
            expected = np.clip(expected.numpy(), 0, 255)
            assert np.abs(resize_image(image, size) - expected).max() < 0.01


def test_large_jpegs_are_decoded_at_reduced_scale_but_never_below_the_input_size() -> None:
    pixels = np.random.default_rng(0).integers(0, 255, (1200, 1600, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    assert decode_image(buffer.getvalue(), at_least=224).shape == (300, 400, 3)
    assert decode_image(buffer.getvalue(), at_least=400).shape == (600, 800, 3)
    assert decode_image(buffer.getvalue()).shape == (1200, 1600, 3)
    assert Preprocessing(224).from_bytes(buffer.getvalue()).shape == (224, 224, 3)


def test_manifest_records_the_onnx_check(tmp_path) -> None:
    bundle = _bundle(tmp_path)
    text = json.loads((bundle / MANIFEST_NAME).read_text())
    assert text["onnx"]["max_abs_diff_allowed"] == 1e-4
    assert text["preprocessing"]["resize"]["op"] == "pillow-float32"


def test_serving_the_onnx_export_never_loads_tensorflow(tiny_bundle) -> None:
    # An inference child serving the checked export needs ONNX Runtime only; TensorFlow would
    # cost it seconds to start and hundreds of megabytes.
    statements = (
        "from ml.predict import Predictor; "
        f"p = Predictor.from_bundle({str(tiny_bundle)!r}); p.warm_up(); "
        "assert p.engine_name == 'onnxruntime-cpu', p.engine_name"
    )
    assert modules_loaded(statements, ("tensorflow", "keras")) == []
