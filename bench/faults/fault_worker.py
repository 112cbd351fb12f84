"""The inference worker's Celery app with faults injected, for the fault scripts only.

`celery -A bench.faults.fault_worker worker ...` runs the real worker (same tasks, same settings)
with two knobs read from the environment, applied where a job decodes its photo:

* ``FAULT_DECODE_DELAY_MS``: every photo takes this much longer, as with a model of realistic
  size (the fault scripts serve a tiny one), so that jobs are in flight when a fault strikes;
* ``FAULT_KILL_SIZE`` (``WIDTHxHEIGHT``): a photo of exactly this size kills the process that
  decodes it with SIGKILL, as the kernel's out-of-memory killer would: a job that kills its
  worker every time.
"""

import io
import os
import signal
import time

from PIL import Image

from workers.app import app  # sets Django up: first

# isort: split
from workers import inference

__all__ = ["app"]

_DELAY = int(os.environ.get("FAULT_DECODE_DELAY_MS", "0")) / 1000
_KILL_SIZE = (
    tuple(int(n) for n in os.environ["FAULT_KILL_SIZE"].split("x"))
    if os.environ.get("FAULT_KILL_SIZE")
    else None
)
_model_input = inference._model_input


def _model_input_with_faults(predictor, data: bytes):
    if _KILL_SIZE and Image.open(io.BytesIO(data)).size == _KILL_SIZE:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(_DELAY)
    return _model_input(predictor, data)


inference._model_input = _model_input_with_faults
