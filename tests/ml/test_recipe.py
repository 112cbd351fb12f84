"""The serving recipe a bundle records: preprocessing steps, test-time views and decision rules,
each read back exactly and refused when the manifest asks for something this code does not do."""

import numpy as np
import pytest

from ml.classes import CLASSES
from ml.decisions import DecisionRuleError, DecisionRules
from ml.operating_points import (
    NAMED_CLASS_FLOOR,
    TopClassRule,
    TopClassRuleError,
    choose_top_class_rule,
    prior_shifted_decisions,
)
from ml.preprocess import (
    CENTRE_CROP,
    STRETCH,
    Preprocessing,
    UnsupportedPreprocessing,
    shades_of_gray,
)
from ml.recipe import ServingRecipe
from ml.referral import ReferralRule
from ml.tta import VIEW_SETS, TestTimeAugmentation, UnsupportedAugmentation


@pytest.mark.parametrize(
    "recipe",
    [Preprocessing(64), Preprocessing(64, CENTRE_CROP), Preprocessing(64, CENTRE_CROP, 6)],
)
def test_preprocessing_round_trips_through_the_manifest(recipe) -> None:
    recorded = recipe.describe("x / 255")
    assert Preprocessing.from_manifest(recorded, 64) == recipe


def test_a_manifest_written_before_fits_and_colour_constancy_reads_as_a_stretch() -> None:
    recorded = Preprocessing(32).describe("none")
    recorded["resize"].pop("crop", None)
    assert "colour_constancy" not in recorded
    assert Preprocessing.from_manifest(recorded, 32) == Preprocessing(32, STRETCH, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(hair_removal={"method": "dullrazor"}), "unknown preprocessing step"),
        (lambda r: r.update(colour_constancy={"method": "grey_edge"}), "grey_edge"),
        (lambda r: r["resize"].update(keep_aspect_ratio=False), "crop"),
        (lambda r: r["resize"].update(crop="random"), "crop"),
        (lambda r: r["resize"].update(interpolation="nearest"), "unknown resize setting"),
        (lambda r: r["resize"].update(size=[32, 24]), "size"),
        (lambda r: r.update(normalisation_in_model=False), "normalisation"),
    ],
)
def test_a_step_this_code_does_not_perform_is_refused(change, message) -> None:
    recorded = Preprocessing(32, CENTRE_CROP, 6).describe("none")
    change(recorded)
    with pytest.raises(UnsupportedPreprocessing, match=message):
        Preprocessing.from_manifest(recorded, 32)


def test_shades_of_gray_leaves_grey_light_alone_and_removes_a_tint() -> None:
    rng = np.random.default_rng(0)
    grey = rng.uniform(40, 200, (16, 16, 1)).repeat(3, axis=2).astype(np.float32)
    np.testing.assert_allclose(shades_of_gray(grey, 6), grey, atol=1e-3)
    tinted = np.clip(grey * np.array([1.3, 1.0, 0.7], dtype=np.float32), 0, 255)
    corrected = shades_of_gray(tinted, 6)
    # The three channels come out balanced again (the tint was a per-channel gain).
    means = corrected.reshape(-1, 3).mean(axis=0)
    assert means.max() / means.min() < 1.05
    assert tinted.reshape(-1, 3).mean(axis=0).max() / tinted.reshape(-1, 3).mean(axis=0).min() > 1.5
    assert corrected.min() >= 0 and corrected.max() <= 255
    black = np.zeros((4, 4, 3), np.float32)
    np.testing.assert_array_equal(shades_of_gray(black, 6), black)


def test_the_centre_crop_sees_the_middle_square_and_says_where() -> None:
    photo = np.zeros((30, 40, 3), np.uint8)
    photo[:, :5] = 255  # a white band on the left edge, outside the centred square
    recipe = Preprocessing(10, CENTRE_CROP)
    assert recipe.from_array(photo).max() == 0
    assert Preprocessing(10, STRETCH).from_array(photo).max() > 100
    assert recipe.seen_region(40, 30) == (5, 0, 35, 30)
    assert Preprocessing(10).seen_region(40, 30) == (0, 0, 40, 30)


def test_test_time_views_round_trip_and_average() -> None:
    for name, views in VIEW_SETS.items():
        tta = TestTimeAugmentation.named(name)
        assert TestTimeAugmentation.from_manifest(tta.to_manifest()) == tta
        assert tta.views == views
    batch = np.random.default_rng(1).uniform(0, 255, (3, 8, 8, 3)).astype(np.float32)
    tta = TestTimeAugmentation.named("dihedral")
    expanded = tta.expand(batch)
    assert expanded.shape == (24, 8, 8, 3)
    # Every view is a rearrangement of the same pixels, never a blend.
    for view in range(8):
        np.testing.assert_allclose(
            np.sort(expanded[view * 3 : view * 3 + 3].ravel()), np.sort(batch.ravel())
        )

    def run(images):  # "probability" of class 0 = brightness of the top-left pixel
        p = images[:, 0, 0, 0] / 255.0
        return np.stack([p, 1 - p], axis=1)

    expected = np.mean([run(expanded[v * 3 : v * 3 + 3]) for v in range(8)], axis=0)
    np.testing.assert_allclose(tta.score(run, batch), expected, atol=1e-6)
    np.testing.assert_allclose(TestTimeAugmentation().score(run, batch), run(batch))


@pytest.mark.parametrize(
    "recorded",
    [
        {"views": ["identity", "rot45"], "merge": "mean_probability"},
        {"views": ["identity"], "merge": "max"},
        {"views": "identity", "merge": "mean_probability"},
        {"views": ["identity"], "merge": "mean_probability", "weights": [1]},
    ],
)
def test_unknown_test_time_views_or_merges_are_refused(recorded) -> None:
    with pytest.raises(UnsupportedAugmentation):
        TestTimeAugmentation.from_manifest(recorded)


