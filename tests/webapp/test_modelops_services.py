"""The registry's rules without training: the promotion gate, promote, roll back, and immutability."""

import pytest

from tests.factories import AdminFactory, ClinicianFactory, DatasetFactory, ModelVersionFactory
from tests.modelops_rows import judged
from webapp.errors import NotPermitted
from webapp.modelops.models import (
    EvaluationSet,
    ModelEvent,
    ModelStatus,
    RunStatus,
)
from webapp.modelops.services.common import ModelOpsError, PromotionRefused
from webapp.modelops.services.registry import (
    model_version_activate,
    model_version_promote,
    model_version_rollback,
)
from webapp.modelops.services.runs import training_run_cancel, training_run_create
from webapp.records import ImmutableRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def evaluation_set():
    dataset = DatasetFactory(name="d", location="/data")
    return EvaluationSet.objects.create(
        dataset=dataset,
        sha256="e" * 64,
        key="datasets/evaluation-sets/e.json",
        image_count=100,
        class_counts={},
    )


@pytest.fixture
def active(evaluation_set):
    version = judged(ModelVersionFactory(name="old"), evaluation_set, balanced=0.70, melanoma=0.60)
    model_version_activate(version=version, reason="first model")
    return version


def test_a_candidate_no_worse_than_the_margin_is_promoted_and_recorded(
    active, evaluation_set, settings
):
    settings.PROMOTION_MAX_DROP = 0.02
    candidate = judged(
        ModelVersionFactory(name="new"), evaluation_set, balanced=0.69, melanoma=0.75
    )
    admin = AdminFactory()
    event = model_version_promote(version=candidate, actor=admin)
    candidate.refresh_from_db()
    active.refresh_from_db()
    assert candidate.status == ModelStatus.ACTIVE and active.status == ModelStatus.RETIRED
    assert (event.action, event.previous, event.actor, event.gate["passed"]) == (
        "promote",
        active,
        admin,
        True,
    )
    assert {c["metric"]: round(c["drop"], 3) for c in event.gate["checks"]} == {
        "balanced_accuracy": 0.01,
        "melanoma_sensitivity": -0.15,
    }


@pytest.mark.parametrize(
    ("balanced", "melanoma", "named"),
    [
        (0.60, 0.60, "Balanced accuracy would fall from 70.0% to 60.0%"),
        (0.75, 0.50, "Melanoma sensitivity would fall from 60.0% to 50.0%"),
    ],
)
def test_a_worse_candidate_is_refused_unless_a_reason_is_written(
    active, evaluation_set, balanced, melanoma, named
):
    candidate = judged(
        ModelVersionFactory(name="worse"), evaluation_set, balanced=balanced, melanoma=melanoma
    )
    admin = AdminFactory()
    with pytest.raises(PromotionRefused, match=named) as refused:
        model_version_promote(version=candidate, actor=admin)
    assert refused.value.gate["passed"] is False
    candidate.refresh_from_db()
    assert candidate.status == ModelStatus.CANDIDATE
    assert ModelEvent.objects.filter(version=candidate).count() == 0

    event = model_version_promote(
        version=candidate, actor=admin, reason="better on the new clinic's photos"
    )
    assert event.reason == "better on the new clinic's photos"
    assert event.gate["overridden"] is True


def test_a_candidate_without_numbers_on_the_evaluation_set_is_refused(active, evaluation_set):
    candidate = ModelVersionFactory(name="unjudged")
    with pytest.raises(
        PromotionRefused, match="has not been evaluated on evaluation set eeeeeeeeeeee"
    ):
        model_version_promote(version=candidate, actor=AdminFactory())


def test_the_first_model_needs_no_comparison(evaluation_set):
    candidate = judged(
        ModelVersionFactory(name="first"), evaluation_set, balanced=0.3, melanoma=0.1
    )
    event = model_version_promote(version=candidate, actor=AdminFactory())
    assert event.previous is None and event.gate["passed"] is True


