"""Pushing cases' current state to the browsers that watch them."""

from webapp.cases.models import Case
from webapp.cases.selectors import case_group_name
from webapp.cases.serializers import CaseSerializer
from webapp.live import push_states
from webapp.metrics import JOB_STAGE_SECONDS, timed


def cases_publish(*, case_ids: list[int]) -> None:
    """Push each case's current state to every browser watching it. Best effort: pages also poll."""
    cases = list(
        Case.objects.filter(pk__in=case_ids).select_related(
            "lesion", "prediction__model_version", "prediction__heatmap"
        )
    )
    with timed(JOB_STAGE_SECONDS, "push"):
        # One serializer context for the batch: the guidance and the active model are read once.
        states = CaseSerializer(cases, many=True, context={}).data
        push_states(
            zip((case_group_name(case) for case in cases), states, strict=True),
            what=f"case(s) {', '.join(map(str, case_ids))}",
        )
