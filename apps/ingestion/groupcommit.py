"""Group commit: the single-reading pushes that arrive together in one web worker share one transaction (issue #9
deliverable 6: the cost of one small request; R-5.2.3.3).

A device's ``POST /api/v1/readings`` of one reading costs PostgreSQL about 0.7 ms, most of it the transaction:
the commit's WAL flush, the snapshot, the per-statement work (bench/README.md, ``http_small.py``). Under load a
worker holds several such requests at once (gevent: one greenlet each), so they are stored together:

- each request is checked in its own greenlet (``prepare_readings``: pure, no database), then queued here;
- when no transaction of this worker's group is open, the request's greenlet leads: it takes everything queued,
  stores each request with ``ingest_readings(prepared=…)`` (the one way in; each in a savepoint of its own, so a
  request that fails leaves the others' readings in), commits once, and hands every request its own result;
- what arrives meanwhile waits for the commit in progress and forms the next group, led by its first request.

Nothing is answered before the commit that stores it (an acknowledged reading survives a crash), no request waits
for a timer (a request alone is stored at once, as before), each request keeps its own batch row, actor, park
rights, channel and answer, and a request is never stored twice (its own ``ingest_readings`` call, once).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from django.db import transaction

from apps.ingestion import metrics

MAX_GROUP = 64  # requests per transaction: one group's latency stays bounded under a flood


@dataclass(eq=False)
class _Pending:
    kwargs: dict
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to lead the next group, not with a result
    result: object = None
    error: BaseException | None = None


class GroupCommit:
    """One per worker process (``GROUP``); threads or greenlets call ``ingest``."""

    def __init__(self, max_group: int = MAX_GROUP):
        self.max_group = max_group
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._leading = False
        self.groups = 0  # transactions committed, and requests stored in them (tests, benches)
        self.requests = 0

    def ingest(self, **kwargs):
        """``ingest_readings(**kwargs)`` (with ``prepared=``), in a transaction shared with the requests queued
        beside it; returns its IngestResult or raises what it raised."""
        item = _Pending(kwargs)
        with self._lock:
            self._queue.append(item)
            lead = not self._leading
            self._leading = True
        if not lead:
            item.done.wait()
            if not item.lead:
                return _outcome(item)
            item.done.clear()
        self._lead()
        return _outcome(item)

    def _lead(self) -> None:
        with self._lock:
            group, self._queue = self._queue[:self.max_group], self._queue[self.max_group:]
        try:
            _store(group)
        finally:
            metrics.PUSH_GROUP_SIZE.observe(len(group))
            with self._lock:
                self.groups += 1
                self.requests += len(group)
                if self._queue:  # the next group's first request leads it
                    nxt = self._queue[0]
                    nxt.lead = True
                    nxt.done.set()
                else:
                    self._leading = False
            for item in group:
                item.lead = False
                item.done.set()


def _store(group: list[_Pending]) -> None:
    from apps.ingestion.services import ingest_readings

    if len(group) == 1:  # alone: exactly the request's own transaction, no savepoint
        item = group[0]
        try:
            item.result = ingest_readings(**item.kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the request it belongs to
            item.error = exc
        return
    try:
        with transaction.atomic():
            for item in group:
                try:
                    item.result = ingest_readings(**item.kwargs)  # its own savepoint (a nested atomic)
                except Exception as exc:  # noqa: BLE001 - that request's answer; the others go on
                    item.error = exc
    except BaseException as exc:  # noqa: BLE001 - the commit failed: nothing of the group is stored
        for item in group:
            item.result, item.error = None, exc


def _outcome(item: _Pending):
    if item.error is not None:
        raise item.error
    return item.result


GROUP = GroupCommit()
