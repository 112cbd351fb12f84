"""What a training run depends on, in one home: the config, its checks, the named recipes and the options.

The command line (`python -m ml train`), the benchmark (`bench/train_ham10000`) and the portal's training task
all build a ``TrainConfig`` through ``TrainConfig.from_options``, from a preset and the options a person set.
Pure Python: the web process validates a requested run with it before anything is queued.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ml.architecture_defaults import ARCHITECTURE_NAMES, architecture_defaults
from ml.class_weights import CLASS_WEIGHTINGS, SAMPLINGS
from ml.preprocess import FITS, SHADES_OF_GRAY
from ml.tta import VIEW_SETS

PRESETS = ("quick", "standard")
COLOUR_CONSTANCY = ("none", SHADES_OF_GRAY)
TOP_CLASS_RULES = ("most_probable", "balanced")
LOSSES = ("crossentropy", "focal", "logit_adjusted")
SCHEDULES = ("plateau", "cosine")  # built by ml.schedules


class ConfigError(ValueError):
    """A training option that no run could use; the message names the option."""


@dataclass(frozen=True)
class TrainConfig:
    """What a person asked a training run for; ``None`` means the architecture's default.

    ``resolve()`` turns it into the ``ResolvedConfig`` a run uses and its bundle records.
    """

    data_dir: str | Path
    out_dir: str | Path
    architecture: str = "basic_cnn"
    image_size: int | None = None
    epochs: int | None = None  # per phase
    head_epochs: int | None = None  # phase 1 only; overrides `epochs`
    fine_tune_epochs: int | None = None  # phase 2 only; overrides `epochs`
    learning_rate: float | None = None
    fine_tune_learning_rate: float | None = None
    class_weighting: str = "balanced"
    batch_size: int | None = None
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    no_pretrained: bool = False
    weights_dir: str | Path | None = None
    fine_tune_layers: int | None = None
    limit_per_class: int | None = None  # max images per class, for quick runs
    cache: bool | str = True
    parent: str | None = None
    # Learning-rate range test before phase 1; None: the architecture's default, skipped when
    # `learning_rate` is given because its suggestion would not be used.
    find_lr: bool | None = None
    # "plateau" (the paper's ReduceLROnPlateau) or "cosine" (warm-up, then cosine decay).
    schedule: str = "plateau"
    # Wall-clock cap on the training phases: an epoch that would end past it is not started,
    # and phase 2 is skipped once the cap is reached. None: no cap.
    max_minutes: float | None = None
    # Regularisers, all off by default (the paper used none of them): label smoothing of the
    # training targets, decoupled weight decay, and colour jitter in the augmentation.
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    colour_jitter: float = 0.0
    # float16 compute with float32 weights: on a GPU, twice the throughput; the bundle is saved in
    # float32 either way, so serving never depends on it.
    mixed_precision: bool = False
    # Framing, in training and serving alike: the whole photo stretched to a square ("stretch", the
    # source paper's) or its centred square ("centre_crop"); and random resized crops in training.
    fit: str = "stretch"
    random_crops: bool = False
    # Colour constancy on every input, in training and serving: "none" or "shades_of_gray".
    colour_constancy: str = "none"
    # Test-time views the bundle is scored and served with (ml.tta.VIEW_SETS).
    tta: str = "none"
    # The class a result names: "most_probable", or "balanced" (the prior shift with the best
    # balanced accuracy on validation); probabilities and referral are the calibrated ones either way.
    top_class: str = "most_probable"
    # "crossentropy", "focal" (gamma 2) or "logit_adjusted" (the training class frequencies added to
    # the logits in the loss only, Menon et al. 2021, so the model itself does not learn the imbalance).
    loss: str = "crossentropy"
    # How training draws photos: "shuffle" (as the data holds them), or class-resampled "sqrt" or
    # "balanced" (ml.class_weights.SAMPLINGS); a resampled run weighs its loss evenly.
    sampling: str = "shuffle"
    # Labelled photos from other sources (labels.csv layout): never trained on; measured beside the
    # held-out split, and the referral threshold must hold its melanoma sensitivity there too.
    external_dir: str | Path | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any], **overrides: Any) -> TrainConfig:
        """A config from option values keyed by field name; keys that are not fields are ignored."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in {**options, **overrides}.items() if k in names}
        return cls(**values)

    def as_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}

    def validate(self) -> TrainConfig:
        """Raise ``ConfigError`` naming the first option that no run could use; return self."""
        try:
            self._check()
        except ConfigError:
            raise
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        return self

    def resolve(self) -> ResolvedConfig:
        """The run's one concrete config: checked, and every unset value the architecture's default.

        ``epochs`` sets both phases where a phase has no count of its own; a model without a
        backbone has no phase 2 and no pretrained weights; the range test runs by the
        architecture's default unless a learning rate was given, whose value it would not use.
        """
        self.validate()
        arch = architecture_defaults(self.architecture)
        find_lr = (
            self.find_lr
            if self.find_lr is not None
            else arch.find_learning_rate and self.learning_rate is None
        )
        fine_tune_epochs = _first_set(self.fine_tune_epochs, self.epochs, arch.fine_tune_epochs)
        resolved = dict(
            data_dir=str(self.data_dir),
            out_dir=str(self.out_dir),
            weights_dir=None if self.weights_dir is None else str(self.weights_dir),
            external_dir=None if self.external_dir is None else str(self.external_dir),
            transfer=arch.transfer,
            pretrained=arch.transfer and not self.no_pretrained,
            optimizer=arch.optimizer,
            normalisation=arch.normalisation,
            image_size=self.image_size or arch.input_size,
            batch_size=self.batch_size or arch.batch_size,
            head_epochs=_first_set(self.head_epochs, self.epochs, arch.head_epochs),
            fine_tune_epochs=fine_tune_epochs if arch.transfer else 0,
            learning_rate=self.learning_rate or arch.learning_rate,
            find_lr=find_lr,
            adopt_suggested_rate=find_lr and self.learning_rate is None,
            fine_tune_learning_rate=self.fine_tune_learning_rate or arch.fine_tune_learning_rate,
            fine_tune_layers=self.fine_tune_layers or arch.fine_tune_layers,
        )
        # Every other option is copied as asked.
        copied = {
            f.name: getattr(self, f.name) for f in fields(ResolvedConfig) if f.name not in resolved
        }
        return ResolvedConfig(**copied, **resolved)

    def _check(self) -> None:
        architecture_defaults(self.architecture)
        for name in ("image_size", "batch_size", "limit_per_class", "fine_tune_layers"):
            _check_whole(name, getattr(self, name), minimum=1)
        for name in ("epochs", "head_epochs", "fine_tune_epochs"):
            _check_whole(name, getattr(self, name), minimum=0)
        for name in ("learning_rate", "fine_tune_learning_rate", "max_minutes"):
            value = getattr(self, name)
            if value is not None and not (_finite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value!r}")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ValueError(
                f"class weighting must be one of {', '.join(CLASS_WEIGHTINGS)}, "
                f"not {self.class_weighting!r}"
            )
        check_schedule(self.schedule)
        for name, allowed in (
            ("fit", FITS),
            ("colour_constancy", COLOUR_CONSTANCY),
            ("tta", tuple(VIEW_SETS)),
            ("top_class", TOP_CLASS_RULES),
            ("loss", LOSSES),
            ("sampling", SAMPLINGS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}"
                )
        if self.loss == "logit_adjusted" and self.class_weighting != "none":
            raise ValueError(
                "the logit-adjusted loss corrects for class frequencies itself: "
                "use it with class weighting none"
            )
        if self.sampling != "shuffle" and (
            self.class_weighting != "none" or self.loss == "logit_adjusted"
        ):
            raise ValueError(
                f"{self.sampling} sampling corrects for class frequencies itself: use it with "
                "class weighting none and without the logit-adjusted loss"
            )
        check_label_smoothing(self.label_smoothing)
        check_weight_decay(self.weight_decay)
        check_colour_jitter(self.colour_jitter)
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not (_finite(value) and 0 <= value < 1):
                raise ValueError(f"{name} must be at least 0 and below 1, not {value!r}")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction and test_fraction must sum to less than 1")


