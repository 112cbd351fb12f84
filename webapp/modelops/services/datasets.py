"""Registering base datasets (a server folder or a prefix in the bucket)."""

from __future__ import annotations

import logging

from ml.datasets import DatasetError
from webapp.accounts.models import User
from webapp.modelops.datasources import check_location
from webapp.modelops.models import (
    Dataset,
)
from webapp.modelops.services.common import (
    ModelOpsError,
    require_admin,
)

logger = logging.getLogger(__name__)

# --- datasets -----------------------------------------------------------------------------------------


def dataset_register(
    *,
    name: str,
    location_kind: str,
    location: str,
    description: str = "",
    created_by: User | None,
) -> Dataset:
    if created_by is not None:
        require_admin(created_by)
    if Dataset.objects.filter(name=name).exists():
        raise ModelOpsError(f"A dataset named {name!r} is already registered.")
    try:
        location = check_location(location_kind=location_kind, location=location)
    except DatasetError as exc:
        raise ModelOpsError(str(exc)) from exc
    return Dataset.objects.create(
        name=name,
        location_kind=location_kind,
        location=location,
        description=description,
        created_by=created_by,
    )
