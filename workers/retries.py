"""One retry policy for every job, batched or not: a transient fault (store, database or model
store down, a soft time limit) sends the job again with exponential back-off and its retry count,
until the retries are spent; then the job gives up in its own way.

The job is published again (``enqueue`` with ``countdown`` and ``retries``) rather than through
Celery's ``task.retry``: a job of a micro-batch has no request of its own to retry, and one path
for both keeps their back-off, logging and limit the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError

from webapp.config.celery import enqueue
from webapp.modelops.bundles import ModelUnavailable
from webapp.storage.store import StorageUnavailable
from workers.outcomes import Outcome

logger = logging.getLogger(__name__)

# Faults that go away by themselves: back off and try again.
TRANSIENT = (StorageUnavailable, OperationalError, InterfaceError, ModelUnavailable)
RETRIED = (*TRANSIENT, SoftTimeLimitExceeded)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    max_backoff: int

    def backoff(self, retries: int) -> int:
        """Seconds before the next try: exponential, capped below the broker's visibility timeout."""
        return min(5 * 2**retries, self.max_backoff)

    def after_fault(
        self,
        *,
        task_name: str,
        args: tuple | list,
        kwargs: dict,
        retries: int,
        error: Exception,
        give_up: Callable[[Exception], str],
        before_retry: Callable[[], object] = lambda: None,
    ) -> str:
        """The job's answer to a transient fault: sent again after its back-off (``before_retry``
        first) while retries remain, else ``give_up(error)``."""
        if retries >= self.max_retries:
            return give_up(error)
        countdown = self.backoff(retries)
        before_retry()
        logger.warning(
            "%s%s: %s: %s; retrying in %ss",
            task_name, list(args), type(error).__name__, error, countdown,
        )  # fmt: skip
        enqueue(task_name, *args, kwargs=kwargs, countdown=countdown, retries=retries + 1)
        return Outcome.RETRYING


POLICY = RetryPolicy(settings.CLASSIFY_MAX_RETRIES, settings.CLASSIFY_MAX_BACKOFF)
