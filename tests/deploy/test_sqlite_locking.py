"""`make run`'s SQLite database: processes that read and then write in one transaction wait for each
other instead of failing with "database is locked"."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Two threads, each with its own connection, each reading and then writing in one transaction while
# the other holds its write: with deferred transactions one of them fails at once.
SCRIPT = """
import threading, time
import django
django.setup()
from django.db import connection, transaction
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE IF NOT EXISTS probe (n integer)")
connection.close()
failures = []
def read_then_write(n):
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM probe")
                time.sleep(0.3)
                cursor.execute("INSERT INTO probe VALUES (%s)", [n])
    except Exception as exc:
        failures.append(repr(exc))
    finally:
        connection.close()
threads = [threading.Thread(target=read_then_write, args=(n,)) for n in range(2)]
for thread in threads: thread.start()
for thread in threads: thread.join()
with connection.cursor() as cursor:
    cursor.execute("SELECT count(*) FROM probe")
    print("rows", cursor.fetchone()[0], "failures", failures)
"""


def test_two_transactions_that_read_then_write_wait_for_each_other(tmp_path):
    env = {
        "DJANGO_SETTINGS_MODULE": "webapp.config.settings",
        "SKINSIGHT_VAR_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "rows 2 failures []"