@dataclass(frozen=True)
class ResolvedConfig:
    """A training run's config with nothing left to a default: what every step of ``ml.train``
    takes and what the bundle's ``training.json`` records, so a run can be read back exactly."""

    data_dir: str
    out_dir: str
    architecture: str
    transfer: bool  # an ImageNet backbone fine-tuned in two phases
    pretrained: bool  # the backbone starts from ImageNet weights
    weights_dir: str | None
    optimizer: str
    normalisation: str
    image_size: int
    batch_size: int
    head_epochs: int
    fine_tune_epochs: int  # 0: no phase 2
    learning_rate: float
    find_lr: bool  # a learning-rate range test runs before phase 1
    adopt_suggested_rate: bool  # phase 1 trains at the range test's suggestion
    fine_tune_learning_rate: float
    fine_tune_layers: int
    class_weighting: str
    seed: int
    val_fraction: float
    test_fraction: float
    limit_per_class: int | None
    cache: bool | str
    parent: str | None
    schedule: str
    max_minutes: float | None
    label_smoothing: float
    weight_decay: float
    colour_jitter: float
    mixed_precision: bool
    fit: str
    random_crops: bool
    colour_constancy: str
    tta: str
    top_class: str
    loss: str
    sampling: str
    external_dir: str | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _first_set(*values: int | None) -> int:
    """The first value that is not None (0 epochs is a real choice: skip the phase)."""
    return next(v for v in values if v is not None)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_whole(name: str, value: Any, *, minimum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, not {value!r}")


def check_label_smoothing(label_smoothing: float) -> None:
    if not (_finite(label_smoothing) and 0.0 <= label_smoothing < 1.0):
        raise ValueError(f"label smoothing must be at least 0 and below 1, not {label_smoothing}")


def check_schedule(name: str) -> str:
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {name!r}")
    return name


def check_colour_jitter(strength: float) -> None:
    if not 0.0 <= strength < 1.0:
        raise ValueError(f"colour jitter must be at least 0 and below 1, not {strength}")


def check_weight_decay(weight_decay: float) -> None:
    if not (_finite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight decay must not be negative, not {weight_decay}")


# --- named recipes ----------------------------------------------------------------------------------

# "standard" is what docs/model-card.md measured for each architecture on HAM10000 (2 CPU cores, under an
# hour); DenseNet169 has no measured recipe yet, so it keeps the paper's epochs with the cosine schedule.
# "quick" checks that a recipe and its data work end to end in minutes; its model is not for patients.
_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "standard": {
        # Measured on photos from other sources too (docs/model-card.md, R1 and row 3): the photo's
        # centred square, random resized crops, Shades of Gray, test-time flips and the balanced top
        # class; 50 minutes leaves the four-view evaluation inside the hour.
        "mobilenet_v2": {
            "image_size": 192,
            "batch_size": 32,
            "head_epochs": 2,
            "fine_tune_epochs": 20,
            "fine_tune_layers": 100,
            "fine_tune_learning_rate": 2e-4,
            "class_weighting": "sqrt",
            "schedule": "cosine",
            "max_minutes": 50.0,
            "fit": "centre_crop",
            "random_crops": True,
            "colour_constancy": "shades_of_gray",
            "tta": "flips",
            "top_class": "balanced",
        },
        "basic_cnn": {
            "image_size": 64,
            "batch_size": 16,
            "head_epochs": 40,
            "fine_tune_epochs": 0,
            "learning_rate": 0.01,
            "class_weighting": "sqrt",
            "schedule": "plateau",
            "max_minutes": 30.0,
        },
        "densenet169": {"class_weighting": "sqrt", "schedule": "cosine"},
    },
    "quick": {
        "mobilenet_v2": {
            "image_size": 128,
            "batch_size": 32,
            "head_epochs": 1,
            "fine_tune_epochs": 2,
            "fine_tune_layers": 100,
            "fine_tune_learning_rate": 2e-4,
            "class_weighting": "sqrt",
            "schedule": "cosine",
            "max_minutes": 15.0,
        },
        "basic_cnn": {
            "image_size": 64,
            "batch_size": 16,
            "head_epochs": 5,
            "fine_tune_epochs": 0,
            "learning_rate": 0.01,
            "class_weighting": "sqrt",
            "schedule": "plateau",
            "max_minutes": 15.0,
        },
        "densenet169": {
            "image_size": 128,
            "head_epochs": 1,
            "fine_tune_epochs": 1,
            "find_lr": False,
            "class_weighting": "sqrt",
            "schedule": "cosine",
            "max_minutes": 20.0,
        },
    },
}


def preset_options(preset: str, architecture: str) -> dict[str, Any]:
    """The options a named recipe sets for ``architecture`` (explicit options override them)."""
    if preset not in _PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if architecture not in ARCHITECTURE_NAMES:
        raise ConfigError(
            f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURE_NAMES)}"
        )
    return {"architecture": architecture, **_PRESETS[preset][architecture]}


