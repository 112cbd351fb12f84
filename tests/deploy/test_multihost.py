"""The portal across six hosts made on this machine (network namespaces): bench/multihost's run, with
its counts asserted. Skips, saying why, where hosts cannot be made (not root, no iproute2, no
PostgreSQL server binaries)."""

import json
import subprocess
import sys

import pytest

from bench.multihost.__main__ import why_not
from tests.processes import ROOT

REASON = why_not()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(REASON is not None, reason=f"{REASON}")]

UPLOADS = 8


def test_uploads_push_heat_maps_training_and_a_cut_host_across_hosts(
    tiny_bundle, training_dataset_dir, generated_photos, tmp_path
):
    out = tmp_path / "multihost.json"
    photos = next(iter(generated_photos.values())).parent
    done = subprocess.run(
        [sys.executable, "-m", "bench.multihost", "--bundle", str(tiny_bundle),
         "--dataset", str(training_dataset_dir), "--photos", str(photos),
         "--uploads", str(UPLOADS), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    counts = json.loads(out.read_text())["counts"]
    assert counts["hosts_seeing_only_their_own_files"] == 5
    assert counts["uploads"] >= 2 * UPLOADS + 3 and counts["refused"] == 0
    assert counts["done"] == counts["uploads"]
    assert counts["lost"] == 0 and counts["duplicated"] == 0
    assert counts["pushed"] == 2
    assert counts["taken_by_second_host"] > 0
    assert counts["held_at_cut"] > 0
    assert counts["redelivered_after_cut"] == counts["held_at_cut"]
    assert counts["heat_maps_done"] > 0
    assert counts["promoted"] and counts["served_by_promoted"] == 3
