"""The Celery application. The web process uses it only to enqueue tasks by name; `workers/` registers them."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.config.settings")

app = Celery("skinsight")
app.config_from_object("django.conf:settings", namespace="CELERY")

CLASSIFY_TASK = "cases.classify"
RERUN_TASK = "cases.rerun"
TRAIN_TASK = "modelops.train"
EVALUATE_TASK = "modelops.evaluate"
REAP_TASK = "modelops.reap_stale_runs"
IMPORT_TASK = "modelops.import_model"
EXPLAIN_TASK = "cases.explain"
