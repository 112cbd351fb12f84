"""Telling the browsers that watch cases that those cases changed."""

from collections.abc import Iterable
from uuid import UUID

from webapp.cases.selectors import case_group_name
from webapp.live import push_changes
from webapp.metrics import JOB_STAGE_SECONDS, timed


def cases_publish(*, public_ids: Iterable[UUID]) -> None:
    """Tell every page watching one of these cases that it changed; each page's socket reads the
    case again for its own user. Best effort: pages also poll."""
    public_ids = list(public_ids)
    with timed(JOB_STAGE_SECONDS, "push"):
        push_changes(
            (case_group_name(public_id) for public_id in public_ids),
            what=f"case(s) {', '.join(map(str, public_ids))}",
        )
