"""The upload quota: per user, with a larger allowance for clinicians and admins, who upload for many
patients. Counted in the shared cache (Redis), so every web process enforces the same limit, and the upload
page and the API draw on one count (DRF's throttle, which works on a plain Django request as well)."""

import logging
import math

from redis.exceptions import RedisError
from rest_framework.throttling import UserRateThrottle

from webapp.errors import try_again_in

logger = logging.getLogger(__name__)


class UploadRateThrottle(UserRateThrottle):
    scope = "uploads"  # the patients' rate; a clinician's or admin's request switches to theirs

    def allow_request(self, request, view):
        user = request.user
        self.scope = "clinician_uploads" if (user.is_clinician or user.is_admin_role) else "uploads"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except RedisError as exc:
            # A quota that cannot be counted must not turn uploads away: the upload path itself
            # copes with a Redis outage (its job is sent later by the reconciler).
            logger.warning("upload quota not checked, the cache is unreachable: %s", exc)
            return True


def upload_wait(request) -> int:
    """For the upload page: 0 when this upload is within the quota (and now counted), else the
    seconds until the next one is."""
    throttle = UploadRateThrottle()
    if throttle.allow_request(request, None):
        return 0
    return max(1, math.ceil(throttle.wait() or 1))


def quota_message(wait_seconds: int) -> str:
    return "You have reached the number of photos you may upload in this period. " + try_again_in(
        wait_seconds
    )
