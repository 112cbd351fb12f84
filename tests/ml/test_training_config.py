"""One home for training options: presets, checks, and the command line that sets them."""

import json
from dataclasses import fields
from pathlib import Path

import pytest

from bench.train_ham10000 import parse_args, training_config
from ml.cli import build_parser
from ml.training_config import (
    ARCHITECTURE_NAMES,
    PRESETS,
    ConfigError,
    TrainConfig,
    options_from_args,
    preset_options,
)

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
