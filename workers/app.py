"""Celery entry point for workers: `celery -A workers.app worker -Q inference`.

Django is set up here, before the task modules import models. TensorFlow is NOT imported here: the prefork
parent must stay free of it, so each child process loads the model itself after the fork.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.config.settings")
django.setup()

import workers.signals  # noqa: E402  (warm-up hooks)
import workers.tasks  # noqa: E402, F401  (registers the tasks)
from webapp.config.celery import app  # noqa: E402

__all__ = ["app"]