def test_rollback_returns_to_the_model_before_and_says_who_and_why(active, evaluation_set):
    candidate = judged(
        ModelVersionFactory(name="new"), evaluation_set, balanced=0.72, melanoma=0.61
    )
    admin = AdminFactory()
    model_version_promote(version=candidate, actor=admin)
    with pytest.raises(ModelOpsError, match="Say why"):
        model_version_rollback(actor=admin, reason="  ")
    event = model_version_rollback(actor=admin, reason="melanoma misses reported by clinic")
    active.refresh_from_db()
    candidate.refresh_from_db()
    assert active.status == ModelStatus.ACTIVE and candidate.status == ModelStatus.RETIRED
    assert (event.action, event.version, event.previous) == ("rollback", active, candidate)
    assert list(ModelEvent.objects.values_list("action", flat=True)) == [
        "rollback",
        "promote",
        "activate",
    ]


def test_only_admins_promote_roll_back_or_train(active, evaluation_set):
    candidate = judged(ModelVersionFactory(name="new"), evaluation_set, balanced=0.9, melanoma=0.9)
    clinician = ClinicianFactory()
    with pytest.raises(NotPermitted):
        model_version_promote(version=candidate, actor=clinician)
    with pytest.raises(NotPermitted):
        model_version_rollback(actor=clinician, reason="x")
    with pytest.raises(NotPermitted):
        training_run_create(requested_by=clinician, dataset=evaluation_set.dataset)


def test_registry_rows_and_events_cannot_be_rewritten(active):
    active.bundle_key = "models/other.zip"
    with pytest.raises(ImmutableRecord):
        active.save()
    with pytest.raises(ImmutableRecord):
        active.save(update_fields=["bundle_key"])
    event = ModelEvent.objects.get()
    event.reason = "rewritten"
    with pytest.raises(ImmutableRecord):
        event.save()


def test_bad_training_options_are_refused_before_anything_is_queued(
    evaluation_set, broker_queue_length
):
    admin = AdminFactory()
    with pytest.raises(ModelOpsError, match="image_size must be a whole number of at least 1"):
        training_run_create(
            requested_by=admin, dataset=evaluation_set.dataset, options={"image_size": 0}
        )
    with pytest.raises(ModelOpsError, match="Unknown training option"):
        training_run_create(
            requested_by=admin, dataset=evaluation_set.dataset, options={"data_dir": "/etc"}
        )
    assert broker_queue_length("training") == 0


def test_a_queued_run_is_cancelled_at_once(evaluation_set, django_capture_on_commit_callbacks):
    admin = AdminFactory()
    with django_capture_on_commit_callbacks(execute=False):
        run = training_run_create(
            requested_by=admin, dataset=evaluation_set.dataset, preset="quick"
        )
    assert run.options["image_size"] == 128 and run.options["architecture"] == "mobilenet_v2"
    training_run_cancel(run=run, requested_by=admin)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert f"Cancelled by {admin.username} before it started" in run.status_reason
    with pytest.raises(ModelOpsError, match="already cancelled"):
        training_run_cancel(run=run, requested_by=admin)


def test_a_rerun_names_what_it_cannot_use(active, make_case, patient):
    import uuid

    from webapp.reruns.services import rerun_create

    admin = AdminFactory()
    with pytest.raises(ModelOpsError, match="Choose the cases"):
        rerun_create(version=active, requested_by=admin)
    missing = str(uuid.uuid4())
    with pytest.raises(ModelOpsError, match=f"No such case: {missing}"):
        rerun_create(version=active, requested_by=admin, case_ids=[missing])
    with pytest.raises(ModelOpsError, match="'nonsense' is not a case id"):
        rerun_create(version=active, requested_by=admin, case_ids=["nonsense"])
    with pytest.raises(ModelOpsError, match="no classified cases"):
        rerun_create(version=active, requested_by=admin, recent=10)
    case = make_case(patient)
    with pytest.raises(NotPermitted):
        rerun_create(version=active, requested_by=patient, case_ids=[str(case.public_id)])
    rerun = rerun_create(version=active, requested_by=admin, case_ids=[str(case.public_id)] * 2)
    assert rerun.results.count() == 1
