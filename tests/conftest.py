import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from deploy.local_services import RedisServer, S3Server

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


def pytest_collection_modifyitems(items):
    """schemathesis names each API operation's test (``test_x[POST /api/cases/]``) after pytest has
    made its node id from the bare function name (it sets the id pytest 8 kept, not pytest 9's), so
    all 33 share one id, and pytest-xdist, which keeps one test per id, would run one operation.
    The id is made again from the name, as pytest makes a parametrized test's."""
    for item in items:
        if not item.nodeid.endswith(f"::{item.name}"):
            item._id = item.parent.id.child(item.name)
    shared = [nodeid for nodeid, n in Counter(item.nodeid for item in items).items() if n > 1]
    if shared:
        raise pytest.UsageError(
            f"tests share node ids (pytest-xdist would run one of each): {shared}"
        )


@pytest.fixture(scope="session", autouse=True)
def local_services():
    """Start the S3 server (and Redis, if this machine has none) that tests/settings.py chose ports for."""
    started = []
    root = Path(tempfile.mkdtemp(prefix="skinsight-services-"))
    global _S3_SERVER
    try:
        if os.environ.get("SKINSIGHT_TEST_START_REDIS"):
            port = int(os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
            started.append(RedisServer(root / "redis", port=port).start())
        if os.environ.get("SKINSIGHT_TEST_START_S3"):
            port = int(os.environ["S3_ENDPOINT_URL"].rsplit(":", 1)[1])
            _S3_SERVER = S3Server(
                root / "s3",
                access_key=os.environ.get("S3_ACCESS_KEY_ID", "skinsight"),
                secret_key=os.environ.get("S3_SECRET_ACCESS_KEY", "skinsight-local-secret"),
                bucket=os.environ["S3_BUCKET"],
                s3_port=port,
            ).start()
            started.append(_S3_SERVER)
        _purge_broker()
        yield
    finally:
        for service in reversed(started):
            service.stop()
        shutil.rmtree(root, ignore_errors=True)


_S3_SERVER: S3Server | None = None


@pytest.fixture
def frozen_object_store():
    """A function that freezes (SIGSTOP) the tests' S3 server, and thaws it at the end: requests
    hang as they would when a storage host stops answering."""
    import signal

    if _S3_SERVER is None or _S3_SERVER.process is None:
        pytest.skip("the S3 server was not started by the tests, so it cannot be frozen")
    group = _S3_SERVER.process.pid
    frozen = []

    def freeze(stop: bool = True) -> None:
        os.killpg(group, signal.SIGSTOP if stop else signal.SIGCONT)
        frozen.append(stop)

    yield freeze
    if frozen and frozen[-1]:
        os.killpg(group, signal.SIGCONT)


@pytest.fixture
def empty_broker():
    """No job left in the queues by earlier tests of this session, for a test that watches what a
    new worker does first (their rows are gone with their tests; their messages are not)."""
    _purge_broker()


def _purge_broker() -> None:
    """Jobs left by an earlier session would point at rows that no longer exist."""
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"{SHARED_DIR} is absent: real HAM10000 data is only beside the checkout")
    return SHARED_DIR


@pytest.fixture
def s3_client():
    from django.conf import settings

    from webapp.storage.store import s3_client as make_client

    return make_client(
        settings.S3_ENDPOINT_URL, settings.S3_ACCESS_KEY_ID, settings.S3_SECRET_ACCESS_KEY
    )


@pytest.fixture
def bucket_keys(s3_client):
    """A function listing every object key in the test bucket (to prove nothing was left behind)."""
    from django.conf import settings

    def keys(prefix: str = "") -> set[str]:
        found = set()
        paginator = s3_client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=settings.S3_BUCKET, Prefix=prefix):
            found.update(obj["Key"] for obj in page.get("Contents", []))
        return found

    return keys


