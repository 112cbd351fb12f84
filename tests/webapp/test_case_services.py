"""Job state: status only moves forward, a prediction is recorded once, waiting cases are re-enqueued."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from ml.referral import ReferralRule
from tests.factories import ModelVersionFactory, PredictionFactory, answer_for
from webapp.cases.models import Case, CaseStatus, Prediction
from webapp.cases.publishing import cases_publish
from webapp.cases.serializers import CaseSerializer, case_state
from webapp.cases.services.jobs import (
    InvalidTransition,
    case_claim_for_classification,
    case_enqueue_waiting,
    case_mark_finished_without_result,
    case_release_claim,
    cases_claim_for_classification,
)
from webapp.cases.services.predictions import case_record_predictions
from webapp.storage.store import StorageUnavailable

pytestmark = pytest.mark.django_db

PROBS = {"akiec": 0.01, "bcc": 0.02, "bkl": 0.05, "df": 0.01, "mel": 0.30, "nv": 0.60, "vasc": 0.01}


@pytest.fixture
def version(db):
    return ModelVersionFactory(name="tiny-1")


def answer(case, latency_ms=12, probabilities=PROBS) -> dict:
    """One case's answer, keyed by its id as a batch records it."""
    rule = ReferralRule(malignant_threshold=0.5)
    return {case.pk: answer_for(probabilities, rule=rule, latency_ms=latency_ms)}


def test_claim_then_record_marks_done_once(make_case, patient, version):
    case = make_case(patient)
    claimed = case_claim_for_classification(case_id=case.pk)
    assert claimed.status == CaseStatus.RUNNING and claimed.attempts == 1
    first = case_record_predictions(model_version=version, answers=answer(case))[case.pk]
    again = case_record_predictions(model_version=version, answers=answer(case, 99))[case.pk]
    case.refresh_from_db()
    assert first.pk == again.pk and Prediction.objects.count() == 1
    assert again.latency_ms == 12
    assert first.top_class == "nv" and first.top_probability == pytest.approx(0.6)
    assert case.status == CaseStatus.DONE and case.finished_at >= case.started_at
    # A redelivered job for a finished case finds nothing to do.
    assert case_claim_for_classification(case_id=case.pk) is None


def test_a_batch_is_claimed_in_two_queries_and_finished_cases_are_left_out(make_case, patient):
    queued, redelivered, failed = (make_case(patient) for _ in range(3))
    case_claim_for_classification(case_id=redelivered.pk)  # its worker died holding it
    case_mark_finished_without_result(case_id=failed.pk, status=CaseStatus.FAILED, reason="x")
    ids = [queued.pk, redelivered.pk, failed.pk, 10**9]
    with CaptureQueriesContext(connection) as queries:
        claimed = cases_claim_for_classification(case_ids=ids)
    assert len(queries.captured_queries) == 2
    assert set(claimed) == {queued.pk, redelivered.pk}
    assert claimed[queued.pk].attempts == 1 and claimed[redelivered.pk].attempts == 2
    assert all(case.status == CaseStatus.RUNNING for case in claimed.values())
    failed.refresh_from_db()
    assert failed.status == CaseStatus.FAILED and failed.attempts == 0


def test_a_released_claim_does_not_count_as_an_attempt(make_case, patient, settings):
    """Transient faults (the store down for minutes) retry a job many times; only claims that
    never ended (a worker that died) may fail the photo as one that kills its worker."""
    case = make_case(patient)
    for _ in range(settings.CLASSIFY_MAX_ATTEMPTS + 3):
        assert case_claim_for_classification(case_id=case.pk).attempts == 1
        case_release_claim(case_id=case.pk)
        case.refresh_from_db()
        assert case.status == CaseStatus.QUEUED and case.attempts == 0
    assert case_claim_for_classification(case_id=case.pk).attempts == 1
    assert case_claim_for_classification(case_id=case.pk).attempts == 2  # the first never ended
    case_mark_finished_without_result(case_id=case.pk, status=CaseStatus.FAILED, reason="x")
    case_release_claim(case_id=case.pk)  # a finished case is left as it is
    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED and case.attempts == 2


def test_a_batch_records_each_case_with_its_own_outcome(make_case, patient, version):
    fresh, duplicate, failed, deleted = (make_case(patient) for _ in range(4))
    for case in (fresh, duplicate, failed, deleted):
        case_claim_for_classification(case_id=case.pk)
    earlier = case_record_predictions(model_version=version, answers=answer(duplicate, 5))
    case_mark_finished_without_result(case_id=failed.pk, status=CaseStatus.FAILED, reason="x")
    deleted_id, gone = deleted.pk, answer(deleted)
    deleted.delete()
    mel = {**PROBS, "mel": 0.7, "nv": 0.2}

    outcomes = case_record_predictions(
        model_version=version,
        answers={**answer(fresh, 7, mel), **answer(duplicate, 8), **answer(failed), **gone},
    )

    assert outcomes[fresh.pk].top_class == "mel" and outcomes[fresh.pk].latency_ms == 7
    # Each case keeps its own referral decision: mel+bcc+akiec = 0.73 refers, 0.33 does not.
    assert (outcomes[fresh.pk].decision, outcomes[fresh.pk].decision_reasons) == (
        "refer",
        ["malignant"],
    )
    assert outcomes[fresh.pk].malignant_probability == pytest.approx(0.73)
    assert outcomes[duplicate.pk].decision == "routine"
    assert outcomes[duplicate.pk].pk == earlier[duplicate.pk].pk
    assert isinstance(outcomes[failed.pk], InvalidTransition)
    assert isinstance(outcomes[deleted_id], Case.DoesNotExist)
    statuses = dict(Case.objects.values_list("pk", "status"))
    assert statuses == {
        fresh.pk: CaseStatus.DONE,
        duplicate.pk: CaseStatus.DONE,
        failed.pk: CaseStatus.FAILED,
    }
    assert Prediction.objects.count() == 2


