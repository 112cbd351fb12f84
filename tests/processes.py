"""Real worker and web-server processes for integration and browser tests."""

import ast
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from deploy import commands
from deploy.local_services import free_port, stop_process, wait_for_port

ROOT = Path(__file__).resolve().parents[1]


def service_env() -> dict[str, str]:
    """The environment a child process needs to share this test session's database and services."""
    from django.db import connection

    env = dict(os.environ)
    db = connection.settings_dict
    if db["ENGINE"].endswith("postgresql"):
        env["DATABASE_URL"] = (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    env["PYTHONPATH"] = str(ROOT)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    # The session already started these; children must not start their own.
    env.pop("SKINSIGHT_TEST_START_S3", None)
    env.pop("SKINSIGHT_TEST_START_REDIS", None)
    return env


def _spawn(
    command: list[str], log_path: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen:
    log = log_path.open("ab")
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**service_env(), **(extra_env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{time.monotonic_ns()}"


def start_worker(
    log_path: Path, concurrency: int = 1, extra_env: dict[str, str] | None = None
) -> subprocess.Popen:
    return _spawn(commands.inference_worker(_unique("test"), concurrency), log_path, extra_env)


def start_explain_worker(log_path: Path) -> subprocess.Popen:
    return _spawn(commands.explain_worker(_unique("test-explain")), log_path)


def start_training_worker(log_path: Path) -> subprocess.Popen:
    return _spawn(commands.training_worker(_unique("test-training")), log_path)


def start_web(log_path: Path) -> tuple[tuple[subprocess.Popen, subprocess.Popen], str]:
    """The web server and the live pages' socket server (both log to ``log_path``); the pages'
    address."""
    port, live_port = free_port(), free_port()
    web = _spawn(commands.web("127.0.0.1", port), log_path, {"LIVE_PORT": str(live_port)})
    live = _spawn(commands.live("127.0.0.1", live_port), log_path)
    wait_for_port(port, 60, web)
    wait_for_port(live_port, 60, live)
    return (web, live), f"http://127.0.0.1:{port}"


def stop(process: subprocess.Popen | tuple[subprocess.Popen, ...] | None) -> None:
    for each in process if isinstance(process, tuple) else (process,):
        stop_process(each, timeout=30)


def wait_until(condition: Callable[[], bool], timeout: float, what: str, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")


def modules_loaded(statements: str, watched: tuple[str, ...], env: dict | None = None) -> list[str]:
    """Which of ``watched`` (top-level names) a fresh interpreter holds after ``statements``:
    other tests' imports cannot hide one there."""
    code = (
        f"import sys; {statements}; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {watched!r} or m in {watched!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])
