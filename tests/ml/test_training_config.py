"""One home for training options: presets, checks, and the command line that sets them."""

import json
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest

from bench.train_ham10000 import parse_args, training_config
from ml.architecture_defaults import ARCHITECTURE_DEFAULTS, ARCHITECTURE_NAMES
from ml.cli import build_parser
from ml.training_config import (
    PRESETS,
    ConfigError,
    ResolvedConfig,
    TrainConfig,
    options_from_args,
    preset_options,
)
from tests.processes import modules_loaded

DOCS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks"
RECIPE_KEYS = (
    "architecture",
    "image_size",
    "batch_size",
    "head_epochs",
    "fine_tune_epochs",
    "learning_rate",
    "class_weighting",
    "schedule",
    "max_minutes",
    "loss",
    "fit",
    "random_crops",
    "colour_constancy",
    "tta",
    "top_class",
)
# The benchmark results each standard recipe was measured by.
STANDARD_RECORDS = {
    "mobilenet_v2": "train_ham10000-mobilenet_v2-r1-repeat-2026-12-03.json",
    "basic_cnn": "train_ham10000-basic_cnn.json",
}


@pytest.mark.parametrize("architecture", ARCHITECTURE_NAMES)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_is_a_valid_config(preset: str, architecture: str) -> None:
    options = preset_options(preset, architecture)
    config = TrainConfig.from_options(options, data_dir="d", out_dir="o").validate()
    assert config.architecture == architecture


@pytest.mark.parametrize("architecture", sorted(STANDARD_RECORDS))
def test_standard_preset_is_the_recipe_the_model_card_measured(architecture: str) -> None:
    recorded = json.loads((DOCS / STANDARD_RECORDS[architecture]).read_text())["config"]
    config = TrainConfig.from_options(
        preset_options("standard", architecture), data_dir="d", out_dir="o"
    )
    # Records made before a step existed ran without it: its default.
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    assert {key: getattr(config, key) for key in RECIPE_KEYS} == {
        key: recorded.get(key, defaults[key]) for key in RECIPE_KEYS
    }


def test_benchmark_and_command_line_build_the_same_config() -> None:
    bench = training_config(parse_args(["--data", "d", "--head-epochs", "3"]), Path("o"))
    args = build_parser().parse_args(
        ["train", "--data", "d", "--out", "o", "--preset", "standard", "--head-epochs", "3"]
    )
    cli = TrainConfig.from_options(options_from_args(args))
    assert bench.head_epochs == cli.head_epochs == 3
    assert bench.fine_tune_epochs == cli.fine_tune_epochs == 20
    # Both paths are the benchmark's own: ../shared's weights and external photos.
    local = {"weights_dir", "external_dir"}
    assert {k: v for k, v in bench.as_json().items() if k not in local} == {
        k: v for k, v in cli.as_json().items() if k not in local
    }


def test_explicit_options_override_the_preset() -> None:
    args = build_parser().parse_args(
        ["train", "--data", "d", "--preset", "quick", "--image-size", "96", "--no-cache"]
    )
    config = TrainConfig.from_options(options_from_args(args))
    assert config.image_size == 96
    assert config.fine_tune_epochs == preset_options("quick", "mobilenet_v2")["fine_tune_epochs"]
    assert config.cache is False


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("architecture", "resnet", "unknown architecture 'resnet'"),
        ("image_size", 0, "image_size must be a whole number of at least 1"),
        ("head_epochs", -1, "head_epochs must be a whole number of at least 0"),
        ("batch_size", 2.5, "batch_size must be a whole number"),
        ("max_minutes", float("nan"), "max_minutes must be a positive number"),
        ("class_weighting", "inverse", "class weighting must be one of"),
        ("schedule", "linear", "schedule must be one of"),
        ("label_smoothing", 1.0, "label smoothing must be at least 0 and below 1"),
        ("weight_decay", -0.1, "weight decay must not be negative"),
        ("colour_jitter", 2.0, "colour jitter must be at least 0 and below 1"),
        ("val_fraction", 0.9, "must sum to less than 1"),
    ],
)
def test_bad_options_are_refused_by_name(field: str, value, message: str) -> None:
    config = TrainConfig(data_dir="d", out_dir="o", **{field: value})
    with pytest.raises(ConfigError, match=message):
        config.validate()


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        preset_options("huge", "mobilenet_v2")


def test_resolving_fills_every_default_from_the_architecture() -> None:
    run = TrainConfig(data_dir="d", out_dir="o", architecture="densenet169").resolve()
    arch = ARCHITECTURE_DEFAULTS["densenet169"]
    assert (run.image_size, run.batch_size, run.head_epochs, run.fine_tune_epochs) == (
        arch.input_size, arch.batch_size, arch.head_epochs, arch.fine_tune_epochs,
    )  # fmt: skip
    assert (run.learning_rate, run.fine_tune_learning_rate, run.fine_tune_layers) == (
        arch.learning_rate, arch.fine_tune_learning_rate, arch.fine_tune_layers,
    )  # fmt: skip
    # DenseNet169 range-tests its rate unless one is given; then the given rate is used.
    assert run.find_lr and run.adopt_suggested_rate and run.pretrained and run.transfer
    given = TrainConfig(data_dir="d", out_dir="o", architecture="densenet169", learning_rate=0.1)
    assert not given.resolve().find_lr and given.resolve().learning_rate == 0.1
    with pytest.raises(FrozenInstanceError):
        run.image_size = 32  # type: ignore[misc]


def test_resolving_epochs_per_phase_and_a_model_without_a_backbone() -> None:
    both = TrainConfig(data_dir="d", out_dir="o", architecture="mobilenet_v2", epochs=3)
    assert (both.resolve().head_epochs, both.resolve().fine_tune_epochs) == (3, 3)
    own = TrainConfig(
        data_dir="d", out_dir="o", architecture="mobilenet_v2", epochs=3, fine_tune_epochs=0
    )
    assert (own.resolve().head_epochs, own.resolve().fine_tune_epochs) == (3, 0)
    cnn = TrainConfig(data_dir="d", out_dir="o", architecture="basic_cnn", fine_tune_epochs=4)
    run = cnn.resolve()
    assert (run.fine_tune_epochs, run.pretrained, run.transfer) == (0, False, False)


def test_a_resolved_config_has_no_value_left_to_a_default() -> None:
    # Every field that may be None on the request is concrete once resolved, but for the
    # ones that really are optional (no cap, no parent, no weights folder, no external photos).
    optional = {"limit_per_class", "parent", "max_minutes", "weights_dir", "external_dir"}
    run = TrainConfig(data_dir=Path("d"), out_dir=Path("o"), architecture="basic_cnn").resolve()
    assert {f.name for f in fields(ResolvedConfig) if getattr(run, f.name) is None} <= optional
    assert json.loads(json.dumps(run.as_json())) == run.as_json()
    # Only "epochs" and "no_pretrained" fold into other fields; every other option is kept.
    folded = {f.name for f in fields(TrainConfig)} - {f.name for f in fields(ResolvedConfig)}
    assert folded == {"epochs", "no_pretrained"}


def test_resolving_refuses_what_validation_refuses() -> None:
    with pytest.raises(ConfigError, match="unknown architecture 'resnet'"):
        TrainConfig(data_dir="d", out_dir="o", architecture="resnet").resolve()


def test_the_architecture_registry_and_the_config_need_no_keras() -> None:
    statements = "import ml.training_config, ml.architecture_defaults"
    assert modules_loaded(statements, ("keras", "tensorflow")) == []
