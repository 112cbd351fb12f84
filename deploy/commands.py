"""The command lines of SkinSight's processes, in one place: `make run`, the tests and the images use them."""

from __future__ import annotations

import sys

PY = sys.executable


def inference_worker(name: str, concurrency: int = 1) -> list[str]:
    """Classification: many short jobs, acknowledged late, one prefetched per child."""
    return [PY, "-m", "celery", "-A", "workers.app", "worker", "-Q", "inference",
            "-c", str(concurrency), "--prefetch-multiplier", "1", "--without-gossip",
            "--without-mingle", "--loglevel", "INFO", "-n", f"{name}@%h"]  # fmt: skip


def training_worker(name: str) -> list[str]:
    """Training: one run at a time, nothing prefetched (a waiting run must stay in the queue for
    another worker), and a fresh child per run so TensorFlow's memory is returned between runs."""
    return [PY, "-m", "celery", "-A", "workers.app", "worker", "-Q", "training", "-c", "1",
            "--disable-prefetch", "--max-tasks-per-child", "1", "--without-gossip",
            "--without-mingle", "--loglevel", "INFO", "-n", f"{name}@%h"]  # fmt: skip


def beat(schedule_file: str) -> list[str]:
    """The scheduler of periodic jobs (the reaper of dead training runs)."""
    return [PY, "-m", "celery", "-A", "workers.app", "beat", "--schedule", schedule_file,
            "--loglevel", "INFO"]  # fmt: skip


def web(host: str, port: int) -> list[str]:
    return [PY, "-m", "uvicorn", "webapp.config.asgi:application", "--host", host,
            "--port", str(port), "--log-level", "info", "--lifespan", "off"]  # fmt: skip
