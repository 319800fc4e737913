"""When each batch became visible: a thread polling ingestion_ingestbatch every ``interval`` seconds on
its own autocommit connection. A batch's log row is written in the same transaction as its readings, so
the time a poll first sees it is its commit time, late by at most one poll interval plus the query.

Batch ids come from a sequence and two consumers commit out of order, so ids skipped over are kept as
gaps and asked for again until they show up (or for two minutes: a rolled-back batch never does)."""

from __future__ import annotations

import threading
import time

from bench.http_ingest.database import connect

QUERY = ("SELECT id, accepted, duplicates, rejected, flagged + warned FROM ingestion_ingestbatch "
         "WHERE id > %s OR id = ANY(%s)")


class CommitMonitor(threading.Thread):
    def __init__(self, url: str, interval: float = 0.01):
        super().__init__(daemon=True, name="commit-monitor")
        self.url, self.interval = url, interval
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.max_id = 0
        self.gaps: dict[int, float] = {}
        self.error: str | None = None
        self.reset()

    def reset(self) -> None:
        """Forget what was seen so far (between phases; ids keep growing, so nothing is seen twice)."""
        with self.lock:
            self.seen: dict[int, float] = {}   # batch id -> time first seen
            self.timeline: list[tuple[float, int]] = []  # (time seen, readings accepted), in order seen
            self.accepted = self.duplicates = self.rejected = self.flagged = 0
            self.last_seen = 0.0

    def run(self) -> None:
        try:
            with connect(self.url, autocommit=True) as conn:
                with self.lock:  # batches committed before the monitor started are not ours to time
                    self.max_id = conn.execute("SELECT coalesce(max(id), 0) FROM ingestion_ingestbatch").fetchone()[0]
                while not self.stopping.is_set():
                    rows = conn.execute(QUERY, (self.max_id, list(self.gaps))).fetchall()
                    self._record(rows, time.time())
                    time.sleep(self.interval)
        except Exception as exc:  # noqa: BLE001 - reported by the run
            self.error = repr(exc)

    def _record(self, rows, now: float) -> None:
        with self.lock:
            for bid, accepted, duplicates, rejected, flagged in sorted(rows):
                self.gaps.pop(bid, None)
                if bid > self.max_id:
                    for missing in range(self.max_id + 1, bid):
                        self.gaps[missing] = now
                    self.max_id = bid
                if bid in self.seen:
                    continue
                self.seen[bid] = now
                self.timeline.append((now, accepted))
                self.accepted += accepted
                self.duplicates += duplicates
                self.rejected += rejected
                self.flagged += flagged
                self.last_seen = now
            for bid in [b for b, t in self.gaps.items() if now - t > 120]:
                del self.gaps[bid]

    def wait_for(self, readings: int, idle: float, timeout: float) -> bool:
        """Until ``readings`` are accepted; gives up when nothing new committed for ``idle`` seconds or after
        ``timeout``. True if reached."""
        t0 = time.time()
        while True:
            with self.lock:
                done, last = self.accepted >= readings, self.last_seen
            now = time.time()
            if done:
                return True
            if self.error or now - t0 > timeout or now - max(last, t0) > idle:
                return False
            time.sleep(0.05)

    def time_reaching(self, readings: int) -> float | None:
        """When the accepted count first reached ``readings`` (None if never)."""
        total = 0
        for t, n in self.timeline:
            total += n
            if total >= readings:
                return t
        return None

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)
