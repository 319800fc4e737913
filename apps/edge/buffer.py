"""The disk buffer: SQLite in WAL mode with synchronous=FULL, so a reading is durable once ``put`` returns.

Rows stay after they are acknowledged (``acked_ms`` set) so that a ``resend`` command can republish them; the
size cap evicts acknowledged rows first, then the oldest pending ones, and records an alarm for the latter.
The size measured is the pages in use ((page_count - freelist_count) * page_size); freed pages are reused,
the file is not shrunk.
"""
from __future__ import annotations

import logging
import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("apps.edge.buffer")

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id TEXT NOT NULL,
    data_code TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    value,
    unit TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'N',
    backfill INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    acked_ms INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS readings_identity ON readings (source_id, data_code, ts_ms);
CREATE INDEX IF NOT EXISTS readings_pending ON readings (ts_ms, id) WHERE acked_ms IS NULL;
CREATE INDEX IF NOT EXISTS readings_acked ON readings (ts_ms, id) WHERE acked_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    published INTEGER NOT NULL DEFAULT 0,
    detail TEXT
);
"""


@dataclass(frozen=True)
class Reading:
    source_id: str
    data_code: str
    ts_ms: int
    value: float | str
    unit: str = ""
    status: str = "N"
    backfill: bool = False
    id: int | None = None


@dataclass(frozen=True)
class Alarm:
    id: int
    ts_ms: int
    kind: str
    count: int
    detail: str | None = None  # JSON: what the alarm is about (e.g. the source and the broker's reason code)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Buffer:
    def __init__(self, path: str | Path, max_bytes: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(alarms)")}
        if "detail" not in columns:  # a buffer written by an older agent
            self.db.execute("ALTER TABLE alarms ADD COLUMN detail TEXT")
        self.page_size = self.db.execute("PRAGMA page_size").fetchone()[0]

    def close(self) -> None:
        self.db.close()

    # writing -------------------------------------------------------------------------------------------------
    def put(self, readings: list[Reading]) -> int:
        """Store readings in one transaction; returns how many were new (same identity twice = stored once).
        When this returns the rows are on disk ("accepted")."""
        if not readings:
            return 0
        now = _now_ms()
        with self._tx():
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO readings (source_id, data_code, ts_ms, value, unit, status, backfill,"
                " created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(r.source_id, r.data_code, r.ts_ms, r.value, r.unit, r.status, int(r.backfill), now)
                 for r in readings])
            added = self.db.total_changes - before
        if self.used_bytes() > self.max_bytes:
            self.evict()
        return added

    def mark_acked(self, ids: list[int], now_ms: int | None = None) -> None:
        """The broker acknowledged these rows: flag them and advance each source's last acknowledged timestamp."""
        if not ids:
            return
        now_ms = _now_ms() if now_ms is None else now_ms
        with self._tx():
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                self.db.execute(f"UPDATE readings SET acked_ms = ? WHERE id IN ({marks})", (now_ms, *chunk))
                rows = self.db.execute(f"SELECT source_id, MAX(ts_ms) FROM readings WHERE id IN ({marks})"
                                       " GROUP BY source_id", chunk).fetchall()
                for source_id, ts in rows:
                    self.db.execute(
                        "INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
                        " SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                        (f"last_acked:{source_id}", str(ts)))

    def mark_pending_backfill(self) -> int:
        """Every row not yet acknowledged becomes backfill (called on disconnect and at start-up)."""
        with self._tx():
            return self.db.execute("UPDATE readings SET backfill = 1 WHERE acked_ms IS NULL AND backfill = 0").rowcount

    def requeue(self, source_id: str, from_ms: int, to_ms: int) -> int:
        """``resend`` command: make the rows of [from_ms, to_ms] still in the buffer pending again, as backfill."""
        with self._tx():
            return self.db.execute("UPDATE readings SET acked_ms = NULL, backfill = 1 WHERE source_id = ?"
                                   " AND ts_ms BETWEEN ? AND ?", (source_id, from_ms, to_ms)).rowcount

    # reading -------------------------------------------------------------------------------------------------
    def next_batch(self, n: int, exclude: frozenset[str] | set[str] = frozenset()) -> list[Reading]:
        """The ``n`` oldest pending rows, in time order (rows of the ``exclude`` sources left out: those the
        broker refused, held back until their retry)."""
        skip = sorted(exclude)
        not_in = f" AND source_id NOT IN ({','.join('?' * len(skip))})" if skip else ""
        rows = self.db.execute(
            "SELECT id, source_id, data_code, ts_ms, value, unit, status, backfill FROM readings"
            f" WHERE acked_ms IS NULL{not_in} ORDER BY ts_ms, id LIMIT ?", (*skip, n)).fetchall()
        return [Reading(id=r[0], source_id=r[1], data_code=r[2], ts_ms=r[3], value=r[4], unit=r[5], status=r[6],
                        backfill=bool(r[7])) for r in rows]

    def all_rows(self) -> list[Reading]:
        rows = self.db.execute("SELECT id, source_id, data_code, ts_ms, value, unit, status, backfill FROM readings"
                               " ORDER BY ts_ms, id").fetchall()
        return [Reading(id=r[0], source_id=r[1], data_code=r[2], ts_ms=r[3], value=r[4], unit=r[5], status=r[6],
                        backfill=bool(r[7])) for r in rows]

    def pending_count(self, source_id: str | None = None) -> int:
        if source_id is not None:
            return self.db.execute("SELECT COUNT(*) FROM readings WHERE acked_ms IS NULL AND source_id = ?",
                                   (source_id,)).fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM readings WHERE acked_ms IS NULL").fetchone()[0]

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]

    def max_ts_ms(self) -> int | None:
        return self.db.execute("SELECT MAX(ts_ms) FROM readings").fetchone()[0]

    def last_acked(self, source_id: str) -> int | None:
        """R-8.4.2.3: the newest timestamp of this source the broker acknowledged (None before the first)."""
        row = self.db.execute("SELECT value FROM state WHERE key = ?", (f"last_acked:{source_id}",)).fetchone()
        return int(row[0]) if row else None

    def get_state(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        with self._tx():
            self.db.execute("INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
                            " SET value = excluded.value", (key, value))

    # size cap ------------------------------------------------------------------------------------------------
    def used_bytes(self) -> int:
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * self.page_size

    def evict(self) -> int:
        """Delete the oldest rows until the pages in use are under 90 % of max_bytes: acknowledged rows first,
        then pending ones (data loss: an ``buffer_evicted`` alarm with their count). Returns pending rows lost."""
        target = int(self.max_bytes * 0.9)
        lost = 0
        for _ in range(1000):
            used = self.used_bytes()
            total = self.count()
            if used <= target or total == 0:
                break
            per_row = max(1.0, used / total)
            k = max(1, math.ceil((used - target) / per_row))
            with self._tx():
                n = self.db.execute("DELETE FROM readings WHERE id IN (SELECT id FROM readings WHERE acked_ms IS NOT"
                                    " NULL ORDER BY ts_ms, id LIMIT ?)", (k,)).rowcount
                if n == 0:
                    n = self.db.execute("DELETE FROM readings WHERE id IN (SELECT id FROM readings WHERE acked_ms IS"
                                        " NULL ORDER BY ts_ms, id LIMIT ?)", (k,)).rowcount
                    lost += n
        if lost:
            with self._tx():
                self.db.execute("INSERT INTO alarms (ts_ms, kind, count) VALUES (?, 'buffer_evicted', ?)",
                                (_now_ms(), lost))
            log.warning("buffer full (%d bytes cap): evicted %d unsent readings, oldest first", self.max_bytes, lost)
        return lost

    def add_alarm(self, kind: str, count: int, detail: str | None = None, ts_ms: int | None = None) -> None:
        """An alarm for the gateway's status topic, kept until it is published."""
        with self._tx():
            self.db.execute("INSERT INTO alarms (ts_ms, kind, count, detail) VALUES (?, ?, ?, ?)",
                            (_now_ms() if ts_ms is None else ts_ms, kind, count, detail))

    def unpublished_alarms(self) -> list[Alarm]:
        rows = self.db.execute("SELECT id, ts_ms, kind, count, detail FROM alarms WHERE published = 0"
                               " ORDER BY id").fetchall()
        return [Alarm(*row) for row in rows]

    def states(self, prefix: str) -> dict[str, str]:
        """Every state entry whose key starts with ``prefix``, keyed by the rest of the key."""
        rows = self.db.execute("SELECT key, value FROM state WHERE substr(key, 1, ?) = ?",
                               (len(prefix), prefix)).fetchall()
        return {key[len(prefix):]: value for key, value in rows}

    def delete_state(self, key: str) -> None:
        with self._tx():
            self.db.execute("DELETE FROM state WHERE key = ?", (key,))

    def mark_alarm_published(self, alarm_id: int) -> None:
        with self._tx():
            self.db.execute("UPDATE alarms SET published = 1 WHERE id = ?", (alarm_id,))

    # helpers -------------------------------------------------------------------------------------------------
    def _tx(self):
        return _Tx(self.db)


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i:i + n]
