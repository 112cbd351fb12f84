"""The services host: PostgreSQL, Redis (Valkey) and the S3 store, listening on this host's address only.

Run on that host (``python -m bench.multihost.data_host ADDRESS TRUSTED_CIDR FOLDER``); prints READY once
all three answer, and stops them when told to stop (SIGTERM) or when any of them dies.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from deploy.local_services import RedisServer, S3Server
from deploy.postgres_server import PostgresServer

S3_ACCESS_KEY, S3_SECRET_KEY, BUCKET = "skinsight", "skinsight-lab-secret", "skinsight"
REDIS_PASSWORD = "skinsight-lab-redis"  # noqa: S105  (a throw-away lab server)
POSTGRES_PORT, REDIS_PORT, S3_PORT = 5432, 6379, 8333


def main(address: str, trusted: str, folder: Path) -> int:
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    services = []
    try:
        services.append(PostgresServer(folder / "postgres", address, trusted).start())
        services.append(RedisServer(folder / "valkey", REDIS_PORT, address, REDIS_PASSWORD).start())
        services.append(
            S3Server(
                folder / "s3", S3_ACCESS_KEY, S3_SECRET_KEY, BUCKET, S3_PORT, ip=address
            ).start()
        )
        print("READY", flush=True)
        while not stopping:
            dead = [s.name for s in services if not s.alive()]
            if dead:
                print(f"stopped: {', '.join(dead)} died", flush=True)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        for service in reversed(services):
            service.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
