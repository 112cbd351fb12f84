"""Is this inference worker ready: are its children alive, with the active model loaded and warm?

Each inference child notes the version it holds warm in ``WORKER_HEALTH_DIR/<worker pid>/<child
pid>.json`` after loading it (``note_warm``). The worker's main process reads those notes, keeps
the live children's, and compares them with the active version: ``/healthz`` on
``WORKER_METRICS_PORT`` answers 200 when all of the pool's children hold it warm, 503 otherwise (just
started, a promotion not yet loaded, a broken bundle), with the report as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings

from webapp.metrics import QueueDepth, exposition
from webapp.modelops.selectors import model_version_get_active

logger = logging.getLogger(__name__)


def _worker_dir(worker_pid: int) -> Path:
    return Path(settings.WORKER_HEALTH_DIR) / str(worker_pid)


def note_warm(version_name: str, engine: str) -> None:
    """In an inference child: record that it holds ``version_name`` warm."""
    folder = _worker_dir(os.getppid())
    folder.mkdir(parents=True, exist_ok=True)
    note = {
        "pid": os.getpid(),
        "version": version_name,
        "engine": engine,
        "warm_since": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    scratch = folder / f".{os.getpid()}.tmp"
    scratch.write_text(json.dumps(note))
    scratch.replace(folder / f"{os.getpid()}.json")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_health(worker_pid: int, children_expected: int) -> dict:
    """The health of one worker (its main process id), from its live children's notes."""
    folder = _worker_dir(worker_pid)
    children = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            note = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(note["pid"])):
            children.append(note)
        else:
            path.unlink(missing_ok=True)  # a child that died (or was replaced) is no evidence
    active = model_version_get_active()
    active_name = active.name if active else None
    warm = [c for c in children if c["version"] == active_name]
    alive = _alive(worker_pid)
    return {
        "worker_pid": worker_pid,
        "alive": alive,
        "active_version": active_name,
        "children": children,
        "children_expected": children_expected,
        "healthy": alive and len(warm) >= children_expected,
    }


def _app(worker_pid: int, children_expected: int):
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            queues = QueueDepth(settings.CELERY_BROKER_URL, ("inference",))
            start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
            return [exposition(queues)]
        if path == "/healthz":
            report = worker_health(worker_pid, children_expected)
            status = "200 OK" if report["healthy"] else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [json.dumps(report).encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"try /metrics or /healthz\n"]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # scrapes every few seconds are not news
        pass


def serve(port: int, children: int) -> WSGIServer:
    """In the worker's main process: /metrics and /healthz on ``port``, in a daemon thread;
    healthy once all ``children`` hold the active model warm."""
    app = _app(os.getpid(), children)
    server = make_server("0.0.0.0", port, app, handler_class=_QuietHandler)  # noqa: S104
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("metrics and health on port %s", port)
    return server
