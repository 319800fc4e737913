"""What the rollups cost: the dirty log on the write path, per 1 000 rows, and the refresh (issue #9 item 4).

    .venv/bin/python bench/rollup_cost.py --write              # scratch schema, like bench/index_cost.py
    .venv/bin/python bench/rollup_cost.py --refresh 2000       # needs a migrated DATABASE_URL (writes to it!)

--write: the readings table as it is after issue #9 (bench/index_cost.py's "table after issue #9"), preloaded,
takes ``--rows`` more in 1 000-row transactions exactly as apps/ingestion/store.py writes them, with and without
the one extra statement that fills the dirty log (store.DIRTY_FROM_STAGE), rounds alternating the order. Two
batch shapes: every reading of a batch another series (the worst case: 1 000 dirty rows per batch; a stream of
many meters), and 50 readings per series (a device's or a gateway's batch). PostgreSQL backend CPU (median,
from /proc) and wall time (best) per 1 000 rows.

--refresh N: a park "RB01" with N meters (made once, kept) in DATABASE_URL's database; each round ingests one
minute of readings of every meter through ingest_readings (1 000-record batches), then times one
rollups.refresh() over the N queued series (the live case: every series touched once since the last run),
then the same after a backfill of one reading per meter a month earlier (a late hour, day and month each);
with --dense, an hour of one reading a minute per meter refreshed at once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.index_cost import (  # noqa: E402
    AFTER,
    INSERT,
    SCHEMA,
    STAGE,
    STAGE_TYPES,
    T0,
    VARIANTS,
    backend_cpu,
    build,
    connect,
    setup,
)

DIRTY_TABLE = (f"CREATE TABLE {SCHEMA}.dirty (park_id bigint NOT NULL, source_id bigint NOT NULL, data_item_id "
               "bigint NOT NULL, lo timestamptz NOT NULL, hi timestamptz NOT NULL, queued_at timestamptz NOT NULL "
               "DEFAULT now())")
# The quality queues' statement triggers as migrations quality 0004 and 0006 made them (on INSERT into the log,
# so inside every ingest transaction); --triggers measures what they add.
QUEUES = [f"CREATE TABLE {SCHEMA}.{q} (source_id bigint, data_item_id bigint, lo timestamptz, hi timestamptz, "
          "queued_at timestamptz NOT NULL DEFAULT now())" for q in ("gapq", "postq")]
QUEUE_TRIGGERS = [
    s for q in ("gapq", "postq") for s in (
        f"CREATE FUNCTION {SCHEMA}.{q}_fill() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"INSERT INTO {SCHEMA}.{q} (source_id, data_item_id, lo, hi) SELECT source_id, data_item_id, min(lo), max(hi) "
        "FROM queued WHERE queued_at >= now() GROUP BY source_id, data_item_id; RETURN NULL; END $$",
        f"CREATE TRIGGER {q}_fill AFTER INSERT ON {SCHEMA}.dirty REFERENCING NEW TABLE AS queued "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.{q}_fill()")]

DIRTY = ("INSERT INTO dirty (park_id, source_id, data_item_id, lo, hi) "
         "SELECT p, s, d, min(t), max(t) FROM stage WHERE v IS NOT NULL GROUP BY p, s, d")


def batches(n_rows: int, batch: int, per_series: int, start_minute: int):
    """1 000-row batches, each of batch/per_series series with per_series consecutive minutes."""
    out, series, minute = [], 0, start_minute
    for _ in range(n_rows // batch):
        rows = []
        for _k in range(batch // per_series):
            s = series % 2000
            series += 1
            if series % 2000 == 0:
                minute += per_series
            for m in range(per_series):
                rows.append((len(rows), s % 100 + 1, s + 1, 1 + s % 10, T0 + timedelta(minutes=minute + m),
                             float(m), None, None, None, "N", 0))
        out.append(rows)
    return out


def write(conn, work, dirty: bool) -> tuple[float, float]:
    conn.autocommit = False
    pid = conn.info.backend_pid
    sql = INSERT.format(t="r")
    try:
        with conn.cursor() as cur:
            cur.execute(STAGE)
            conn.commit()
            cpu0, t0 = backend_cpu(pid), time.perf_counter()
            for batch in work:
                cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
                with cur.copy("COPY stage FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(STAGE_TYPES)
                    for r in batch:
                        copy.write_row(r)
                cur.execute(sql)
                if dirty:
                    cur.execute(DIRTY)
                cur.execute("DELETE FROM stage")
                conn.commit()
            elapsed, cpu = time.perf_counter() - t0, backend_cpu(pid) - cpu0
            cur.execute("DROP TABLE stage")
            conn.commit()
    finally:
        conn.autocommit = True
    return elapsed, cpu


def write_cost(args) -> None:
    if args.triggers:
        return trigger_cost(args)
    statements = [s for p in AFTER for s in VARIANTS[p]]
    per = 1_000_000 / args.rows
    with connect() as conn:
        print(conn.execute("SELECT version()").fetchone()[0])
        setup(conn)
        try:
            conn.execute(DIRTY_TABLE)
            print("\n| batch shape | without the dirty log: wall / PG CPU ms per 1 000 | with it | extra PG CPU | "
                  "dirty rows per batch |\n|---|---|---|---|---|")
            for per_series in (1, 50):
                work = batches(args.rows, 1000, per_series, args.preload // 2000 + 1)
                res = {False: [], True: []}
                for rnd in range(args.rounds):
                    for dirty in ((False, True) if rnd % 2 == 0 else (True, False)):
                        build(conn, "r", statements, args.preload)
                        conn.execute("TRUNCATE dirty")
                        conn.execute("CHECKPOINT")
                        res[dirty].append(write(conn, work, dirty))
                        print(f"  {per_series}/series round {rnd + 1} dirty={dirty}: "
                              f"{res[dirty][-1][1] * per:.1f} ms CPU", file=sys.stderr, flush=True)
                (w0, c0), (w1, c1) = [(min(w for w, _ in res[d]) * per, statistics.median(c for _, c in res[d]) * per)
                                      for d in (False, True)]
                print(f"| {per_series} reading(s) per series | {w0:.1f} / {c0:.1f} | {w1:.1f} / {c1:.1f} | "
                      f"{c1 - c0:+.1f} ({(c1 - c0) / c0 * 100:+.0f} %) | {1000 // per_series} |", flush=True)
        finally:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def trigger_cost(args) -> None:
    """The dirty log alone against the dirty log with the two quality queue triggers on INSERT, per 1 000 rows,
    in transactions of --batch rows (an MQTT consumer's commit is a few hundred; a device's HTTP batch ~30)."""
    statements = [s for p in AFTER for s in VARIANTS[p]]
    per = 1_000_000 / args.rows
    with connect() as conn:
        print(conn.execute("SELECT version()").fetchone()[0])
        setup(conn)
        try:
            conn.execute(DIRTY_TABLE)
            for sql in QUEUES + QUEUE_TRIGGERS:
                conn.execute(sql)
            print(f"\n| batch shape ({args.batch} rows per transaction) | dirty log only: wall / PG CPU ms per 1 000 | "
                  "with the queue triggers on INSERT | extra PG CPU |\n|---|---|---|---|")
            for per_series in (1, 10):
                work = batches(args.rows, args.batch, per_series, args.preload // 2000 + 1)
                res = {False: [], True: []}
                for rnd in range(args.rounds):
                    for trig in ((False, True) if rnd % 2 == 0 else (True, False)):
                        build(conn, "r", statements, args.preload)
                        conn.execute(f"ALTER TABLE dirty {'ENABLE' if trig else 'DISABLE'} TRIGGER USER")
                        conn.execute("TRUNCATE dirty, gapq, postq")
                        conn.execute("CHECKPOINT")
                        res[trig].append(write(conn, work, True))
                        print(f"  {per_series}/series round {rnd + 1} triggers={trig}: "
                              f"{res[trig][-1][1] * per:.1f} ms CPU", file=sys.stderr, flush=True)
                (w0, c0), (w1, c1) = [(min(w for w, _ in res[d]) * per, statistics.median(c for _, c in res[d]) * per)
                                      for d in (False, True)]
                print(f"| {per_series} reading(s) per series | {w0:.1f} / {c0:.1f} | {w1:.1f} / {c1:.1f} | "
                      f"{c1 - c0:+.1f} ({(c1 - c0) / c0 * 100:+.0f} %) |", flush=True)
        finally:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def refresh_cost(args) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    import django

    django.setup()
    from apps.accounts.models import Park
    from apps.accounts.services import save_park
    from apps.catalog.models import DataItem
    from apps.ingestion import rollups
    from apps.ingestion.services import ingest_readings
    from apps.sources.models import DataSource
    from apps.sources.services import save_source

    park = Park.objects.filter(code="RB01").first() or save_park(actor="bench", code="RB01", name_zh="汇总压测",
                                                                 time_zone="Asia/Shanghai")
    items = list(DataItem.objects.filter(code="CS010201"))
    have = set(DataSource.objects.filter(park=park).values_list("source_id", flat=True))
    ids = [f"RB01-EM-{n:05d}" for n in range(args.refresh)]
    for sid in ids:
        if sid not in have:
            save_source(actor="bench", source_id=sid, park=park, name=sid, data_items=items)
    rollups.refresh(budget=None)  # start from an empty log
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)

    def ingest(when):
        recs = [{"sourceId": sid, "timestamp": when.isoformat(), "value": 1.0 + n % 7} for n, sid in enumerate(ids)]
        for i in range(0, len(recs), 1000):
            ingest_readings(recs[i:i + 1000], channel="bench", actor="bench")

    print("| case | series queued | refresh s | ms per series |\n|---|---|---|---|")
    for rnd in range(args.rounds):
        stamp = base - timedelta(seconds=rnd)  # a new identity per round and per run
        for label, when in (("live: one new minute per series", stamp),
                            ("backfill: one reading per series a month back", stamp - timedelta(days=31))):
            ingest(when)
            queued = rollups.lag()[0]
            r = rollups.refresh(budget=None)
            print(f"| {label} | {queued} | {r.seconds:.2f} | {r.seconds * 1000 / max(queued, 1):.2f} |", flush=True)
    if args.dense:
        # An hour of one reading a minute per meter, in time order (60 x N readings), refreshed at once: what a
        # refresh that fell an hour behind has to do.
        start = base - timedelta(days=2, seconds=int(time.time()) % 3600)
        for m in range(60):
            ingest(start + timedelta(minutes=m))
        queued = rollups.lag()[0]
        r = rollups.refresh(budget=None)
        print(f"| dense: an hour of 1 reading/min per series, {60 * len(ids)} readings | {queued} | "
              f"{r.seconds:.2f} | {r.seconds * 1000 / max(queued, 1):.2f} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--refresh", type=int, default=0, metavar="N")
    ap.add_argument("--dense", action="store_true", help="with --refresh: also an hour of readings a minute")
    ap.add_argument("--preload", type=int, default=1_000_000)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--triggers", action="store_true", help="with --write: the quality queue triggers' cost")
    ap.add_argument("--batch", type=int, default=1000, help="with --triggers: rows per transaction")
    args = ap.parse_args()
    if args.write:
        write_cost(args)
    if args.refresh:
        refresh_cost(args)


if __name__ == "__main__":
    main()
