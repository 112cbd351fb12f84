"""Find ImageNet weights for the transfer-learning architectures.

Lookup order, first hit wins:

1. ``weights_dir`` argument, else the ``PRETRAINED_WEIGHTS_DIR`` environment variable;
2. Keras' own cache (``$KERAS_HOME/models`` or ``~/.keras/models``);
3. a download through Keras (needs internet).

Files keep Keras' own names, so a file copied from any Keras cache works unchanged.
When nothing works, ``PretrainedWeightsUnavailable`` says which file to put where.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

ENV_VAR = "PRETRAINED_WEIGHTS_DIR"

WEIGHT_FILES: dict[str, str] = {
    "mobilenet_v2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
    "densenet169": "densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
_ORIGINS: dict[str, str] = {
    "mobilenet_v2": "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/",
    "densenet169": "https://storage.googleapis.com/tensorflow/keras-applications/densenet/",
}
# Sizes MobileNetV2 ImageNet weights were published for; others load (conv weights do not
# depend on the input size) but the features are less well matched.
MOBILENET_V2_TRAINED_SIZES = (96, 128, 160, 192, 224)
MIN_INPUT_SIZE = 32


class PretrainedWeightsUnavailable(RuntimeError):
    """No ImageNet weights file could be found or downloaded."""


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def resolve_weights(
    architecture: str,
    weights_dir: str | Path | None = None,
    *,
    allow_download: bool = True,
) -> Path:
    """Return the local path of ``architecture``'s ImageNet no-top weights file."""
    if architecture not in WEIGHT_FILES:
        raise PretrainedWeightsUnavailable(
            f"architecture {architecture!r} has no ImageNet weights; "
            f"known: {', '.join(sorted(WEIGHT_FILES))}"
        )
    file_name = WEIGHT_FILES[architecture]
    configured = weights_dir if weights_dir is not None else os.environ.get(ENV_VAR)
    candidates = [Path(configured) / file_name] if configured else []
    candidates.append(keras_cache_dir() / file_name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if allow_download:
        try:
            return Path(_download(file_name, _ORIGINS[architecture] + file_name))
        except Exception as exc:  # any failure (offline, proxy, bad file) means "not available"
            reason = f"download failed ({type(exc).__name__}: {exc})"
    else:
        reason = "downloads disabled"
    looked = ", ".join(str(c.parent) for c in candidates)
    raise PretrainedWeightsUnavailable(
        f"ImageNet weights for {architecture} not found: need file {file_name}. "
        f"Looked in {looked}; {reason}. Put the file in the directory named by "
        f"{ENV_VAR} (or pass --weights-dir DIR), or train from scratch with --no-pretrained."
    )


def _download(file_name: str, origin: str) -> str:
    import keras

    return keras.utils.get_file(file_name, origin, cache_subdir="models")


def check_input_size(architecture: str, input_size: int, *, pretrained: bool = True) -> None:
    """Refuse sizes the backbone cannot take; warn where ImageNet weights fit less well."""
    if input_size < MIN_INPUT_SIZE:
        raise ValueError(f"{architecture} needs an input size of at least {MIN_INPUT_SIZE}px")
    if (
        pretrained
        and architecture == "mobilenet_v2"
        and input_size not in MOBILENET_V2_TRAINED_SIZES
    ):
        warnings.warn(
            f"MobileNetV2 ImageNet weights were trained at 224px (also published for "
            f"{MOBILENET_V2_TRAINED_SIZES}); loading the 224px weights at {input_size}px",
            stacklevel=2,
        )
