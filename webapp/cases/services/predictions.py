"""Recording a batch's answers: one prediction per case, committed only with its result object."""

from collections.abc import Callable, Mapping

from django.db import transaction
from django.utils import timezone

from ml.answer import Answer
from webapp.cases.heatmaps import heatmaps_create
from webapp.cases.models import ALLOWED_TRANSITIONS, Case, CaseStatus, Decision, Prediction
from webapp.cases.publishing import cases_publish
from webapp.cases.services.jobs import InvalidTransition
from webapp.storage import store


def case_record_predictions(
    *,
    model_version,
    answers: Mapping[int, Answer],
    results_written: Callable[[], Mapping[int, Exception]] = dict,
) -> dict[int, Prediction | Exception]:
    """Store a batch's predictions and mark their cases done, in one transaction, each case once.

    Every case gets its own outcome: its new prediction; the existing one when a duplicate job
    recorded it first; InvalidTransition when the case finished otherwise meanwhile; the error
    that kept its result object from being written; or Case.DoesNotExist when it is gone. One
    case's outcome never stops the others.

    ``results_written`` is called inside the transaction, after the inserts and before the commit:
    it waits for the caller's writes of the answers' result objects (at ``store.case_result_key``;
    ``answers`` is keyed by case id) so that they overlap the
    database work) and names the cases whose object could not be written, with the error. Those
    are taken out again before the commit, so a recorded prediction always has its object.
    """
    by_case = dict(answers)
    outcomes: dict[int, Prediction | Exception] = {
        case_id: Case.DoesNotExist(f"Case {case_id} no longer exists.") for case_id in by_case
    }
    with transaction.atomic():
        # Locked in one order, so two batches that share a redelivered case cannot deadlock.
        cases = list(Case.objects.select_for_update().filter(pk__in=by_case).order_by("pk"))
        existing = {p.case_id: p for p in Prediction.objects.filter(case_id__in=by_case)}
        new: list[Prediction] = []
        for case in cases:
            if case.pk in existing:
                outcomes[case.pk] = existing[case.pk]
            elif CaseStatus.DONE not in ALLOWED_TRANSITIONS[case.status]:
                outcomes[case.pk] = InvalidTransition(
                    f"Case {case.pk} cannot go from {case.status} to {CaseStatus.DONE}."
                )
            else:
                new.append(_prediction(case, model_version, by_case[case.pk]))
        if not new:
            return outcomes
        Prediction.objects.bulk_create(new)
        Case.objects.filter(pk__in=[prediction.case_id for prediction in new]).update(
            status=CaseStatus.DONE, status_reason="", finished_at=timezone.now()
        )
        new = _keep_written(new, results_written(), outcomes)
        if not new:
            return outcomes
        outcomes.update({prediction.case_id: prediction for prediction in new})
        recorded = {prediction.case_id for prediction in new}
        done = [case.public_id for case in cases if case.pk in recorded]
        transaction.on_commit(lambda: cases_publish(public_ids=done))
        # After the push: a heat map is never on a result's way to the patient.
        heatmaps_create(new)
    return outcomes


def _keep_written(
    new: list[Prediction], unwritten: Mapping[int, Exception], outcomes: dict
) -> list[Prediction]:
    """Undo, before the commit, the predictions whose result object could not be written: their
    cases stay running (their jobs retry them) and their outcome is the error."""
    lost = [prediction for prediction in new if prediction.case_id in unwritten]
    if lost:
        Prediction.objects.filter(pk__in=[prediction.pk for prediction in lost]).delete()
        Case.objects.filter(pk__in=[prediction.case_id for prediction in lost]).update(
            status=CaseStatus.RUNNING, finished_at=None
        )
        outcomes.update({p.case_id: unwritten[p.case_id] for p in lost})
    return [prediction for prediction in new if prediction.case_id not in unwritten]


def _prediction(case: Case, model_version, answer: Answer) -> Prediction:
    key = store.case_result_key(case.public_id, model_version.name)
    return Prediction(
        case_id=case.pk,
        model_version=model_version,
        **Prediction.answered(answer, key),
        decision=Decision.REFER if answer.decision.refer else Decision.ROUTINE,
        decision_reasons=list(answer.decision.reasons),
        malignant_probability=answer.decision.malignant_probability,
    )
