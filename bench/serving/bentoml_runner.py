"""(c) The best peer: BentoML 1.4 with adaptive batching over the bundle's ONNX model.

BentoML pins its own versions of many packages (pydantic, starlette, opentelemetry, ...), so
it lives in its own virtual environment under ``var/bench`` rather than in ours; the service
module it serves (``bentoml_service.py``) therefore imports nothing from this repository.
This module runs in our environment: it builds that venv once, starts ``bentoml serve`` as a
subprocess and drives it with the same load client as the other baselines.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import requests

from bench.serving.load import (
    free_port,
    run_load,
    run_server_load,
    start_server,
    stop_server,
    wait_until_answers,
)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VENV = ROOT / "var" / "bench" / "bentoml-venv"
PYTHON = "python3.11"
PACKAGES = ("bentoml==1.4.40", "onnxruntime==1.32.0", "pillow==13.0.0", "numpy")
SERVICE = "bentoml_service:SkinSightOnnx"
BUNDLE_ENV = "SKINSIGHT_BENTOML_BUNDLE"  # read by bentoml_service, which cannot import us
STARTUP_SECONDS = 120.0
# Enough requests for BentoML's dispatcher to train its latency model before timing starts.
WARMUP_REQUESTS = 32
DESIGN = (
    "BentoML 1.4, one worker, adaptive batching (one image per request) over ONNX Runtime "
    "(CPUExecutionProvider); per image: Pillow draft decode, float32 bilinear resize"
)


def measure_bentoml(
    bundle_dir: Path, photos: Sequence[Path], *, total: int = 300, clients: int = 8
) -> dict:
    """Serve ``bentoml_service`` with ``bentoml serve`` and load it with ``clients`` threads.

    Raises RuntimeError saying why when BentoML cannot be installed or cannot serve here. The
    server is always stopped, even on failure.
    """
    bentoml = ensure_venv()
    uploads = [(Path(photo).name, Path(photo).read_bytes()) for photo in photos]
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def send(session: requests.Session, index: int) -> requests.Response:
        name, data = uploads[index % len(uploads)]
        files = {"images": (name, data, "image/jpeg")}
        return session.post(f"{base}/classify", files=files, timeout=120)

    with tempfile.TemporaryDirectory(prefix="bentoml-serve-") as scratch:
        log = Path(scratch) / "bentoml.log"
        server = start_server(
            [str(bentoml), "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)],
            log=log,
            env=_server_env(bundle_dir, Path(scratch)),
            cwd=HERE,
        )
        try:
            wait_until_answers(server, lambda: _ready(base), log=log, timeout=STARTUP_SECONDS)
            warmup = run_load(send, total=WARMUP_REQUESTS, clients=clients)
            if warmup["errors"] == WARMUP_REQUESTS:
                raise RuntimeError(f"BentoML answers no request:\n{log.read_text()[-4000:]}")
            result = run_server_load(server, send, total, clients)
        finally:
            stop_server(server)
    return {**result, "workers": 1, "design": DESIGN}


def _server_env(bundle_dir: Path, scratch: Path) -> dict[str, str]:
    # BentoML's home (model store, logs) goes to scratch, not ~/bentoml; no usage tracking:
    # the benchmark machine has no internet and must not wait on it.
    return {
        BUNDLE_ENV: str(Path(bundle_dir).resolve()),
        "BENTOML_HOME": str(scratch / "home"),
        "BENTOML_DO_NOT_TRACK": "true",
    }


def _ready(base: str) -> bool:
    return requests.get(f"{base}/readyz", timeout=5).ok


def ensure_venv(venv: Path = VENV) -> Path:
    """Create BentoML's venv when missing and return its ``bentoml`` executable.

    A venv left half-built by an interrupted install is completed, not trusted: pip is rerun
    until the executable exists.
    """
    bentoml = venv / "bin" / "bentoml"
    if bentoml.exists():
        return bentoml
    if not (venv / "bin" / "python").exists():
        print(f"bentoml: creating {venv} with {PYTHON}", flush=True)
        _check_run([PYTHON, "-m", "venv", str(venv)], "cannot create the BentoML venv")
    print(f"bentoml: installing {' '.join(PACKAGES)} (a few minutes)", flush=True)
    _check_run(
        [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", *PACKAGES],
        "cannot install BentoML",
    )
    if not bentoml.exists():
        raise RuntimeError(f"BentoML installed but {bentoml} is missing")
    return bentoml


def _check_run(command: list[str], what: str) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise RuntimeError(f"{what}: {exc}") from exc
    if result.returncode != 0:
        raise RuntimeError(
            f"{what}: {' '.join(command)} exited {result.returncode}:\n{result.stderr[-4000:]}"
        )


if __name__ == "__main__":
    # Builds the venv ahead of a benchmark run: python -m bench.serving.bentoml_runner
    print(ensure_venv())
