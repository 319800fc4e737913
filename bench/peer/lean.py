"""The peer's lean table and its commit-time measurement.

The table (created by the bench in the bench database) has the record's columns and one index, the
identity key, as an integrator's flow would have it. It has no batch log, so its commits are timed
another way than ours (bench/mqtt_ingest/monitor.py polls our batch-log rows every 10 ms): a thread
takes ``pg_current_snapshot()`` every 10 ms (one tiny query, no table read); after the phase, each
row's inserting transaction (its ``xmin``; the flow's INSERTs are single-statement transactions, no
savepoints) is timed at the first snapshot in which it is no longer in progress. Both measures are
"the first 10 ms poll that can see the commit", late by at most one poll plus a query.

The drain watches the table's file size (a stat(), no scan) and counts the rows only once it stops
growing, so the measurement costs PostgreSQL almost nothing while the peer works."""

from __future__ import annotations

import threading
import time

from bench.http_ingest.database import connect

TABLE = "peer_reading"
DDL = f"""
DROP TABLE IF EXISTS {TABLE};
CREATE TABLE {TABLE} (
    source_id text NOT NULL,
    data_code text NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL,
    unit text,
    status text,
    PRIMARY KEY (source_id, data_code, ts)
)"""


def create_table(url: str) -> None:
    with connect(url, autocommit=True) as conn:
        for stmt in DDL.split(";"):
            conn.execute(stmt)


def reset_table(url: str) -> None:
    """As bench.http_ingest.database.reset_tables does for ours: empty, analysed, checkpointed."""
    with connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLE}")
        conn.execute(f"VACUUM ANALYZE {TABLE}")
        conn.execute("CHECKPOINT")


def stored_count(url: str) -> int:
    with connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]


def parse_snapshot(text: str) -> tuple[int, int, frozenset]:
    xmin, xmax, xip = text.split(":")
    return int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x)


class SnapshotMonitor(threading.Thread):
    """Takes pg_current_snapshot() every ``interval`` s and the table's size every ``size_every`` polls."""

    def __init__(self, url: str, interval: float = 0.01, size_every: int = 10):
        super().__init__(daemon=True, name="snapshot-monitor")
        self.url, self.interval, self.size_every = url, interval, size_every
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.error: str | None = None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.snaps: list[tuple[float, int, int, frozenset]] = []
            self.size, self.size_changed = -1, time.time()

    def run(self) -> None:
        try:
            with connect(self.url, autocommit=True) as conn:
                k = 0
                while not self.stopping.is_set():
                    snap = conn.execute("SELECT pg_current_snapshot()::text").fetchone()[0]
                    now = time.time()
                    size = None
                    if k % self.size_every == 0:
                        size = conn.execute("SELECT pg_relation_size(%s)", (TABLE,)).fetchone()[0]
                    with self.lock:
                        self.snaps.append((now, *parse_snapshot(snap)))
                        if size is not None and size != self.size:
                            self.size, self.size_changed = size, now
                    k += 1
                    time.sleep(self.interval)
        except Exception as exc:  # noqa: BLE001 - reported by the run
            self.error = repr(exc)

    def wait_for(self, readings: int, idle: float, timeout: float, settle: float = 0.3) -> bool:
        """Until ``readings`` rows are in the table; counted only when the file has not grown for ``settle``
        s. Gives up after ``idle`` s without growth or ``timeout``. True if reached."""
        t0 = time.time()
        counted_at = -1
        with connect(self.url, autocommit=True) as conn:
            while True:
                now = time.time()
                with self.lock:
                    size, changed = self.size, self.size_changed
                quiet = now - max(changed, t0)
                if quiet >= settle and size > 0 and counted_at != size:
                    counted_at = size
                    if conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] >= readings:
                        return True
                if self.error or now - t0 > timeout or quiet > idle:
                    return False
                time.sleep(0.05)

    def commit_times(self, xids32: set[int]) -> dict[int, float]:
        """32-bit xid -> the time of the first snapshot in which it was no longer in progress."""
        with self.lock:
            snaps = list(self.snaps)
        out: dict[int, float] = {}
        if not snaps:
            return out
        epoch = snaps[-1][2] >> 32
        for x in xids32:
            full = (epoch << 32) | x
            if full > snaps[-1][2]:
                full -= 1 << 32
            # visible once xid < snapshot xmin, or below xmax and not in progress; monotonic in time
            lo, hi = 0, len(snaps)
            while lo < hi:
                mid = (lo + hi) // 2
                _t, smin, smax, xip = snaps[mid]
                if full < smin or (full < smax and full not in xip):
                    hi = mid
                else:
                    lo = mid + 1
            if lo < len(snaps):
                out[x] = snaps[lo][0]
        return out

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)


def timeline(commit: dict[int, float], per_xid: dict[int, int]) -> list[tuple[float, int]]:
    """(time seen, rows) per transaction, in time order: the same shape as CommitMonitor.timeline."""
    return sorted((commit[x], n) for x, n in per_xid.items() if x in commit)


__all__ = ["SnapshotMonitor", "create_table", "reset_table", "stored_count", "timeline"]