# --- command-line options -----------------------------------------------------------------------------


def _number(text: str, unit: str = "") -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # "nan" and "inf" parse as floats but mean nothing here
        raise argparse.ArgumentTypeError(f"not a number{unit}: {text!r}")
    return value


def positive_minutes(text: str) -> float:
    value = _number(text, " of minutes")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 minutes, not {text}")
    return value


def fraction_below_one(text: str) -> float:
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, not {text}")
    return value


def non_negative(text: str) -> float:
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """The options that set a ``TrainConfig``; each ``dest`` is the field it sets.

    An option left out is absent from the parsed namespace (``SUPPRESS``), so a preset, and after it the
    config's own defaults, fill it: ``TrainConfig.from_options({**preset, **vars(args)})``.
    """
    for add in (
        _add_model_options,
        _add_regularisation_options,
        _add_data_options,
        _add_recipe_options,
    ):
        add(parser, argparse.SUPPRESS)


def _add_model_options(parser: argparse.ArgumentParser, unset: Any) -> None:
    """The model and its two phases: what is trained, for how long, at what rate."""
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default=unset,
        help="named recipe: standard (the one docs/model-card.md measured for the architecture) "
        "or quick (minutes, to check a set-up); explicit options override it "
        "(default: none, the architecture's paper settings)",
    )
    parser.add_argument(
        "--architecture",
        choices=ARCHITECTURE_NAMES,
        default=unset,
        help="model to train (default: mobilenet_v2, ImageNet transfer learning)",
    )
    parser.add_argument(
        "--image-size", type=int, default=unset, help="square input size in pixels (default: 224)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=unset,
        help="epochs per phase (default: the architecture's paper setting)",
    )
    parser.add_argument(
        "--head-epochs",
        type=int,
        default=unset,
        help="epochs of phase 1 (head only for transfer models); overrides --epochs",
    )
    parser.add_argument(
        "--fine-tune-epochs",
        type=int,
        default=unset,
        help="epochs of phase 2 (fine-tuning the upper backbone); 0 skips it; overrides --epochs",
    )
    parser.add_argument("--learning-rate", type=float, default=unset, help="phase-1 learning rate")
    parser.add_argument(
        "--find-lr",
        action=argparse.BooleanOptionalAction,
        default=unset,
        help="run a learning-rate range test before phase 1 and train with its suggestion "
        "(curve in OUT/report/lr_range.png); an explicit --learning-rate still wins "
        "(default: on for densenet169 unless --learning-rate is given, off otherwise)",
    )
    parser.add_argument(
        "--fine-tune-learning-rate", type=float, default=unset, help="phase-2 learning rate"
    )


