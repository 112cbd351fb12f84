"""Fault scripts: a stream of uploads through real processes and services, a fault while it runs, counts.

    make faults                                   # every scenario (about 20 minutes)
    .venv/bin/python -m bench.faults s3-stopped poison-job

For each scenario: uploads submitted / accepted / completed / failed with a reason / lost /
duplicated, the most deliveries of one job, the time from the fault's end until every accepted
upload finished, and rows and objects that do not match (`manage.py reconcile --check-objects`).
Results are merged by scenario into docs/benchmarks/faults.json; `python -m bench.reliability`
puts them into docs/reliability.md. Not part of the test suite.

The model served is a tiny CNN trained here on generated photos (the faults are about jobs, not
answers); each photo's decoding is slowed by FAULT_DECODE_DELAY_MS so that jobs are in flight
when a fault strikes, as with a model of realistic size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.bundles import tiny_bundle
from bench.faults.scenarios import SCENARIOS, run
from bench.portal import ROOT

RESULTS = ROOT / "docs" / "benchmarks" / "faults.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "scenarios", nargs="*", help=f"any of: {', '.join(SCENARIOS)} (default: all)"
    )
    parser.add_argument("--bundle", type=Path, help="a model bundle to serve (default: tiny CNN)")
    args = parser.parse_args(argv)
    # Stopped from outside (timeout, a service manager): stop the portal's processes on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"no such scenario: {', '.join(unknown)}; there are {', '.join(SCENARIOS)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    bundle = args.bundle or tiny_bundle()
    for name in args.scenarios or list(SCENARIOS):
        outcome = run(SCENARIOS[name], bundle)
        outcome["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        outcome["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
        outcome["command"] = "python -m bench.faults " + name
        # Read again now: other scenarios' results may have been written meanwhile.
        results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"scenarios": {}}
        results["scenarios"][name] = outcome
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    bad = [
        name
        for name, r in results["scenarios"].items()
        if r["lost"] or r["duplicated"] or r["server_errors_500"]
    ]
    print(
        f"results: {RESULTS.relative_to(ROOT)}" + (f"; NOT CLEAN: {', '.join(bad)}" if bad else "")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
