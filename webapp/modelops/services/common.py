"""What every model-operations service shares: the expected refusals and the admin check."""

from __future__ import annotations

import logging
import re

from webapp.accounts.models import User
from webapp.errors import ApplicationError, Conflict, NotPermitted

logger = logging.getLogger(__name__)


NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")


class ModelOpsError(ApplicationError):
    """An expected refusal of a model operation; the message is for the person who asked."""


class PromotionRefused(ModelOpsError, Conflict):
    def __init__(self, message: str, gate: dict) -> None:
        super().__init__(message, gate=gate)
        self.gate = gate


class InvalidRunState(ModelOpsError, Conflict):
    pass


def require_admin(user: User | None) -> None:
    """Only administrators retrain, promote and roll back; tasks check again with the stored user."""
    if user is None or not user.is_authenticated or not user.is_active or not user.is_admin_role:
        raise NotPermitted("Only administrators may train, import, promote or roll back models.")
