"""Model bundles: a folder (or its zip) holding ``manifest.json`` and the files it lists.

The manifest records the sha256 of every other file, so a bundle whose files were changed,
removed or added is refused before any model file is deserialised. This package owns the
format: ``manifest`` (names, writing, reading, verifying), ``archive`` (packing, safe
unpacking, opening as a ``Bundle``) and ``keras_io`` (saving, loading and importing Keras
models). Everything importable from here is pure standard library, because the web process
checks bundles and must not pull in TensorFlow; only ``ml.bundle.keras_io`` imports Keras.
"""

from ml.bundle.archive import Bundle, open_bundle, pack_bundle, unpack_bundle
from ml.bundle.manifest import (
    MANIFEST_NAME,
    METRICS_FILE,
    MODEL_FILE,
    ONNX_FILE,
    SPLIT_FILE,
    TRAINING_FILE,
    BundleError,
    file_sha256,
    manifest_sha256,
    read_manifest,
    write_manifest,
)

__all__ = [
    "MANIFEST_NAME",
    "METRICS_FILE",
    "MODEL_FILE",
    "ONNX_FILE",
    "SPLIT_FILE",
    "TRAINING_FILE",
    "Bundle",
    "BundleError",
    "file_sha256",
    "manifest_sha256",
    "open_bundle",
    "pack_bundle",
    "read_manifest",
    "unpack_bundle",
    "write_manifest",
]
