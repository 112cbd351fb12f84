"""A worker's main process loads its tasks and signal handlers without TensorFlow: the children it
forks import it themselves (a TensorFlow runtime inherited across fork is not safe to use, and costs
every child its memory)."""

import subprocess
import sys

from tests.processes import ROOT, service_env


def test_loading_the_worker_app_does_not_import_tensorflow():
    code = (
        "import django, sys; django.setup(); "
        "import workers.app, workers.tasks, workers.signals; "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    env = {**service_env(), "DJANGO_SETTINGS_MODULE": "webapp.config.settings"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "[]"
