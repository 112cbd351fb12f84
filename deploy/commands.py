"""The command lines of SkinSight's processes, in one place: `make run`, the tests and the images use them.

`python -m deploy.commands ROLE` runs one (the container images' commands): web, live, inference-worker,
explain-worker, training-worker or scheduler.
"""

from __future__ import annotations

import os
import shutil
import sys

PY = sys.executable


def inference_worker(name: str, concurrency: int = 1) -> list[str]:
    """Classification: many short jobs in micro-batches, acknowledged late; each child may have
    a batch prefetched (CELERY_WORKER_PREFETCH_MULTIPLIER = INFERENCE_BATCH_SIZE)."""
    return [PY, "-m", "celery", "-A", "workers.app", "worker", "-Q", "inference",
            "-c", str(concurrency), "--without-gossip",
            "--without-mingle", "--loglevel", "INFO", "-n", f"{name}@%h"]  # fmt: skip


def explain_worker(name: str) -> list[str]:
    """Heat maps: Keras gradients, one job at a time, away from the classification worker so a
    result never waits behind an explanation; one job prefetched, acknowledged late."""
    return [PY, "-m", "celery", "-A", "workers.app", "worker", "-Q", "explain", "-c", "1",
            "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle",
            "--loglevel", "INFO", "-n", f"{name}@%h"]  # fmt: skip


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


def web_processes() -> int:
    """``WEB_CONCURRENCY``, else one per core: each process serves ``web_threads()`` requests at
    once, so uploads overlap while others wait on the object store or the database."""
    return int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)


def web_threads() -> int:
    return int(os.environ.get("WEB_THREADS") or 4)


def web(host: str, port: int, *, behind_proxy: bool = False) -> list[str]:
    """Pages and the API over plain HTTP: Django's WSGI handler under gunicorn's threaded workers.
    Under ASGI the same upload cost a third more CPU in the web tier (docs/performance.md), so
    only WebSockets go through ASGI (`live`). ``behind_proxy``: the address the proxy in front
    passes in X-Forwarded-For is the client's (the container image)."""
    app = (
        "webapp.config.wsgi:proxied_application"
        if behind_proxy
        else "webapp.config.wsgi:application"
    )
    return [PY, "-m", "gunicorn", app, "--bind", f"{host}:{port}",
            "--workers", str(web_processes()), "--threads", str(web_threads()),
            "--worker-class", "gthread", "--access-logfile", "-"]  # fmt: skip


def live(host: str, port: int, *, behind_proxy: bool = False) -> list[str]:
    """The live pages' WebSockets (and /healthz for probes) under uvicorn: one process holds many
    idle sockets; ``LIVE_CONCURRENCY`` processes share the port. The pages reach it at their own
    address behind a proxy that routes ``/ws/`` to it; with no proxy in front (`make run`, tests),
    the web processes are started with ``LIVE_PORT`` set to ``port`` and the pages use that."""
    proxy = ["--proxy-headers"] if behind_proxy else []
    return [PY, "-m", "uvicorn", "webapp.config.asgi:application", "--host", host,
            "--port", str(port), "--workers", os.environ.get("LIVE_CONCURRENCY") or "1",
            "--log-level", "info", "--lifespan", "off", *proxy]  # fmt: skip


ROLES = {
    "web": lambda: web("0.0.0.0", int(os.environ.get("PORT", "8000")), behind_proxy=True),  # noqa: S104
    "live": lambda: live("0.0.0.0", int(os.environ.get("PORT", "8001")), behind_proxy=True),  # noqa: S104
    "inference-worker": lambda: inference_worker(
        "inference", int(os.environ.get("WORKER_CONCURRENCY", "1"))
    ),
    "explain-worker": lambda: explain_worker("explain"),
    "training-worker": lambda: training_worker("training"),
    "scheduler": lambda: beat(os.environ.get("BEAT_SCHEDULE_FILE", "/tmp/celerybeat-schedule")),  # noqa: S108
}


def fresh_metrics_dir() -> None:
    """Create ``PROMETHEUS_MULTIPROC_DIR`` empty: files left by earlier processes would be summed
    into this start's metrics."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ROLES:
        raise SystemExit(f"usage: python -m deploy.commands {{{','.join(ROLES)}}}")
    command = ROLES[args[0]]()
    fresh_metrics_dir()
    # Replace this process, so signals from the container runtime reach the server itself.
    os.execv(command[0], command)  # noqa: S606  (our own fixed command line)


if __name__ == "__main__":
    main()
