"""The architectures a run can train, and the training defaults the source paper used for each.

The one registry of architecture names: pure Python, so the web process validates a requested
run and lists the choices without Keras. ``ml.architectures`` adds the builders, keyed by the
same names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchitectureDefaults:
    """What a run of one architecture uses where its config leaves a value unset."""

    name: str
    # A transfer model fine-tunes an ImageNet backbone in two phases; the basic CNN trains whole.
    transfer: bool
    input_size: int
    batch_size: int
    optimizer: str  # "sgd" (momentum 0.9) or "adam"
    learning_rate: float
    head_epochs: int
    fine_tune_epochs: int
    fine_tune_learning_rate: float
    fine_tune_layers: int
    normalisation: str  # as the bundle's manifest describes it
    # A learning-rate range test before phase 1 unless the run says otherwise; the paper did so
    # for its DenseNet169 transfer model.
    find_learning_rate: bool = False


ARCHITECTURE_DEFAULTS: dict[str, ArchitectureDefaults] = {
    spec.name: spec
    for spec in (
        ArchitectureDefaults(
            name="basic_cnn",
            transfer=False,
            input_size=224,
            batch_size=16,
            optimizer="sgd",
            learning_rate=0.01,
            head_epochs=50,
            fine_tune_epochs=0,
            fine_tune_learning_rate=0.0,
            fine_tune_layers=0,
            normalisation="x / 255 (Rescaling layer inside the model)",
        ),
        ArchitectureDefaults(
            name="mobilenet_v2",
            transfer=True,
            input_size=224,
            batch_size=32,
            optimizer="adam",
            learning_rate=1e-3,
            head_epochs=30,
            fine_tune_epochs=10,
            fine_tune_learning_rate=1e-5,
            fine_tune_layers=40,
            normalisation="x / 127.5 - 1 (Rescaling layer inside the model)",
        ),
        ArchitectureDefaults(
            name="densenet169",
            transfer=True,
            input_size=224,
            batch_size=32,
            optimizer="adam",
            learning_rate=1e-3,
            head_epochs=20,
            fine_tune_epochs=10,
            fine_tune_learning_rate=1e-5,
            fine_tune_layers=60,
            normalisation="ImageNet mean/std on 0..255 input (Normalization layer in the model)",
            find_learning_rate=True,
        ),
    )
}

ARCHITECTURE_NAMES: tuple[str, ...] = tuple(ARCHITECTURE_DEFAULTS)


def architecture_defaults(name: str) -> ArchitectureDefaults:
    """The defaults of ``name``; ``ValueError`` naming the choices for an unknown one."""
    try:
        return ARCHITECTURE_DEFAULTS[name]
    except KeyError:
        raise ValueError(
            f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURE_NAMES)}"
        ) from None
