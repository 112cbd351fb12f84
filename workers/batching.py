"""Micro-batching for the inference queue: one model call for several waiting jobs.

Each upload is still one message with one case id. A task class with `MicroBatchTask` as base
replaces Celery's per-message strategy in the worker's main process: messages are gathered and
handed to a pool child as one list, which the task's `run_batch` finishes job by job.

* **adaptive flushing**: a batch goes to a child as soon as one is free, so an upload at idle
  waits for nothing; while every child is busy, jobs gather until `flush_every` are waiting,
  `flush_interval` seconds have passed, or a child comes free;
* **one message, one outcome**: `run_batch` must end every job itself (its result, its failure
  or its retry). Messages are acknowledged when the batch returns (late), so a batch whose
  worker dies is never lost;
* **a lost batch is split up**: when a child dies mid-batch (killed, out of memory, hard time
  limit), each of its jobs is published again marked `alone`, and runs in a batch of its own:
  a photo that kills its worker then fails alone after `CLASSIFY_MAX_ATTEMPTS`, its neighbours
  are classified;
* jobs with a countdown (retries) wait in the main process without holding a prefetch slot,
  as Celery's own strategy does.

celery-batches does the buffering part but pins Celery below 5.7 and acknowledges a lost batch
as if it had succeeded; hence this class.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from celery import Task, signals
from celery.utils.imports import symbol_by_name
from celery.utils.time import timezone
from celery.worker.request import create_request_cls
from kombu.asynchronous.timer import to_timestamp

from webapp.config.celery import app, enqueue

logger = logging.getLogger(__name__)

ALONE = "alone"


@dataclass(frozen=True)
class Job:
    """What a pool child gets of one message (picklable)."""

    id: str
    args: tuple
    kwargs: dict
    retries: int

    @property
    def alone(self) -> bool:
        return bool(self.kwargs.get(ALONE))


def run_batch_in_child(task_name: str, jobs: list[Job]) -> Any:
    """Runs in the pool child: the registered task finishes every job of the batch."""
    return app.tasks[task_name].run_batch(jobs)


class MicroBatchTask(Task):
    abstract = True
    #: most jobs in one batch
    flush_every = 8
    #: seconds a job may wait for others while every child is busy
    flush_interval = 0.02

    def run(self, *args, **kwargs):
        # Called directly (eagerly, in tests or a shell): a batch of one.
        retries = int(getattr(self.request, "retries", 0) or 0)
        return self.run_batch([Job(self.request.id or "", tuple(args), kwargs, retries)])[0]

    def run_batch(self, jobs: list[Job]) -> list[Any]:
        """Finish every job (result, failure or retry) and return one outcome per job."""
        raise NotImplementedError

    # --- the worker's main process --------------------------------------------------------

    def Strategy(self, task, app, consumer):
        request_class = create_request_cls(
            symbol_by_name(task.Request),
            task,
            consumer.pool,
            consumer.hostname,
            consumer.event_dispatcher,
            app=app,
        )
        self._pool = consumer.pool
        self._timer = consumer.timer
        # Read at the time of use: the consumer makes its QoS after the strategies, and a new one
        # each time it reconnects to the broker.
        self._consumer = consumer
        self._slots = max(1, int(consumer.pool.limit or 1))
        self._waiting: list = []
        self._in_flight = 0
        self._flush_timer = None

        def on_message(message, body, ack, reject, callbacks, **kwargs):
            # Protocol 2 only (Celery's default since 4.0): headers and body as sent.
            request = request_class(
                message,
                on_ack=ack,
                on_reject=reject,
                app=app,
                hostname=consumer.hostname,
                eventer=consumer.event_dispatcher,
                task=task,
                connection_errors=consumer.connection_errors,
                body=message.body,
                headers=message.headers,
                decoded=False,
                utc=app.uses_utc_timezone(),
            )
            signals.task_received.send(sender=consumer, request=request)
            if request.eta:
                self._hold_until_eta(request, app)
            else:
                self._add(request)

        return on_message

    def _hold_until_eta(self, request, app) -> None:
        # A retry's countdown: the message stays unacknowledged here, but frees its prefetch
        # slot meanwhile, or a few retries would stop the worker from taking new uploads.
        if request.utc:
            eta = to_timestamp(timezone.to_system(request.eta))
        else:
            eta = to_timestamp(request.eta, app.timezone)
        self._consumer.qos.increment_eventually()

        def ready():
            self._consumer.qos.decrement_eventually()
            self._add(request)

        self._timer.call_at(eta, ready, priority=6)

    def _add(self, request) -> None:
        self._waiting.append(request)
        if self._in_flight < self._slots or len(self._waiting) >= self.flush_every:
            self._flush()
        elif self._flush_timer is None:
            self._flush_timer = self._timer.call_after(self.flush_interval, self._on_timer)

    def _on_timer(self) -> None:
        self._flush_timer = None
        self._flush()

    def _flush(self) -> None:
        """Send what waits: jobs marked alone one by one, the rest in batches of flush_every."""
        waiting, self._waiting = self._waiting, []
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        alone = [r for r in waiting if r.kwargs.get(ALONE)]
        together = [r for r in waiting if not r.kwargs.get(ALONE)]
        for request in alone:
            self._send([request])
        for start in range(0, len(together), self.flush_every):
            self._send(together[start : start + self.flush_every])

    def _send(self, requests: list) -> None:
        jobs = [
            Job(r.id, tuple(r.args), dict(r.kwargs), int(r.request_dict.get("retries") or 0))
            for r in requests
        ]
        self._in_flight += 1

        def on_return(result) -> None:
            self._in_flight -= 1
            for request in requests:
                request.acknowledge()
            if self._waiting:
                self._flush()

        def on_lost(exc_info) -> None:
            self._in_flight -= 1
            logger.error(
                "a batch of %s %s job(s) was lost with its worker (%s); each is sent again alone",
                len(requests),
                self.name,
                getattr(exc_info, "exception", exc_info),
            )
            for request in requests:
                self._send_again_alone(request)
            if self._waiting:
                self._flush()

        self._pool.apply_async(
            run_batch_in_child,
            args=(self.name, jobs),
            callback=on_return,
            error_callback=on_lost,
            soft_timeout=self.soft_time_limit,
            timeout=self.time_limit,
        )

    def _send_again_alone(self, request) -> None:
        """Publish the job again marked alone, then acknowledge the lost delivery. Should this
        process die in between, the unacknowledged message comes back as well: a duplicate
        that the case's claim turns into a no-op, never a loss."""
        try:
            enqueue(
                self.name,
                *request.args,
                kwargs={**request.kwargs, ALONE: True},
                retries=int(request.request_dict.get("retries") or 0),
            )
        except Exception:
            logger.exception(
                "could not send job %s again; it returns after the visibility timeout", request.id
            )
            return
        request.acknowledge()