@pytest.fixture
def broker_queue_length():
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def length(queue: str = "inference") -> int:
        return client.llen(queue)

    return length


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A real model bundle: the paper's basic CNN trained for one epoch on tiny generated images."""
    from ml.train import TrainConfig, train
    from tests.ml.synthetic import write_tiny_dataset

    root = tmp_path_factory.mktemp("tiny-model")
    data = write_tiny_dataset(root / "data", per_class=6, size=32, seed=0)
    return train(
        TrainConfig(
            data_dir=data,
            out_dir=root / "tiny-basic-cnn",
            architecture="basic_cnn",
            image_size=32,
            epochs=1,
            batch_size=8,
        ),
        progress=False,
    )


@pytest.fixture
def sample_photos(shared_dir):
    """Real 600x450 HAM10000 photos, one per class."""
    import csv

    folder = shared_dir / "data" / "fullsize-samples"
    with (folder / "labels.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    first_per_class: dict[str, Path] = {}
    for row in rows:
        first_per_class.setdefault(row["dx"], folder / row["file"])
    return first_per_class


@pytest.fixture
def generated_photos(tmp_path_factory) -> dict[str, Path]:
    """Photos the tests make, one per class, 600x450 like HAM10000's, which pass the retake gate:
    the core end-to-end tests run on them where ../shared is absent."""
    from ml.classes import CLASSES
    from tests.images import jpeg_bytes

    folder = tmp_path_factory.mktemp("generated-photos")
    photos = {}
    for seed, dx in enumerate(CLASSES):
        photos[dx] = folder / f"generated_{dx}.jpg"
        photos[dx].write_bytes(jpeg_bytes(600, 450, seed=seed))
    return photos


@pytest.fixture(params=["generated", "real"])
def upload_photos(request) -> dict[str, Path]:
    """One photo per class: the tests' own, and (skipping where ../shared is absent) real ones."""
    if request.param == "generated":
        return request.getfixturevalue("generated_photos")
    return request.getfixturevalue("sample_photos")


@pytest.fixture
def active_tiny_model(tiny_bundle):
    """Register and activate the tiny bundle through the same command an operator uses."""
    from django.core.management import call_command

    from webapp.modelops.selectors import model_version_get_active

    call_command("import_model", str(tiny_bundle), "--activate", "--name", "tiny-test")
    return model_version_get_active()


@pytest.fixture(scope="session")
def training_dataset_dir(tmp_path_factory):
    """A tiny HAM10000-layout folder (84 images, 42 lesions) a training run can use end to end."""
    from tests.ml.synthetic import write_tiny_dataset

    return write_tiny_dataset(
        tmp_path_factory.mktemp("training-data") / "ham", per_class=12, size=32
    )


@pytest.fixture
def admin(db):
    from tests.factories import AdminFactory

    return AdminFactory()


@pytest.fixture
def registered_dataset(admin, training_dataset_dir):
    from webapp.modelops.services.datasets import dataset_register

    return dataset_register(
        name="tiny-ham",
        location_kind="folder",
        location=str(training_dataset_dir),
        created_by=admin,
    )


# A basic CNN on the tiny images: seconds per run on two cores.
TINY_RUN_OPTIONS = {
    "architecture": "basic_cnn",
    "image_size": 32,
    "head_epochs": 2,
    "batch_size": 8,
    "learning_rate": 0.01,
}


@pytest.fixture
def make_case(db, django_capture_on_commit_callbacks):
    """Create a real case (object in S3, rows, job enqueued) through the service layer."""
    from tests.images import jpeg_bytes
    from webapp.cases.services.uploads import case_create
    from webapp.intake.imaging import normalize_image

    counter = iter(range(10_000))

    def make(patient, uploaded_by=None, **kwargs):
        image = normalize_image(
            jpeg_bytes(seed=next(counter)), max_bytes=10**7, max_pixels=10**7, max_side=2048
        )
        with django_capture_on_commit_callbacks(execute=True):
            return case_create(
                uploaded_by=uploaded_by or patient, patient=patient, image=image, **kwargs
            ).case

    return make