def _add_regularisation_options(parser: argparse.ArgumentParser, unset: Any) -> None:
    """The schedule, the time cap and what fights overfitting and class imbalance."""
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=unset,
        help="learning-rate schedule per phase: plateau (constant, halved when validation loss "
        "stalls for 3 epochs; the paper's) or cosine (one-epoch warm-up, then cosine decay "
        "to 1%% of the rate) (default: plateau)",
    )
    parser.add_argument(
        "--max-minutes",
        type=positive_minutes,
        default=unset,
        help="wall-clock cap on training: no epoch is started that would end past it, and "
        "fine-tuning is skipped once it is reached (default: no cap)",
    )
    parser.add_argument(
        "--label-smoothing",
        type=fraction_below_one,
        default=unset,
        help="train against targets mixed with this share of a uniform distribution, so the "
        "model is not pushed to certainty on hard or mislabelled images (default: 0, off)",
    )
    parser.add_argument(
        "--weight-decay",
        type=non_negative,
        default=unset,
        help="decoupled weight decay per step, scaled by the learning rate (AdamW for Adam, "
        "SGD's own otherwise); biases and BatchNorm are not decayed (default: 0, off)",
    )
    parser.add_argument(
        "--colour-jitter",
        type=fraction_below_one,
        default=unset,
        help="strength of random brightness, contrast and saturation changes during "
        "training, e.g. 0.2; hue is never changed (default: 0, off)",
    )
    parser.add_argument(
        "--class-weighting",
        choices=CLASS_WEIGHTINGS,
        default=unset,
        help="loss weights against class imbalance: balanced (n/(k*count)), sqrt (softer), none "
        "(default: balanced)",
    )


