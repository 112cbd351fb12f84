"""var/run.env is read only while the `make run` that wrote it runs: a file left by a killed one, whose
process number now belongs to another program, is ignored."""

import os

from deploy.run_env import load_run_env


def test_a_run_env_whose_process_is_not_make_run_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("SKINSIGHT_VAR_DIR", str(tmp_path))
    # This test process is alive, but it is not deploy.run_local.
    (tmp_path / "run.env").write_text(
        f"SKINSIGHT_RUN_PID={os.getpid()}\nREDIS_URL=redis://gone:1/0\n"
    )
    monkeypatch.delenv("REDIS_URL", raising=False)

    load_run_env()

    assert "REDIS_URL" not in os.environ
