"""Model versions' evaluations as database rows, for tests of the gate and the pages (the versions
themselves: ``tests.factories.ModelVersionFactory``)."""

from webapp.modelops.models import ModelEvaluation, ModelVersion


def judged(version, evaluation_set, balanced, melanoma, seen=0, **metrics) -> ModelVersion:
    """Record ``version``'s numbers on ``evaluation_set``; ``metrics`` adds or replaces keys."""
    ModelEvaluation.objects.create(
        model_version=version,
        evaluation_set=evaluation_set,
        metrics={
            "n": evaluation_set.image_count,
            "accuracy": 0.8,
            "balanced_accuracy": balanced,
            "melanoma": {"sensitivity": melanoma, "specificity": 0.9},
            "per_class": {},
            "confusion_matrix": [[0] * 7 for _ in range(7)],
            **metrics,
        },
        seen_in_training=seen,
    )
    return version
