"""Deleting a case at its patient's request: rows at once, stored objects after the commit."""

from django.db import transaction

from webapp.accounts.models import User
from webapp.cases.models import Case, CaseStatus
from webapp.errors import Conflict, NotPermitted
from webapp.storage import store


def case_delete(*, case: Case, by: User) -> None:
    """Delete a case at its patient's request: its rows (prediction, reviews, re-run answers) at once,
    and after commit the photo and every result object made from it. The audit trail keeps the request;
    a lesion left without photos goes too."""
    if not (by.pk == case.lesion.patient_id or by.is_admin_role):
        raise NotPermitted("Only the patient, or an administrator, may delete this photo.")
    with transaction.atomic():
        locked = Case.objects.select_for_update().select_related("lesion").get(pk=case.pk)
        if locked.status == CaseStatus.RUNNING:
            raise Conflict("This photo is being classified right now; try again in a minute.")
        keys = [
            locked.image_key,
            *locked.rerun_results.exclude(result_key="").values_list("result_key", flat=True),
        ]
        results = store.case_results_prefix(locked.public_id)
        lesion = locked.lesion
        locked.rerun_results.all().delete()
        locked.reviews.all().delete()
        locked.delete()  # the prediction goes with it (cascade)
        if not lesion.cases.exists():
            lesion.delete()
        transaction.on_commit(lambda: _delete_objects(keys, results))


def _delete_objects(keys: list[str], prefix: str) -> None:
    # After commit: a failure leaves an unreachable object (logged), never a row without its photo.
    for key in keys:
        store.delete_quietly(key)
    store.delete_prefix_quietly(prefix)
