"""Last seen of the sources of committed batches, coalesced per web worker (issue #9 deliverable 6).

A device posting one reading per request made every request pay a second transaction after its own (the
last-seen update: BEGIN, UPDATE, COMMIT with its WAL flush), about a quarter of the request's time. A gevent
web worker (carbonpark/gunicorn.conf.py installs this) instead notes each committed batch's sources here and
writes them together every ``interval`` seconds, one statement for all of them, each source with its own
time (apps.sources.services.state.touch). Last seen is then late by at most that interval; silence is only
flagged after three expected intervals (minutes). A worker stopping gracefully writes what it holds; one
killed loses at most one interval of marks, which the sources' next batch sets again, as when the update
fails. Every other process (MQTT consumer, Celery, tests) keeps updating right after its commit.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from contextvars import ContextVar
from datetime import datetime

log = logging.getLogger(__name__)


class LastSeen:
    def __init__(self, interval: float):
        self.interval = interval
        self.pending: dict[int, datetime] = {}
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None

    def add(self, source_pks, at: datetime) -> None:
        with self.lock:
            pending = self.pending
            for pk in source_pks:
                old = pending.get(pk)
                if old is None or old < at:
                    pending[pk] = at
            if self.timer is None:
                # threading is gevent's in a gevent worker: the timer is a greenlet of the worker
                self.timer = threading.Timer(self.interval, self.flush)
                self.timer.daemon = True
                self.timer.start()

    def flush(self) -> None:
        from django.db import connection, transaction

        from apps.sources.services.state import touch

        with self.lock:
            batch, self.pending, self.timer = self.pending, {}, None
        if not batch:
            return
        try:
            with transaction.atomic():
                touch(batch)
        except Exception:  # noqa: BLE001 - bookkeeping after committed batches, never their outcome
            log.warning("last-seen update of %d source(s) failed; their next batch sets it again", len(batch),
                        exc_info=True)
        finally:
            connection.close()  # this timer's own connection (a pooled one goes back to the pool)


_deferred: LastSeen | None = None


def defer(interval: float = 0.5) -> LastSeen:
    """From now on, this process writes last-seen marks every ``interval`` seconds (a web worker)."""
    global _deferred
    _deferred = LastSeen(interval)
    return _deferred


def deferred() -> LastSeen | None:
    return _deferred


def flush() -> None:
    """Write what is held now (a worker about to exit)."""
    if _deferred is not None:
        _deferred.flush()


_collected: ContextVar[dict[int, datetime] | None] = ContextVar("carbonpark_lastseen_collected", default=None)


@contextlib.contextmanager
def collected():
    """Within the block, the last-seen marks of this context's batches are held in the dict it yields ({source
    pk: latest time}) instead of written after each batch; the caller writes them once, after its own
    transaction commits (``apps.ingestion.services.touch_after_commit``). A batch file ingests hundreds of
    batches in ONE transaction: each would otherwise update the same sources' rows again inside it."""
    marks: dict[int, datetime] = {}
    token = _collected.set(marks)
    try:
        yield marks
    finally:
        _collected.reset(token)


def collecting() -> dict[int, datetime] | None:
    return _collected.get()


def hold(marks: dict[int, datetime], source_pks, at: datetime) -> None:
    for pk in source_pks:
        old = marks.get(pk)
        if old is None or old < at:
            marks[pk] = at
