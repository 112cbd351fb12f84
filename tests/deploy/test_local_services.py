"""The local SeaweedFS and Valkey never outlive their owner: they die with it, and a start finds and stops
what an earlier owner killed with SIGKILL left behind. SeaweedFS's ports are all different."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import local_services
from deploy.local_services import RedisServer, S3Server, free_ports
from tests.processes import ROOT, wait_until

pytestmark = pytest.mark.slow


def _running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and b"zombie" not in _status(pid)


def _status(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/status").read_bytes().lower()
    except OSError:
        return b""


def test_ports_chosen_together_are_all_different(monkeypatch):
    # Nothing holds a port between two choices, so the same one can come back; the filer then
    # failed to bind the port the master already had.
    offered = iter([21000, 21000, 21001, 21002, 21002, 21003])
    monkeypatch.setattr(local_services, "free_port", lambda: next(offered))
    assert free_ports(3, taken=(21001,)) == [21000, 21002, 21003]


def test_a_seaweedfs_left_by_a_killed_owner_is_stopped_by_the_next_start(tmp_path):
    first = S3Server(tmp_path / "s3", "key", "secret-key-1", "bucket").start()
    second = S3Server(tmp_path / "s3", "key", "secret-key-1", "bucket")
    try:
        second.start()
        assert not first.alive()  # the leftover was stopped, not left holding the folder
        assert second.alive()
        second.client().put_object(Bucket="bucket", Key="k", Body=b"v")
    finally:
        second.stop()
        first.stop()
    assert not (tmp_path / "s3" / "weed.pid").exists()


def test_seaweedfs_dies_with_an_owner_killed_by_sigkill(tmp_path):
    code = (
        "import sys, time; from pathlib import Path; "
        "from deploy.local_services import S3Server; "
        "s = S3Server(Path(sys.argv[1]), 'key', 'secret-key-1', 'bucket').start(); "
        "print(s.process.pid, flush=True); time.sleep(600)"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "s3")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    weed = int(owner.stdout.readline())
    assert _running(weed)
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    wait_until(lambda: not _running(weed), 20, "SeaweedFS to stop after its owner died")


def test_a_valkey_left_behind_is_stopped_by_the_next_start(tmp_path):
    first = RedisServer(tmp_path / "valkey").start()
    second = RedisServer(tmp_path / "valkey")
    try:
        second.start()
        assert not first.alive()
        assert second.alive()
    finally:
        second.stop()
        first.stop()
