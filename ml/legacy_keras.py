"""Read models written by Keras 2 (tf.keras): the paper's model JSON + H5 weights, or an ``.h5``.

Keras 3's ``model_from_json`` only understands configs written by Keras 3 (every object names
its module). Configs written by Keras 2 are understood by Keras 3's loader for legacy ``.h5``
model files, after two repairs (see ``keras2_config``). So the JSON + weights pair is joined
into one such file (the JSON as its ``model_config`` attribute, the weights as its
``model_weights`` group, which has the same layout as a ``save_weights`` file), a Keras 2
``.h5`` model gets the repaired config, and both load through the public
``keras.saving.load_model`` in safe mode, which refuses Lambda layers carrying Python code.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ml.bundle import BundleError

# Arguments Keras 2 wrote that Keras 3 rejects, with the only value that means the same as
# leaving them out: DepthwiseConv2D inherited `groups` from Conv2D (MobileNetV2 has 17 of them).
_DROPPED_ARGUMENTS: dict[str, dict[str, Any]] = {"DepthwiseConv2D": {"groups": 1}}


def is_legacy_config(config: Any) -> bool:
    """True for a model config written by Keras 1/2 (tf.keras), False for Keras 3's."""
    if not isinstance(config, dict):
        return False
    version = str(config.get("keras_version", ""))
    return version.startswith(("1.", "2.")) or "module" not in config


def keras2_config(node: Any) -> Any:
    """A Keras 2 config in the form Keras 3's legacy loader accepts.

    1. tf.keras 2.13+ adds ``module`` and ``registered_name`` to every object in ``to_json()``;
       Keras 3 then treats the object as a Keras 3 one and rejects Keras 2 arguments such as
       ``batch_input_shape``. They are removed (older Keras 2 never wrote them).
    2. Arguments in ``_DROPPED_ARGUMENTS`` are removed where they hold their neutral value.
    """
    if isinstance(node, list):
        return [keras2_config(value) for value in node]
    if not isinstance(node, dict):
        return node
    repaired = {
        key: keras2_config(value)
        for key, value in node.items()
        if key not in ("module", "registered_name")
    }
    if isinstance(repaired.get("layers"), list) and "input_layers" in repaired:
        _renumber_nested_model_nodes(repaired["layers"])
    dropped = _DROPPED_ARGUMENTS.get(str(repaired.get("class_name")), {})
    layer_config = repaired.get("config")
    if dropped and isinstance(layer_config, dict):
        for argument, neutral in dropped.items():
            if layer_config.get(argument) == neutral:
                del layer_config[argument]
    return repaired


_MODEL_CLASSES = ("Functional", "Model", "Sequential")


def _renumber_nested_model_nodes(layers: list[Any]) -> None:
    """Point calls of a nested model at the node Keras 3 creates for them.

    Keras 2 gave a model used as a layer a node of its own first, so the first call of, say, a
    MobileNetV2 backbone inside the paper's model is its node 1; Keras 3's loader numbers that
    call 0.
    """
    nested = {
        layer.get("name")
        for layer in layers
        if isinstance(layer, dict) and layer.get("class_name") in _MODEL_CLASSES
    }
    for layer in layers:
        for node in layer.get("inbound_nodes", []) if isinstance(layer, dict) else []:
            for reference in node if isinstance(node, list) else []:
                if _is_call_of(reference, nested) and reference[1] > 0:
                    reference[1] -= 1


def _is_call_of(reference: Any, names: set[Any]) -> bool:
    """True for a Keras 2 inbound reference ``[layer, node, tensor, kwargs]`` to one of names."""
    return (
        isinstance(reference, list)
        and len(reference) >= 3
        and reference[0] in names
        and isinstance(reference[1], int)
    )


def _model_config(config: dict[str, Any]) -> str:
    if not {"class_name", "config"} <= set(config):
        raise BundleError("the model config has no class_name/config: not a Keras model")
    return json.dumps(
        keras2_config({"class_name": config["class_name"], "config": config["config"]})
    )


def _load(path: Path, what: str) -> Any:
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        raise BundleError(f"cannot load {what}: {exc}") from exc


def load_legacy_pair(config: dict[str, Any], weights_path: Path) -> Any:
    """Build and fill the model described by a Keras 2 JSON config from an H5 weights file."""
    import h5py

    with tempfile.TemporaryDirectory(prefix="skinsight-import-") as scratch:
        joined = Path(scratch) / "model.h5"
        try:
            with h5py.File(weights_path, "r") as source, h5py.File(joined, "w") as target:
                if "layer_names" not in source.attrs:
                    raise BundleError(
                        f"{weights_path} is not in the HDF5 layout Keras 2 writes with "
                        "model.save_weights('weights.h5') (it has no layer_names attribute); "
                        "a '.weights.h5' file from a newer Keras needs the model JSON written "
                        "by that Keras, or import the whole model with --model"
                    )
                target.attrs["model_config"] = _model_config(config)
                target.attrs["keras_version"] = str(config.get("keras_version", "2"))
                target.attrs["backend"] = str(config.get("backend", "tensorflow"))
                weights = target.create_group("model_weights")
                for key, value in source.attrs.items():
                    weights.attrs[key] = value
                for name in source:
                    source.copy(source[name], weights, name=name)
        except OSError as exc:
            raise BundleError(f"cannot read {weights_path} as an HDF5 weights file: {exc}") from exc
        return _load(joined, f"the Keras 2 model JSON with the weights in {weights_path}")


def legacy_h5_config(model_path: Path) -> dict[str, Any] | None:
    """The model config of a Keras 2 ``.h5`` model file, or None when it is not one."""
    import h5py

    try:
        with h5py.File(model_path, "r") as handle:
            raw = handle.attrs.get("model_config")
            version = handle.attrs.get("keras_version", "")
    except OSError:
        return None
    if raw is None:
        return None
    raw = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    version = version.decode("utf-8") if isinstance(version, bytes) else str(version)
    try:
        config = json.loads(raw)
    except ValueError:
        return None  # not a readable Keras config; Keras' own loader reports the file
    if version.startswith(("1.", "2.")):
        config.setdefault("keras_version", version)
    return config if is_legacy_config(config) else None


def load_legacy_h5(model_path: Path, config: dict[str, Any]) -> Any:
    """Load a Keras 2 ``.h5`` model from a copy whose config has been repaired."""
    import h5py

    with tempfile.TemporaryDirectory(prefix="skinsight-import-") as scratch:
        copy = Path(scratch) / "model.h5"
        shutil.copyfile(model_path, copy)
        with h5py.File(copy, "r+") as handle:
            handle.attrs["model_config"] = _model_config(config)
        return _load(copy, f"Keras 2 model file {model_path}")
