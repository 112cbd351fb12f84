"""An inference worker warms its model before its first job, and says so: /healthz and /metrics."""

import pytest
import requests
from django.core.management import call_command

from deploy.local_services import free_port
from tests.factories import UserFactory
from tests.images import jpeg_bytes
from tests.processes import start_worker, stop, wait_until
from webapp.cases.models import Case, CaseStatus
from webapp.cases.services.uploads import case_create
from webapp.intake.imaging import normalize_image

# Each test watches what a new worker does first: no job left by earlier tests may reach it.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("empty_broker"),
]


def _get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5)
    except requests.ConnectionError:
        return None


def test_worker_warms_up_before_its_first_job_and_reports_health_and_metrics(
    active_tiny_model, tmp_path
):
    port = free_port()
    log = tmp_path / "worker.log"
    env = {
        "WORKER_METRICS_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "WORKER_HEALTH_DIR": str(tmp_path / "health"),
    }
    (tmp_path / "metrics").mkdir()
    worker = start_worker(log, concurrency=2, extra_env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: (r := _get(f"{base}/healthz")) is not None and r.ok, 120, "healthy", log)
        report = _get(f"{base}/healthz").json()
        assert report["active_version"] == "tiny-test"
        assert len(report["children"]) == 2  # both children warm before any job
        assert {c["version"] for c in report["children"]} == {"tiny-test"}
        assert {c["engine"] for c in report["children"]} == {"onnxruntime-cpu"}
        assert "batch jobs=" not in log.read_text()  # warm-up happened with no job at all

        patient = UserFactory()
        image = normalize_image(jpeg_bytes(), max_bytes=10**7, max_pixels=10**7, max_side=512)
        case_create(uploaded_by=patient, patient=patient, image=image)
        wait_until(
            lambda: Case.objects.filter(status=CaseStatus.DONE).exists(), 60, "classified", log
        )
        text = log.read_text()
        assert text.index("loaded model tiny-test") < text.index("batch jobs=1")
        metrics = _get(f"{base}/metrics").text
        assert 'skinsight_jobs_total{outcome="done"} 1.0' in metrics
        assert "skinsight_batch_jobs_count 1.0" in metrics
        for stage in ("fetch_decode", "infer", "store", "record"):
            assert f'skinsight_job_stage_seconds_count{{stage="{stage}"}} 1.0' in metrics
        assert 'skinsight_queue_depth{queue="inference"} 0.0' in metrics
        assert _get(f"{base}/nothing").status_code == 404
    finally:
        stop(worker)


def test_a_promoted_model_is_loaded_in_every_child_before_any_job_needs_it(
    active_tiny_model, tiny_bundle, tmp_path
):
    port = free_port()
    log = tmp_path / "worker.log"
    env = {
        "WORKER_METRICS_PORT": str(port),
        "WORKER_HEALTH_DIR": str(tmp_path / "health"),
        "MODEL_WATCH_SECONDS": "1",
    }
    worker = start_worker(log, concurrency=2, extra_env=env)
    health = f"http://127.0.0.1:{port}/healthz"
    try:
        wait_until(lambda: (r := _get(health)) is not None and r.ok, 120, "healthy", log)
        call_command("import_model", str(tiny_bundle), "--activate", "--name", "tiny-promoted")
        # Not healthy for the new version until both children hold it; no job is ever sent.
        wait_until(
            lambda: (
                (r := _get(health)) is not None
                and r.ok
                and r.json()["active_version"] == "tiny-promoted"
            ),
            60,
            "the promoted model warm in both children",
            log,
        )
        assert {c["version"] for c in _get(health).json()["children"]} == {"tiny-promoted"}
        text = log.read_text()
        assert text.count("loaded model tiny-promoted") == 2
        assert "batch jobs=" not in text
    finally:
        stop(worker)
