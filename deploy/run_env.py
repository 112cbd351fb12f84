"""The addresses `make run` gave its services, for commands run from another shell while it runs.

`make run` starts Valkey and SeaweedFS on free ports and hands the addresses to its own processes through
the environment; a second terminal does not have them. While it runs, `make run` writes them to
`var/run.env` (readable by its user only) and removes the file when it stops; `manage.py` reads it for
whatever its own environment does not set, and only while the `make run` that wrote it is running.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = (
    "REDIS_URL",
    "S3_ENDPOINT_URL",
    "S3_BUCKET",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "DATABASE_URL",
    "PROMETHEUS_MULTIPROC_DIR",
)
PID_KEY = "SKINSIGHT_RUN_PID"


def run_env_path() -> Path:
    return Path(os.environ.get("SKINSIGHT_VAR_DIR", ROOT / "var")) / "run.env"


def write_run_env() -> Path:
    path = run_env_path()
    lines = [f"{PID_KEY}={os.getpid()}"]
    lines += [f"{key}={os.environ[key]}" for key in KEYS if os.environ.get(key)]
    partial = path.with_suffix(".partial")
    partial.write_text("\n".join(lines) + "\n")
    partial.chmod(0o600)
    os.replace(partial, path)
    return path


def remove_run_env() -> None:
    run_env_path().unlink(missing_ok=True)


def _is_make_run(pid: int) -> bool:
    # Its command line, not merely a live process: after a crash the number may be someone else's.
    try:
        return b"deploy.run_local" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def load_run_env() -> None:
    """Fill in what this process's environment lacks from a running `make run`'s file."""
    path = run_env_path()
    try:
        text = path.read_text()
    except OSError:
        return
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    pid = values.pop(PID_KEY, "")
    if not pid.isdigit() or not _is_make_run(int(pid)):
        return  # left by a `make run` that was killed: its services are gone too
    for key, value in values.items():
        if key in KEYS:
            os.environ.setdefault(key, value)