def _add_data_options(parser: argparse.ArgumentParser, unset: Any) -> None:
    """Batches, the split, the pretrained weights and the data."""
    parser.add_argument(
        "--batch-size",
        type=int,
        default=unset,
        help="batch size (default: 16 for basic_cnn, 32 for transfer models)",
    )
    parser.add_argument("--seed", type=int, default=unset, help="seed for split, shuffling, init")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=unset,
        help="share of lesions for validation (default: 0.15)",
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=unset,
        help="share of lesions for the test split (default: 0.15)",
    )
    parser.add_argument(
        "--no-pretrained",
        action="store_true",
        default=unset,
        help="train transfer models from random weights, not ImageNet",
    )
    parser.add_argument(
        "--weights-dir",
        type=Path,
        default=unset,
        help="folder with Keras ImageNet weight files (default: "
        "$PRETRAINED_WEIGHTS_DIR, then ~/.keras/models, then download)",
    )
    parser.add_argument(
        "--fine-tune-layers",
        type=int,
        default=unset,
        help="backbone layers unfrozen in phase 2 (default: per architecture)",
    )
    parser.add_argument(
        "--limit-per-class",
        type=int,
        default=unset,
        help="use at most this many images per class (quick runs)",
    )
    parser.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        default=unset,
        help="do not cache decoded images in memory (for very large datasets)",
    )


def _add_recipe_options(parser: argparse.ArgumentParser, unset: Any) -> None:
    """Framing, colour, test-time views, the named class, the loss, sampling and the photos
    from other sources: what the bundle serves with, or how it is judged."""
    parser.add_argument(
        "--fit",
        choices=FITS,
        default=unset,
        help="how a photo becomes a square, in training and serving: stretch (the whole photo, "
        "squashed) or centre_crop (its centred square, shape kept) (default: stretch)",
    )
    parser.add_argument(
        "--random-crops",
        action=argparse.BooleanOptionalAction,
        default=unset,
        help="train on random resized crops (each side 60-110%%, shifted up to 10%%) instead of "
        "a gentle zoom, for photos framed closer or farther (default: off)",
    )
    parser.add_argument(
        "--colour-constancy",
        choices=COLOUR_CONSTANCY,
        default=unset,
        help="colour constancy on every input, in training and serving: shades_of_gray (power "
        "6) or none (default: none)",
    )
    parser.add_argument(
        "--tta",
        choices=tuple(VIEW_SETS),
        default=unset,
        help="test-time views averaged for every photo, recorded in the bundle and served: "
        "none, flips (4), dihedral (8) or flips-zoom (5) (default: none)",
    )
    parser.add_argument(
        "--top-class",
        choices=TOP_CLASS_RULES,
        default=unset,
        help="the class a result names: most_probable, or balanced (a prior shift chosen on "
        "validation for balanced accuracy) (default: most_probable)",
    )
    parser.add_argument(
        "--loss",
        choices=LOSSES,
        default=unset,
        help="crossentropy, focal (gamma 2) or logit_adjusted (with --class-weighting none) "
        "(default: crossentropy)",
    )
    parser.add_argument(
        "--sampling",
        choices=SAMPLINGS,
        default=unset,
        help="how training draws photos: shuffle (as the data holds them), sqrt or balanced "
        "(each class drawn in proportion to the square root of its count, or equally; with "
        "--class-weighting none) (default: shuffle)",
    )
    parser.add_argument(
        "--external",
        dest="external_dir",
        type=Path,
        default=unset,
        help="labelled photos from other sources (labels.csv layout), never trained on: "
        "measured beside the held-out split, and the referral threshold must hold there too",
    )
    parser.add_argument(
        "--mixed-precision",
        action=argparse.BooleanOptionalAction,
        default=unset,
        help="float16 compute with float32 weights (for GPUs; the bundle is saved in float32) "
        "(default: off)",
    )


def options_from_args(args: argparse.Namespace, **defaults: Any) -> dict[str, Any]:
    """Option values from parsed ``add_training_options`` arguments, over the named preset."""
    given = vars(args)
    architecture = given.get("architecture", defaults.get("architecture", "mobilenet_v2"))
    preset = given.get("preset")
    base = preset_options(preset, architecture) if preset else {"architecture": architecture}
    return {**defaults, **base, **given}
