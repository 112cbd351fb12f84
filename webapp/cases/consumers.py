from django.http import Http404

from webapp.cases.selectors import case_get_for_user, case_group_name
from webapp.cases.serializers import case_state
from webapp.live import CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED, StateConsumer

__all__ = ["CLOSE_NOT_FOUND", "CLOSE_UNAUTHENTICATED", "CaseConsumer"]


class CaseConsumer(StateConsumer):
    """Pushes a case's state to its results page. Sends the current state on connect, so a result
    that arrived before the socket opened is never missed."""

    audited_as = "case"

    @staticmethod
    def load(user, public_id) -> tuple[str, dict] | None:
        try:
            case = case_get_for_user(user=user, public_id=public_id)
        except Http404:
            return None
        return case_group_name(case.public_id), case_state(case)