def test_the_top_class_rule_names_rarer_classes_and_round_trips() -> None:
    probs = np.full((2, 7), 0.02)
    probs[0, 5], probs[0, 4] = 0.5, 0.38  # nv a little ahead of mel
    probs[1, 5] = 0.88
    probs /= probs.sum(axis=1, keepdims=True)
    priors = dict(zip(CLASSES, (0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02), strict=True))
    rules = DecisionRules(None, TopClassRule(tau=0.5, priors=priors))
    assert DecisionRules().top_classes(probs, CLASSES).tolist() == [5, 5]
    assert rules.top_classes(probs, CLASSES).tolist() == [4, 5]
    assert DecisionRules.from_manifest(rules.to_manifest()) == rules
    assert rules.top_class_of(dict(zip(CLASSES, probs[0], strict=True))) == "mel"


def test_the_balanced_rule_is_chosen_on_validation() -> None:
    y = np.array([5] * 80 + [4] * 20)
    probs = np.full((100, 7), 0.001)
    probs[:80, 5], probs[:80, 4] = 0.9, 0.095  # nevi: nv well ahead
    probs[80:, 5], probs[80:, 4] = 0.6, 0.395  # melanomas: nv a little ahead at argmax
    probs /= probs.sum(axis=1, keepdims=True)
    train_labels = np.array([5] * 67 + [4] * 11 + [0, 1, 2, 2, 3, 6])
    rule = choose_top_class_rule(y, probs, train_labels, CLASSES)
    assert rule.tau > 0
    assert rule.validation["balanced_accuracy"] == 1.0
    assert rule.priors["nv"] == pytest.approx(67 / 84)


def test_the_floor_keeps_a_rare_class_at_two_percent_from_being_named() -> None:
    # Like ISIC_0026083 served by R1: nevus most probable, dermatofibroma named at 2.3% (tau 0.9).
    probs = np.array([[0.03, 0.05, 0.10, 0.023, 0.03, 0.757, 0.01]])
    priors = dict(zip(CLASSES, (0.033, 0.051, 0.11, 0.011, 0.111, 0.67, 0.014), strict=True))
    assert TopClassRule(tau=0.9, priors=priors).decide(probs, CLASSES).tolist() == [3]  # df
    floored = TopClassRule(tau=0.9, priors=priors, min_probability=0.10)
    assert floored.decide(probs, CLASSES).tolist() == [5]  # nv
    # The most probable class is always eligible, however spread the probabilities are.
    flat = np.full((1, 7), 1 / 7)
    assert TopClassRule(tau=0.0, priors=priors, min_probability=0.3).decide(flat, CLASSES) == [0]
    assert TopClassRule.from_manifest(floored.to_manifest()) == floored
    with pytest.raises(TopClassRuleError, match="min_probability"):
        TopClassRule.from_manifest({**floored.to_manifest(), "min_probability": 1.5})


def test_the_prior_shift_is_chosen_under_the_floor() -> None:
    y = np.array([5] * 80 + [3] * 20)
    probs = np.full((100, 7), 0.001)
    probs[:80, 5], probs[:80, 3] = 0.98, 0.01
    # Dermatofibromas the model gives 8%: a strong shift would name them and lift validation
    # balanced accuracy, but a class at 8% is never named.
    probs[80:, 3], probs[80:, 5] = 0.08, 0.914
    train_labels = np.array([5] * 67 + [4] * 11 + [0, 1, 2, 2, 3, 6])
    priors = np.maximum(np.bincount(train_labels, minlength=7), 1) / len(train_labels)
    unfloored = prior_shifted_decisions(probs, priors, 1.0)
    assert (unfloored[80:] == 3).all()
    rule = choose_top_class_rule(y, probs, train_labels, CLASSES)
    assert rule.min_probability == NAMED_CLASS_FLOOR == 0.10
    assert rule.validation["balanced_accuracy"] == 0.5
    assert not (rule.decide(probs, CLASSES) == 3).any()


@pytest.mark.parametrize(
    "thresholds",
    [
        {"version": 1, "refer": {"malignant_threshold": 0.1}, "always_refer_children": True},
        {"version": 1, "top_class": {"rule": "argmin", "tau": 0.5, "priors": {}}},
        {"version": 2, "top_class": {"rule": "prior_shift", "tau": 0.5, "priors": {"nv": 1}}},
        {"version": 1, "top_class": {"rule": "prior_shift", "tau": 3, "priors": {"nv": 1}}},
    ],
)
def test_unknown_or_malformed_decision_rules_are_refused(thresholds) -> None:
    with pytest.raises(DecisionRuleError):
        DecisionRules.from_manifest(thresholds)


def test_the_serving_recipe_refuses_what_it_cannot_serve() -> None:
    manifest = {
        "input_size": 32,
        "class_names": list(CLASSES),
        "preprocessing": Preprocessing(32, CENTRE_CROP, 6).describe("none"),
        "test_time_augmentation": TestTimeAugmentation.named("flips").to_manifest(),
        "calibration_temperature": 1.5,
        "decision_thresholds": DecisionRules(ReferralRule(0.2)).to_manifest(),
    }
    recipe = ServingRecipe.checked(manifest, "bundle")
    assert recipe.tta.count == 4
    assert recipe.rules.referral.malignant_threshold == 0.2
    from ml.bundle import BundleError

    for key, value in (
        ("test_time_augmentation", {"views": ["warp"], "merge": "mean_probability"}),
        ("decision_thresholds", {"version": 1, "abstain": {}}),
    ):
        with pytest.raises(BundleError, match="bundle"):
            ServingRecipe.checked({**manifest, key: value}, "bundle")
