"""`python -m bench.multihost --bundle DIR --dataset DIR [--photos DIR] [--uploads N] [--json FILE]`

Makes six hosts on this machine (network namespaces on a switch of their own: services, web, two
inference hosts, a training host, a client), starts the portal across them with `make run`'s command
lines, runs bench/multihost/scenario.py from the client host and prints its counts (and writes them to
``--json``). Needs root, iproute2 and PostgreSQL's server binaries. Everything it made is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.multihost import scenario
from bench.multihost.lab import HOSTS, Lab
from deploy import netns
from deploy.postgres_server import postgres_bin_dir

ROOT = Path(__file__).resolve().parents[2]
# The product's clocks, shortened so that a cut host's jobs come back within a minute: the time
# limits and the longest retry back-off that the visibility timeout must exceed, the sweep that puts
# back what a stopped worker held, and the reconciler's.
LAB_SETTINGS = {
    "CLASSIFY_TIME_LIMIT": "10",
    "CLASSIFY_SOFT_TIME_LIMIT": "8",
    "CLASSIFY_MAX_BACKOFF": "10",
    "CELERY_VISIBILITY_TIMEOUT": "25",
    # The cut host's open transaction must release its locks before the other host's claim of
    # the same cases runs out of time.
    "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT": "4",
    "CELERY_UNACKED_RESTORE_INTERVAL": "2",
    "CELERY_UNACKED_RESTORE_THROTTLE": "1",
    "CASE_REQUEUE_AFTER": "10",
    "REAPER_INTERVAL_SECONDS": "5",
    "UPLOAD_RATE": "100000/hour",
    "TRAINING_MIN_IMAGES_PER_CLASS": "3",
    "TRAINING_HEARTBEAT_SECONDS": "1",
    "WEB_CONCURRENCY": "2",
    "DATABASE_POOL_SIZE": "4",
}


def why_not() -> str | None:
    """Why the run cannot happen on this machine, or None."""
    reason = netns.available()
    if reason:
        return reason
    try:
        postgres_bin_dir()
    except FileNotFoundError as exc:
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.multihost", description=__doc__.split("\n")[2]
    )
    parser.add_argument("--bundle", type=Path, required=True, help="a model bundle to serve first")
    parser.add_argument(
        "--dataset", type=Path, required=True, help="a HAM10000-layout folder to train on"
    )
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared/data/fullsize-samples")
    parser.add_argument("--uploads", type=int, default=40, help="uploads per phase (default 40)")
    parser.add_argument("--json", type=Path, help="write the counts here too")
    parser.add_argument(
        "--keep", action="store_true", help="keep the hosts' folders (logs) afterwards"
    )
    args = parser.parse_args(argv)
    reason = why_not()
    if reason:
        print(f"cannot make hosts here: {reason}", file=sys.stderr)
        return 2
    photos = [p.read_bytes() for p in sorted(args.photos.rglob("*.jp*g"))]
    if not photos:
        print(f"no JPEG photos in {args.photos}", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="skinsight-multihost-"))
    started = datetime.now(UTC)
    tag = f"sk{os.getpid()}"
    try:
        with netns.Network(tag, folder) as network:
            for name in HOSTS:
                network.add_host(name)
            netns.enter(network.hosts["client"].namespace)
            lab = Lab(network, LAB_SETTINGS)
            try:
                counts = scenario.run(
                    lab, args.bundle.resolve(), photos, args.dataset.resolve(), args.uploads
                )
            finally:
                lab.stop()
    finally:
        if args.keep:
            print(f"[multihost] the hosts' folders: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    result = {
        "command": "python -m bench.multihost "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": started.isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, one Linux machine, {len(HOSTS)} network namespaces",
        "hosts": list(HOSTS),
        "counts": asdict(counts),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if counts.lost == 0 and counts.duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
