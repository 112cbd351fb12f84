"""The reaper (Celery beat's periodic job): fails runs whose worker is gone, re-sends only runs whose
message the broker lost, and never a run whose message is still waiting."""

import socket
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from tests.conftest import TINY_RUN_OPTIONS
from tests.factories import TrainingRunFactory
from webapp.config.broker import waiting_first_arguments
from webapp.config.celery import TRAIN_TASK
from webapp.modelops.models import RunStatus
from webapp.modelops.services.runs import training_run_create
from workers.tasks import reap_stale_runs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker(settings):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("training")
    yield client
    client.delete("training")


def test_a_waiting_run_is_left_alone_and_a_lost_one_is_sent_again(
    admin, registered_dataset, broker, settings
):
    settings.TRAINING_REQUEUE_AFTER = 0
    run = training_run_create(
        requested_by=admin, dataset=registered_dataset, options=TINY_RUN_OPTIONS
    )
    assert waiting_first_arguments(TRAIN_TASK) == {run.pk}
    assert reap_stale_runs()["requeued"] == 0
    assert broker.llen("training") == 1

    broker.delete("training")  # Redis restarted empty
    assert reap_stale_runs()["requeued"] == 1
    assert waiting_first_arguments(TRAIN_TASK) == {run.pk}
    assert reap_stale_runs()["requeued"] == 0


def test_silent_and_dead_runs_are_failed_with_the_reason(
    admin, registered_dataset, broker, settings
):
    silent = TrainingRunFactory(
        requested_by=admin,
        dataset=registered_dataset,
        options=TINY_RUN_OPTIONS,
        status=RunStatus.TRAINING,
        worker="another-host:4242",
        heartbeat_at=timezone.now() - timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT + 5),
    )
    dead = TrainingRunFactory(
        requested_by=admin,
        dataset=registered_dataset,
        options=TINY_RUN_OPTIONS,
        status=RunStatus.PREPARING,
        worker=f"{socket.gethostname()}:999999",  # no such process here
        heartbeat_at=timezone.now(),
    )
    alive = TrainingRunFactory(
        requested_by=admin,
        dataset=registered_dataset,
        options=TINY_RUN_OPTIONS,
        status=RunStatus.TRAINING,
        worker=f"{socket.gethostname()}:1",
        heartbeat_at=timezone.now(),
    )
    outcome = reap_stale_runs()
    assert (outcome["failed"], outcome["dead_processes"]) == (1, 1)
    for run in (silent, dead, alive):
        run.refresh_from_db()
    assert silent.status == dead.status == RunStatus.FAILED
    assert "stopped responding" in silent.status_reason
    assert "is gone" in dead.status_reason
    assert alive.status == RunStatus.TRAINING
