"""`make run` as a new user meets it: a first start with DATASET_DIR trains a model through the training
queue and activates it; a second start keeps that model and trains nothing."""

import os
import signal
import subprocess
import sys

import pytest

from deploy.local_services import free_port
from tests.processes import ROOT, service_env, wait_until
from webapp.modelops.models import ModelEvent, ModelStatus, ModelVersion, TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TRAIN_ARGS = (
    "--preset quick --architecture basic_cnn --image-size 32 --head-epochs 2 --batch-size 8"
)


def start(tmp_path, dataset_dir, log_name, own_s3: bool = False):
    env = service_env()
    if own_s3:  # make run starts its own SeaweedFS, as for a new user
        env = {k: v for k, v in env.items() if not k.startswith("S3_")}
    env.update(
        SKINSIGHT_VAR_DIR=str(tmp_path / "var"),
        PORT=str(free_port()),
        DATASET_DIR=str(dataset_dir),
        TRAIN_ARGS=TRAIN_ARGS,
        ADMIN_USERNAME="owner",
        ADMIN_PASSWORD="an-admin-password-2026",
    )
    log = tmp_path / log_name
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.run_local"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return process, log


def env_value(key: str) -> str:
    return service_env()[key]


def second_shell(tmp_path) -> str:
    env = {k: v for k, v in service_env().items() if not k.startswith(("S3_", "REDIS_"))}
    env["SKINSIGHT_VAR_DIR"] = str(tmp_path / "var")
    probe = "from django.conf import settings; print(settings.S3_ENDPOINT_URL, settings.REDIS_URL)"
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", probe],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


def finish(process) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(90)


def test_first_start_trains_through_the_queue_and_a_second_start_keeps_the_model(
    tmp_path, training_dataset_dir
):
    process, log = start(tmp_path, training_dataset_dir, "first.log")
    try:
        wait_until(lambda: "first model: " in log.read_text(), 300, "the first model", log)
        # A command typed in a second terminal, without make run's environment, reaches its services.
        assert second_shell(tmp_path) == f"{env_value('S3_ENDPOINT_URL')} {env_value('REDIS_URL')}"
    finally:
        finish(process)
    assert not (tmp_path / "var" / "run.env").exists()
    text = log.read_text()
    assert "first model: done" in text, text[-3000:]
    active = ModelVersion.objects.get(status=ModelStatus.ACTIVE)
    assert active.training_run is not None
    assert ModelEvent.objects.get().reason.startswith("first model")
    stopped = [line for line in text.splitlines() if line.startswith("[skinsight] stopped")]
    # The web and live servers first, then the workers together (this run used the session's
    # services).
    assert stopped[0] == "[skinsight] stopped web, live pages"
    assert "training worker" in stopped[1] and "heat-map worker" in stopped[1]
    assert stopped[-1].startswith("[skinsight] stopped everything in")

    process, log = start(tmp_path, training_dataset_dir, "second.log", own_s3=True)
    try:
        wait_until(lambda: "keeping the active model" in log.read_text(), 180, "a start", log)
        # A service it started dies: the portal stops, saying why, instead of serving errors.
        weed = int((tmp_path / "var" / "seaweedfs" / "weed.pid").read_text())
        os.kill(weed, signal.SIGKILL)
        assert process.wait(60) == 1
    finally:
        finish(process)
    assert "SeaweedFS stopped unexpectedly; shutting everything down" in log.read_text()
    assert TrainingRun.objects.count() == 1
    assert ModelVersion.objects.get(status=ModelStatus.ACTIVE) == active
    assert "trains one from" not in log.read_text()
