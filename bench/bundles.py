"""The model bundles the benchmark and reliability scripts serve, each made once under var/bench/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PHOTOS = SHARED / "data" / "fullsize-samples" / "images"
WEIGHTS = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
MOBILENET = ROOT / "var" / "bench" / "bundle"
TINY = ROOT / "var" / "bench" / "tiny-basic-cnn"


def mobilenet_bundle() -> Path:
    """MobileNetV2 224 px, ImageNet backbone, untrained head; its ONNX export checked on photos.
    Needs ../shared (the weights and photos): the served computation is a trained one's, the
    answers are not."""
    if (MOBILENET / "manifest.json").is_file():
        return MOBILENET
    from ml.architecture_defaults import architecture_defaults
    from ml.architectures import build_mobilenet_v2
    from ml.bundle.keras_io import save_bundle
    from ml.preprocess import Preprocessing

    print("making the benchmark bundle (MobileNetV2, ImageNet backbone)…", flush=True)
    model = build_mobilenet_v2(input_size=224, weights=str(WEIGHTS))
    normalisation = architecture_defaults("mobilenet_v2").normalisation
    return save_bundle(
        model,
        MOBILENET,
        architecture="mobilenet_v2",
        input_size=224,
        preprocessing=Preprocessing(224).describe(normalisation),
        check_images=sorted(PHOTOS.iterdir())[:8],
        name="bench-mobilenet_v2",
    )


def tiny_bundle() -> Path:
    """The paper's basic CNN at 32 px, one epoch on generated photos: made in seconds, needs
    nothing beside the checkout."""
    made = TINY / "bundle"
    if (made / "manifest.json").is_file():
        return made
    from ml.train import TrainConfig, train
    from tests.ml.synthetic import write_tiny_dataset

    data = write_tiny_dataset(TINY / "data", per_class=6, size=32, seed=0)
    config = TrainConfig(
        data_dir=data, out_dir=TINY, architecture="basic_cnn", image_size=32, epochs=1, batch_size=8
    )
    return train(config, progress=False)


def best_available_bundle() -> tuple[Path, str]:
    """MobileNetV2 where ../shared has its weights, else the tiny CNN; and which it is."""
    if WEIGHTS.is_file() and PHOTOS.is_dir():
        return mobilenet_bundle(), "MobileNetV2 224 px (ImageNet backbone, untrained head)"
    return tiny_bundle(), "tiny basic CNN 32 px (../shared absent: no MobileNetV2 weights)"
