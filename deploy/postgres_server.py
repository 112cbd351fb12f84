"""A PostgreSQL server of its own (a fresh cluster in a folder), for a host of the multi-host run.

The portal normally uses a server it is given (``DATABASE_URL``); this one exists so that a network of
hosts made on one machine has its database on a host of its own, reached over that network only. It
uses the machine's PostgreSQL binaries (Debian's ``postgresql`` package) and, run as root, runs the
server as the ``postgres`` system user, as PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local_services import stop_process, wait_started


def postgres_bin_dir() -> Path:
    """The newest installed server's binaries (``initdb``, ``postgres``)."""
    found = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if p.parts[-3].isdigit()),
        key=lambda p: int(p.parts[-3]),
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise FileNotFoundError(
        "PostgreSQL's initdb was not found (Debian: apt-get install postgresql)"
    )


def _as_server_user() -> list[str]:
    """The command prefix that runs a program as the user the cluster belongs to."""
    if os.geteuid() != 0:
        return []
    pwd.getpwnam("postgres")  # KeyError: no such user to run the server as
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class PostgresServer:
    """A cluster in ``data_dir`` listening on ``ip:port``, trusting ``trusted`` (a CIDR), with one
    database, ``database``, owned by ``user``."""

    name = "PostgreSQL"

    data_dir: Path
    ip: str
    trusted: str
    port: int = 5432
    user: str = "skinsight"
    database: str = "skinsight"
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"postgres://{self.user}@{self.ip}:{self.port}/{self.database}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> PostgresServer:
        binaries, prefix = postgres_bin_dir(), _as_server_user()
        cluster = self.data_dir / "cluster"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if prefix:
            shutil.chown(self.data_dir, "postgres", "postgres")
        subprocess.run(
            [*prefix, str(binaries / "initdb"), "-D", str(cluster), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        with (cluster / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.trusted} trust\n")
        log_path = self.data_dir / "postgres.log"
        log = log_path.open("ab")
        self.process = subprocess.Popen(
            [*prefix, str(binaries / "postgres"), "-D", str(cluster),
             "-c", f"listen_addresses={self.ip}", "-p", str(self.port),
             # Its socket in its own folder: never the machine's /var/run/postgresql.
             "-c", f"unix_socket_directories={self.data_dir}",
             "-c", "fsync=off", "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_started(self.name, self.process, self.port, self.ip, timeout, log_path, self.stop)
        psql = [*prefix, str(binaries / "psql")]
        for statement in (
            f"CREATE ROLE {self.user} LOGIN CREATEDB",
            f"CREATE DATABASE {self.database} OWNER {self.user}",
        ):
            subprocess.run(
                [*psql, "-h", str(self.data_dir), "-p", str(self.port), "-U", "postgres",
                 "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", statement],
                check=True, capture_output=True,
            )  # fmt: skip
        return self

    def stop(self) -> None:
        stop_process(self.process)
