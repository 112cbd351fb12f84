"""A worker's main process loads its tasks and signal handlers without TensorFlow: the children it
forks import it themselves (a TensorFlow runtime inherited across fork is not safe to use, and costs
every child its memory)."""

from tests.processes import modules_loaded, service_env


def test_loading_the_worker_app_does_not_import_tensorflow():
    env = {**service_env(), "DJANGO_SETTINGS_MODULE": "webapp.config.settings"}
    loaded = modules_loaded(
        "import django; django.setup(); import workers.app, workers.tasks, workers.signals",
        ("tensorflow", "keras"),
        env,
    )
    assert loaded == []
