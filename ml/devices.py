"""Which device training will run on, said in words and recorded with the run."""

from __future__ import annotations

import os
import platform
from typing import Any


def training_device() -> dict[str, Any]:
    """``{"kind": "gpu" | "cpu", "description", "mixed_precision"}`` for this process.

    A GPU trains with mixed precision (float16 compute, float32 weights); a CPU gains nothing from it.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name = details.get("device_name") or gpus[0].name
        count = f"{len(gpus)} x " if len(gpus) > 1 else ""
        return {
            "kind": "gpu",
            "description": f"GPU: {count}{name}, mixed precision",
            "mixed_precision": True,
        }
    cpu = platform.processor() or platform.machine()
    return {
        "kind": "cpu",
        "description": f"CPU: {os.cpu_count()} cores ({cpu}), float32",
        "mixed_precision": False,
    }