def test_redelivered_running_job_can_be_claimed_again(make_case, patient):
    case = make_case(patient)
    case_claim_for_classification(case_id=case.pk)
    reclaimed = case_claim_for_classification(case_id=case.pk)
    assert reclaimed.status == CaseStatus.RUNNING and reclaimed.attempts == 2


def test_finished_cases_never_move_back(make_case, patient, version):
    from webapp.cases.services.jobs import _transition

    case = make_case(patient)
    case_mark_finished_without_result(case_id=case.pk, status=CaseStatus.FAILED, reason="x")
    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED and case.status_reason == "x"
    # Marking again is a no-op, and a forced backward move raises.
    case_mark_finished_without_result(case_id=case.pk, status=CaseStatus.REJECTED, reason="y")
    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED
    with pytest.raises(InvalidTransition):
        _transition(case, CaseStatus.QUEUED)


def test_enqueue_waiting_sends_one_job_per_queued_case(
    make_case, patient, version, broker_queue_length
):
    waiting = [make_case(patient) for _ in range(3)]
    case_mark_finished_without_result(case_id=waiting[0].pk, status=CaseStatus.FAILED, reason="x")
    before = broker_queue_length()
    assert case_enqueue_waiting() == 2
    assert broker_queue_length() == before + 2


def test_a_list_of_cases_reads_shared_state_once_and_publishing_reads_nothing(
    make_case, patient, version
):
    cases = [make_case(patient) for _ in range(4)]
    for case in cases:
        case_claim_for_classification(case_id=case.pk)
    case_record_predictions(
        model_version=version, answers={k: v for case in cases for k, v in answer(case).items()}
    )
    done = list(
        Case.objects.filter(pk__in=[case.pk for case in cases]).select_related(
            "lesion", "prediction__model_version", "prediction__heatmap"
        )
    )
    with CaptureQueriesContext(connection) as one:
        assert len(CaseSerializer(done[:1], many=True, context={}).data) == 1
    with CaptureQueriesContext(connection) as four:
        assert len(CaseSerializer(done, many=True, context={}).data) == 4
    # The guidance is read once per list: as many queries for four cases as for one.
    assert len(one.captured_queries) >= 1
    assert len(four.captured_queries) == len(one.captured_queries)
    # Publishing only names the cases; the sockets watching them read their state themselves.
    with CaptureQueriesContext(connection) as published:
        cases_publish(public_ids=[case.public_id for case in cases])
    assert published.captured_queries == []


def test_a_case_whose_result_object_was_not_written_is_left_out(make_case, patient, version):
    written, unwritten = make_case(patient), make_case(patient)
    for case in (written, unwritten):
        case_claim_for_classification(case_id=case.pk)
    error = StorageUnavailable("the object store is unreachable")
    calls = []

    def results_written():
        # Asked inside the transaction, once the rows are written and before they commit.
        calls.append((connection.in_atomic_block, Prediction.objects.count()))
        return {unwritten.pk: error}

    outcomes = case_record_predictions(
        model_version=version,
        answers={**answer(written), **answer(unwritten)},
        results_written=results_written,
    )

    assert calls == [(True, 2)]
    assert Prediction.objects.get().case_id == written.pk
    assert outcomes[unwritten.pk] is error
    assert outcomes[written.pk].case_id == written.pk
    assert dict(Case.objects.values_list("pk", "status")) == {
        written.pk: CaseStatus.DONE,
        unwritten.pk: CaseStatus.RUNNING,  # its job retries it
    }


def test_a_case_without_a_result_is_described_without_looking_for_a_prediction(make_case, patient):
    case = Case.objects.get(pk=make_case(patient).pk)
    with CaptureQueriesContext(connection) as queries:
        state = case_state(case)
    assert state["status"] == CaseStatus.QUEUED and state["prediction"] is None
    assert not [q for q in queries.captured_queries if "cases_prediction" in q["sql"]]


def test_a_prediction_cannot_be_stored_without_its_answer(version):
    # The answer's fields are optional on the shared ClassifierOutput (a re-run result waits for
    # its answer); a prediction's check constraint still requires every one of them.
    prediction = PredictionFactory(model_version=version)
    for field, empty in (("top_class", ""), ("result_key", ""), ("probabilities", None)):
        with pytest.raises(IntegrityError, match="prediction_is_answered"), transaction.atomic():
            Prediction.objects.filter(pk=prediction.pk).update(**{field: empty})
