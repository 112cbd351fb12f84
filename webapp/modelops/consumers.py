from django.http import Http404

from webapp.live import CLOSE_FORBIDDEN, StateConsumer
from webapp.modelops.selectors import (
    training_run_get,
    training_run_group_name,
    training_run_state,
)

__all__ = ["CLOSE_FORBIDDEN", "TrainingRunConsumer"]


class TrainingRunConsumer(StateConsumer):
    """Pushes a training run's progress to its page (admins only); the current state on connect."""

    @staticmethod
    def allowed(user) -> bool:
        return user.is_active and user.is_admin_role

    @staticmethod
    def load(user, public_id) -> tuple[str, dict] | None:
        try:
            run = training_run_get(public_id=public_id)
        except Http404:
            return None
        return training_run_group_name(run.public_id), training_run_state(run)
