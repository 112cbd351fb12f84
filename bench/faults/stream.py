"""A stream of uploads sent the way a careful client sends them, and the count of what became of them.

Each submission carries its own Idempotency-Key and is sent again (same key) after a refused
connection, a timeout, 429 or 5xx, with back-off, until the portal accepts it or `give_up_after`
passes: an upload answered 503 during an outage is retried by its client, so the count says what
the portal did with what it accepted, and a duplicate is two cases for one key.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

import requests

from bench.portal import Portal
from tests.images import jpeg_bytes

FINISHED = ("done", "failed", "rejected")


@dataclass
class Submission:
    key: str
    case_id: str = ""
    tries: int = 0
    answers: list[str] = field(default_factory=list)  # HTTP status or exception name, per try
    accepted_at: float | None = None


class JobStream:
    """``total`` uploads, ``rate`` per second, from ``clients`` threads (each with its own session)."""

    def __init__(
        self,
        portal: Portal,
        name: str,
        total: int,
        *,
        rate: float = 10.0,
        clients: int = 4,
        give_up_after: float = 600.0,
    ) -> None:
        self.portal = portal
        self.name = name
        self.submissions = [Submission(f"{name}-{i:05d}") for i in range(total)]
        self.rate = rate
        self.clients = clients
        self.give_up_after = give_up_after
        self._next = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.photos = [jpeg_bytes(600, 450, seed=seed) for seed in range(16)]
        self.special: dict[int, tuple[int, int]] = {}  # submission index → photo size

    def start(self) -> JobStream:
        self.started = time.monotonic()
        for _ in range(self.clients):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def join(self) -> None:
        for thread in self._threads:
            thread.join()
        self.sent_all_at = time.monotonic()

    def _take(self) -> Submission | None:
        with self._lock:
            if self._next >= len(self.submissions):
                return None
            submission = self.submissions[self._next]
            due = self.started + self._next / self.rate
            self._next += 1
        time.sleep(max(0.0, due - time.monotonic()))
        return submission

    def _client(self) -> None:
        with requests.Session() as session:
            while (submission := self._take()) is not None:
                self._send(session, submission)

    def _send(self, session: requests.Session, submission: Submission) -> None:
        index = int(submission.key.rsplit("-", 1)[1])
        if index in self.special:
            photo = jpeg_bytes(*self.special[index], seed=index)
        else:
            photo = self.photos[index % len(self.photos)]
        deadline = time.monotonic() + self.give_up_after
        wait = 0.5
        while time.monotonic() < deadline:
            submission.tries += 1
            try:
                response = self.portal.upload(session, photo, key=submission.key, timeout=30)
            except requests.RequestException as exc:
                submission.answers.append(type(exc).__name__)
            else:
                submission.answers.append(str(response.status_code))
                if response.status_code in (200, 201):
                    submission.case_id = response.json()["id"]
                    submission.accepted_at = time.monotonic()
                    return
                if response.status_code < 500 and response.status_code != 429:
                    return  # refused for a reason retrying cannot change: counted as refused
                retry_after = response.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    wait = max(wait, float(retry_after))
            time.sleep(min(wait, 5.0))
            wait *= 2

    # Counting -------------------------------------------------------------------------------

    def answers(self) -> dict[str, int]:
        """How often each answer came back, over every try of every submission."""
        return dict(collections.Counter(a for s in self.submissions for a in s.answers))

    def rows(self) -> list[tuple]:
        """(idempotency key, case public id, status, attempts, predictions) of this stream's cases."""
        return self.portal.sql(
            "SELECT c.idempotency_key, c.public_id::text, c.status, c.attempts, "
            "(SELECT count(*) FROM cases_prediction p WHERE p.case_id = c.id) "
            "FROM cases_case c WHERE c.idempotency_key LIKE %s",
            (f"{self.name}-%",),
        )

    def unfinished(self) -> int:
        accepted = sum(1 for s in self.submissions if s.case_id)
        finished = sum(1 for row in self.rows() if row[2] in FINISHED)
        return accepted - finished

    def wait_drained(self, timeout: float, *, progress_every: float = 15.0) -> float | None:
        """Seconds until every accepted upload has finished, or None if some had not by ``timeout``."""
        started = time.monotonic()
        said = started
        while time.monotonic() - started < timeout:
            left = self.unfinished()
            if left <= 0:
                return time.monotonic() - started
            if time.monotonic() - said >= progress_every:
                print(f"    {self.name}: {left} accepted upload(s) not finished yet", flush=True)
                said = time.monotonic()
            time.sleep(1)
        return None

    def tally(self) -> dict:
        rows = self.rows()
        per_key = collections.Counter(row[0] for row in rows)
        statuses = collections.Counter(row[2] for row in rows)
        accepted = [s for s in self.submissions if s.case_id]
        finished_ids = {row[1] for row in rows if row[2] in FINISHED}
        answers = self.answers()
        return {
            "submitted": len(self.submissions),
            "accepted": len(accepted),
            "refused": sum(1 for s in self.submissions if not s.case_id),
            "completed": statuses.get("done", 0),
            "failed_with_reason": statuses.get("failed", 0) + statuses.get("rejected", 0),
            "lost": sum(1 for s in accepted if s.case_id not in finished_ids),
            # Two cases for one submission, or two predictions for one case.
            "duplicated": sum(n - 1 for n in per_key.values() if n > 1)
            + sum(row[4] - 1 for row in rows if row[4] > 1),
            "most_deliveries_of_one_job": max((row[3] for row in rows), default=0),
            "jobs_delivered_more_than_once": sum(1 for row in rows if row[3] > 1),
            "answers": answers,
            "server_errors_500": sum(n for a, n in answers.items() if a == "500"),
        }
