#!/usr/bin/env python
"""Benchmark: the admin's readings browser with 50 million readings over 12 monthly partitions (issue #9).

Loads (default) 100 parks x 5 meters at 5-minute intervals over the 12 months of 2025, 52.6 million readings,
server-side into a dedicated database, the month partitions made first, indexes rebuilt after (``load``); prints
the size on disk (``storage``); then times the readings browser's pages as a logged-in superuser and as a park-A
administrator (issue #8: the park-access seam scopes every page) with the Django test client and full admin
rendering: unfiltered, by park, source, data code (common, rare), flag, time range, deep paging, the detail page.
Medians printed side by side with their ratio (target <= 1.5x) beside issue #9's target: every filter's median
<= 300 ms. ``rollup_queries`` is the rollup phase (docs/rollups.md).

    python bench/admin_browser.py [--readings 50000000] [--parks 100] [--keep] [--only LABEL] [--baseline]

--keep reuses an already loaded database (loading takes ~8 minutes). Uses DATABASE_URL's server (default
127.0.0.1:5432) with its own database `carbonpark_bench_admin` (BENCH_ADMIN_DB); REDIS_URL default
redis://127.0.0.1:6379/9. Figures: bench/README.md, docs/readings-indexes.md.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = os.environ.get("BENCH_ADMIN_DB", "carbonpark_bench_admin")


def setup_env():
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{DB_NAME}"))
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    import psycopg

    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        return bool(exists), admin_url


PARK_CODE = "BENCH{:03d}"
FIRST_MONTH = (2025, 1)  # the load spans MONTHS consecutive UTC months from here
MONTHS = 12
STEP_MINUTES = 5
COMMON = ("CS010201", "CS010301")  # electricity (meters 0-2 of a park), heat (meters 3-4): 5-minute items
RARE = "CS010101"  # fuel consumption: one source, the first RARE_DAYS days only (the oldest rows of the table)
RARE_DAYS = 10
DEFAULT_READINGS = 50_000_000
TARGET_MS = 300  # issue #9: every readings browser filter's median at >= 50 million readings


def _months():
    from datetime import date

    from apps.ingestion.partitions import add_months

    first = date(*FIRST_MONTH, 1)
    return [add_months(first, k) for k in range(MONTHS)]


def _pg_url():
    return os.environ["DATABASE_URL"]


def _parallel(jobs, workers=2, label=""):
    """Run ``jobs`` (each a list of SQL statements with parameters, one transaction under the one-way-in
    guard's set_config) over ``workers`` connections of their own, in order of the list."""
    import queue
    import threading

    import psycopg

    todo = queue.Queue()
    for job in jobs:
        todo.put(job)
    errors = []

    def work():
        with psycopg.connect(_pg_url()) as conn:
            conn.execute("SET synchronous_commit = off")
            conn.execute("SET maintenance_work_mem = '512MB'")
            conn.commit()
            while not errors:
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    if job.get("autocommit"):
                        conn.autocommit = True
                        for sql, params in job["sql"]:
                            conn.execute(sql, params)
                        conn.autocommit = False
                    else:
                        with conn.transaction():
                            conn.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
                            for sql, params in job["sql"]:
                                conn.execute(sql, params)
                    if job.get("done"):
                        job["done"]()
                except Exception as exc:  # noqa: BLE001 - reported by the main thread
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=work, name=f"{label}-{k}") for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def load(n: int, parks: int = 100, per_park: int = 5, workers: int = 2):
    """Parks and sources through the services; then at least ``n`` readings written server-side, INSERT …
    SELECT generate_series under the one-way-in guard's set_config (the bulk path of the raw COPY baseline,
    bench/http_ingest/raw.py, without shipping the rows over the socket), over ``workers`` connections, one
    day of every series a statement, each month in time order. The 12 month partitions are made first
    (ingestion_reading_add_month, as the beat task does), so no row lands in DEFAULT; the table's indexes and
    identity constraint are dropped during the load and rebuilt after (the primary key stays).

    Layout: ``parks`` parks x ``per_park`` meters (meters 0-2 report electricity CS010201, 3-4 heat
    CS010301) at 5-minute intervals over MONTHS consecutive months; the number of parks grows if 100 x 5
    series over a year are fewer than ``n``. 1 reading in 97 flagged backfill, 1 in 1 009 suspect; one
    source of park 50 also reported the rare code CS010101 for the first RARE_DAYS days."""
    import math
    from datetime import UTC, datetime

    from django.db import connection
    from django.utils import timezone

    from apps.accounts.services import save_park
    from apps.catalog.models import DataItem
    from apps.ingestion.models import IngestBatch
    from apps.ingestion.partitions import add_months, add_partition
    from apps.sources.services import save_source

    months = _months()
    span = datetime(*add_months(months[-1], 1).timetuple()[:3], tzinfo=UTC) - datetime(
        *months[0].timetuple()[:3], tzinfo=UTC)
    steps = int(span.total_seconds() // (STEP_MINUTES * 60))
    parks = max(parks, math.ceil(n / (steps * per_park)))
    items = {code: DataItem.objects.get(code=code) for code in (*COMMON, RARE)}
    t0 = time.perf_counter()
    series = []  # (park, source, item, meter number)
    rare = None
    for p in range(1, parks + 1):
        park = save_park(actor="bench", code=PARK_CODE.format(p), name_zh=f"基准园区 {p}", time_zone="Asia/Shanghai")
        for i in range(per_park):
            item = items[COMMON[0] if i < 3 else COMMON[1]]
            extra = [items[RARE]] if (p == 50 and i == 0) else []
            src = save_source(actor="bench", source_id=f"{park.code}-EM-{i:04d}", park=park, name=f"meter {i}",
                              data_items=[item, *extra])
            series.append((park.pk, src.pk, item.pk, i))
            if extra:
                rare = (park.pk, src.pk, items[RARE].pk, i)
    total = steps * len(series) + RARE_DAYS * 24 * 60 // STEP_MINUTES
    batch = IngestBatch.objects.create(received_at=timezone.now(), channel="bench", actor_label="bench",
                                       total=total, accepted=total)
    print(f"{parks} parks, {len(series)} series ({len(series) // per_park * per_park} meters), "
          f"{steps:,} timestamps each over {MONTHS} months: {total:,} readings; set up in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    made = [add_partition(m) for m in months]
    print(f"month partitions made before the load: {sum(1 for x in made if x)} new, "
          f"{sum(1 for x in made if not x)} already there ({months[0]:%Y-%m} .. {months[-1]:%Y-%m})", flush=True)
    with connection.cursor() as cur:
        cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'ingestion_reading' "
                    "AND indexname NOT LIKE '%%pkey'")
        indexes = cur.fetchall()
        cur.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = 'ingestion_reading'::regclass AND contype = 'u'")
        constraints = cur.fetchall()
        for name, _ in constraints:
            cur.execute(f"ALTER TABLE ingestion_reading DROP CONSTRAINT {name}")
        for name, _ in indexes:
            cur.execute(f"DROP INDEX IF EXISTS {name}")
    values = ", ".join(f"({p}, {s}, {it}, {i})" for p, s, it, i in series)
    insert = ("INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, received_unit, status,"
              " flags, channel, batch_id, received_at) "
              "SELECT s.park, s.source, s.item, %s::timestamptz + m * interval '5 minutes',"
              " (m %% 997 + s.i * 10 + s.source %% 7)::float8, '', 'N',"
              " CASE WHEN (m + s.source) %% 97 = 0 THEN 1 WHEN (m + s.source) %% 1009 = 0 THEN 4 ELSE 0 END,"
              " 'bench', %s, now() FROM generate_series(%s::int, %s::int) AS m CROSS JOIN (VALUES {values})"
              " AS s(park, source, item, i) ORDER BY m, s.source")
    start = datetime(*months[0].timetuple()[:3], tzinfo=UTC)
    per_day = 24 * 60 // STEP_MINUTES
    progress = {"rows": 0, "last": 0}
    t0 = time.perf_counter()

    def note(rows):
        def done():
            progress["rows"] += rows
            if progress["rows"] - progress["last"] >= 2_000_000:
                progress["last"] = progress["rows"]
                el = time.perf_counter() - t0
                print(f"  loaded {progress['rows']:,} readings in {el:.0f} s ({progress['rows'] / el:,.0f}/s)",
                      flush=True)
        return done

    jobs = []
    for first in range(0, steps, per_day):
        last = min(steps, first + per_day) - 1
        jobs.append({"sql": [(insert.format(values=values), [start, batch.pk, first, last])],
                     "done": note((last - first + 1) * len(series))})
    if rare:
        p, s, it, i = rare
        jobs.append({"sql": [(insert.format(values=f"({p}, {s}, {it}, {i})"),
                              [start, batch.pk, 0, RARE_DAYS * per_day - 1])], "done": note(RARE_DAYS * per_day)})
    # the days are handed out in time order, so each month's heap follows ts as a live stream stores it
    _parallel(jobs, workers=workers, label="load")
    took = time.perf_counter() - t0
    print(f"loaded {progress['rows']:,} readings in {took:.0f} s ({progress['rows'] / took:,.0f}/s, "
          f"{workers} connections); rebuilding indexes", flush=True)
    t1 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        for name, definition in constraints:
            t = time.perf_counter()
            cur.execute(f"ALTER TABLE ingestion_reading ADD CONSTRAINT {name} {definition}")
            print(f"  {name}: {time.perf_counter() - t:.0f} s", flush=True)
        for name, definition in indexes:
            if not any(name == c for c, _ in constraints):
                t = time.perf_counter()
                # a partitioned table's index is defined "ON ONLY" the parent: rebuilt on every partition
                cur.execute(definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1)
                            .replace(" ON ONLY ", " ON ", 1))
                print(f"  {name}: {time.perf_counter() - t:.0f} s", flush=True)
        cur.execute("RESET maintenance_work_mem")
    print(f"indexes rebuilt in {time.perf_counter() - t1:.0f} s", flush=True)
    t1 = time.perf_counter()
    # VACUUM (visibility map: the park pages' counts are index-only) and ANALYZE, a partition per job
    _parallel([{"autocommit": True, "sql": [(f"VACUUM (ANALYZE) {part.name}", None)]} for part in _parts()]
              + [{"autocommit": True, "sql": [("ANALYZE ingestion_reading", None)]}], workers=workers, label="vacuum")
    print(f"VACUUM ANALYZE in {time.perf_counter() - t1:.0f} s", flush=True)
    return took


def _parts():
    from apps.ingestion.partitions import partitions

    return partitions()


ROLLUP_TARGET_MS = 50  # issue #9: an hourly rollup query for one source over a year


def build_rollups(force=False):
    """The rollups of the loaded readings, by the bulk rebuild (apps/ingestion/rollup_rebuild.py): whatever is
    pending (the upgrade's migration records every partition), or everything with ``force``, or nothing when
    they are built already. Prints each partition's time and rate."""
    from django.db import connection

    from apps.ingestion import rollup_rebuild, rollups

    with connection.cursor() as cur:
        cur.execute("SELECT EXISTS (SELECT 1 FROM ingestion_rollup WHERE interval = 'h')")
        built = cur.fetchone()[0]
    if force or not built:
        rollup_rebuild.queue()
    if not rollup_rebuild.pending():
        print("\nrollups: already built (--rebuild-rollups builds them again)")
        return
    print(f"\nbulk rollup rebuild, one partition per transaction, newest first "
          f"(load average {os.getloadavg()[0]:.1f}):")
    t0, total = time.perf_counter(), 0
    while not (step := rollup_rebuild.step(wait=True)).done:
        total += step.readings
        if step.readings:
            print(f"  {step.month or 'DEFAULT'}  {step.readings:>11,} readings {step.hours:>9,} hours "
                  f"{step.seconds:>6.1f} s {step.readings / max(step.seconds, 1e-9):>9,.0f} readings/s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    took = time.perf_counter() - t0
    tail = rollups.refresh(budget=None)
    with connection.cursor() as cur:  # as autovacuum would within a minute; the planner took the table for empty
        cur.execute("ANALYZE ingestion_rollup")
    print(f"  total {total:,} readings in {took:.1f} s: {total / max(took, 1e-9):,.0f} readings/s; then the "
          f"refresh of what it queued (edges, DEFAULT): {tail.series} ranges in {tail.seconds:.1f} s", flush=True)


def rollup_storage():
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT interval, count(*) FROM ingestion_rollup GROUP BY 1 ORDER BY 1")
        counts = dict(cur.fetchall())
        cur.execute("SELECT pg_table_size('ingestion_rollup'), c.relname, pg_relation_size(c.oid) FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'ingestion_rollup'::regclass")
        idx = cur.fetchall()
    mb = 1024 ** 2
    rows = sum(counts.values())
    heap = idx[0][0] if idx else 0
    print(f"\nrollup table: {rows:,} rows (hour {counts.get('h', 0):,}, day {counts.get('d', 0):,}, "
          f"month {counts.get('m', 0):,}); heap {heap / mb:,.0f} MiB ({heap / max(rows, 1):.0f} bytes/row)")
    for _, name, size in idx:
        print(f"  {name:<28} {size / mb:>7,.0f} MiB")
    total = heap + sum(size for _, _, size in idx)
    print(f"  {'total':<28} {total / mb:>7,.0f} MiB")


def rollup_freshness(rounds=5):
    """The refresh under a steady trickle: one new reading per meter (every series of the bench), through
    ingest_readings, then one timed refresh, as the beat runs it every 10 s. Inside one transaction rolled
    back at the end, so the bench database keeps its readings."""
    from datetime import UTC, datetime, timedelta

    from django.db import transaction

    from apps.ingestion import rollups
    from apps.ingestion.partitions import add_months
    from apps.ingestion.services import ingest_readings
    from apps.sources.models import DataSource

    sources = list(DataSource.objects.filter(park__code__startswith=PARK_CODE[:5], data_items__code__in=COMMON)
                   .values_list("source_id", flat=True).distinct())
    last = datetime(*add_months(_months()[-1], 1).timetuple()[:3], tzinfo=UTC) - timedelta(minutes=STEP_MINUTES)
    print(f"\nrollup freshness: {len(sources)} meters, one new reading each per round, then one refresh "
          f"(the beat runs it every 10 s); load average {os.getloadavg()[0]:.1f}")
    samples = []

    class Rollback(Exception):
        pass

    try:
        with transaction.atomic():
            for k in range(rounds):
                ts = (last + timedelta(seconds=10 * (k + 1))).isoformat()  # between stored 5-minute points
                t = time.perf_counter()
                got = ingest_readings([{"sourceId": s, "timestamp": ts, "value": 1.0 + k} for s in sources],
                                      channel="bench", actor="bench")
                ingest = time.perf_counter() - t
                queued, _age = rollups.lag()
                r = rollups.refresh(budget=None)
                samples.append(r.seconds)
                print(f"  round {k + 1}: {got.accepted} accepted in {ingest * 1000:.0f} ms, {queued} ranges queued, "
                      f"refresh {r.seconds * 1000:.0f} ms ({r.hours} hours)", flush=True)
            raise Rollback
    except Rollback:
        pass
    print(f"  median refresh {statistics.median(samples) * 1000:.0f} ms: a reading is in its rollups at most "
          f"10 s (beat) + that after its commit (target: within 60 s)")


def _stats(samples):
    """(median, p95) of a list of ms."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _alternate(fns, repeat):
    """Each of ``fns`` (who -> callable) called ``repeat`` times, alternated (other load on the machine falls on
    every figure alike), after one warm-up call each; who -> (median, p95) ms."""
    for fn in fns.values():
        fn()
    samples = {who: [] for who in fns}
    for _ in range(repeat):
        for who, fn in fns.items():
            t = time.perf_counter()
            fn()
            samples[who].append((time.perf_counter() - t) * 1000)
    return {who: _stats(v) for who, v in samples.items()}


# The same year computed from the readings, as the rollups count them (rollups.COUNTED_READINGS: the view
# corrections_effective_reading), by park-local hour, day or month: what a year's chart would cost without them.
RAW = """
SELECT date_trunc(%(field)s, v.ts, %(tz)s) AS bucket, count(*), sum(v.value), min(v.value), max(v.value),
       (array_agg(v.value ORDER BY v.ts DESC))[1], max(v.ts)
FROM {counted} AS v
WHERE v.source_id = %(src)s AND v.data_item_id = %(item)s AND v.ts >= %(lo)s AND v.ts < %(hi)s {scope}
GROUP BY 1 ORDER BY 1
"""


def rollup_queries(clients, users, source, repeat=7, rebuild=False):
    """The rollup phase (issue #9 deliverable 4): rollups built by the bulk rebuild, their size, then one
    source and item over a year by hour (target <= 50 ms), day and month: the selector's query through the
    park-access seam as the API runs it (every row of the year), the same computed from the raw readings, and
    the API itself (every page). Returns [(label, superuser ms, park admin ms)] (medians)."""
    from datetime import UTC, datetime, timedelta

    from django.db import connection

    from apps.accounts import access
    from apps.accounts.access import Action
    from apps.ingestion import rollups
    from apps.ingestion.partitions import add_months
    from apps.ingestion.selectors import ROLLUP_FIELDS, ReadingQuery

    if "ingestion_rollup" not in connection.introspection.table_names():
        print("\nrollup query: skipped (no ingestion_rollup table on this branch)")
        return []
    build_rollups(force=rebuild)
    rollup_storage()
    # The loaded year in the park's zone (Asia/Shanghai, UTC+8): the API's start and end are local.
    hi = datetime(*add_months(_months()[-1], 1).timetuple()[:3], tzinfo=UTC)
    year = (f"{_months()[0]:%Y-%m-%d} 00:00:00", f"{hi - timedelta(days=1):%Y-%m-%d} 23:59:59")
    code = COMMON[0]
    loops = max(repeat, 21)  # the queries are quick: enough samples for a p95
    print(f"\none source ({source}), one item ({code}), a year ({year[0][:10]} .. {year[1][:10]} park-local); "
          f"median / p95 of {loops} (API: {repeat}); load average {os.getloadavg()[0]:.1f}")
    print(f"{'':<34} {'rows':>6} {'superuser ms':>17} {'park-A admin ms':>17} {'target ms':>10} {'raw/rollup':>11}")
    results = []
    for name in ("hour", "day", "month"):
        params = {"interval": name, "sourceId": source, "dataCode": code, "start": year[0], "end": year[1]}
        queries = {who: ReadingQuery.from_params(params, users[who], Action.VIEW) for who in clients}

        def rollup_rows(q):
            return list(q.queryset().order_by("bucket", "id").values_list(*ROLLUP_FIELDS))

        rows = {who: len(rollup_rows(q)) for who, q in queries.items()}
        assert rows["superuser"] == rows["park-A admin"] > 0, rows
        fast = _alternate({who: (lambda q=q: rollup_rows(q)) for who, q in queries.items()}, loops)

        def server(q):
            """The same query's execution time inside PostgreSQL (EXPLAIN ANALYZE), without the client's
            fetch and the ORM's conversion of every row, which the load of other sessions bends most."""
            sql, sql_params = q.queryset().order_by("bucket", "id").values_list(*ROLLUP_FIELDS).query \
                .sql_with_params()

            def run():
                with connection.cursor() as cur:
                    cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, sql_params)
                    plan = cur.fetchone()[0]
                    run.ms.append((plan[0] if isinstance(plan, list) else plan)["Execution Time"])
            run.ms = []
            return run

        server_fns = {who: server(q) for who, q in queries.items()}
        _alternate(server_fns, loops)
        inside = {who: _stats(fn.ms[1:]) for who, fn in server_fns.items()}
        # From the raw readings: the same source, item and year, scoped for the park admin by the seam's parks.
        q = queries["superuser"]
        tz = "Asia/Shanghai"
        args = {"field": name, "tz": tz, "src": q.source_pks[0], "item": q.item_pks[0], "lo": q.start,
                "hi": q.end + timedelta(seconds=1)}

        def raw(who, args=args):
            ids = access.park_ids(users[who], Action.VIEW)
            scope = "" if ids is None else "AND v.park_id = ANY(%(parks)s)"
            sql = RAW.format(counted=rollups.COUNTED_READINGS, scope=scope)

            def run():
                with connection.cursor() as cur:
                    cur.execute(sql, {**args, "parks": ids})
                    return cur.fetchall()
            return run

        raw_fns = {who: raw(who) for who in clients}
        assert len(raw_fns["superuser"]()) == rows["superuser"], "the raw aggregate and the rollups disagree"
        slow = _alternate(raw_fns, max(3, repeat // 2))
        target = ROLLUP_TARGET_MS if name == "hour" else None

        def cell(pair):
            return f"{pair[0]:>7.1f} / {pair[1]:>7.1f}"

        worst = max(fast["superuser"][0], fast["park-A admin"][0])
        mark = "" if target is None or worst <= target else "  OVER"
        ratio = slow["superuser"][0] / max(fast["superuser"][0], 1e-9)
        print(f"{'rollups, by ' + name:<34} {rows['superuser']:>6} {cell(fast['superuser']):>17} "
              f"{cell(fast['park-A admin']):>17} {target or '':>10} {'':>11}{mark}", flush=True)
        mark = "" if target is None or max(v[0] for v in inside.values()) <= target else "  OVER"
        print(f"{'  of which SQL inside PostgreSQL':<34} {rows['superuser']:>6} {cell(inside['superuser']):>17} "
              f"{cell(inside['park-A admin']):>17} {target or '':>10} {'':>11}{mark}", flush=True)
        print(f"{'  raw readings, by ' + name:<34} {rows['superuser']:>6} {cell(slow['superuser']):>17} "
              f"{cell(slow['park-A admin']):>17} {'':>10} {ratio:>10.0f}x", flush=True)
        results.append((f"rollups, by {name}", fast["superuser"][0], fast["park-A admin"][0]))
        # The API: every page of the year (5 000 rows a page at most), as an integrator would fetch it.
        url = (f"/api/v1/readings?interval={name}&sourceId={source}&dataCode={code}&start={year[0]}"
               f"&end={year[1]}&limit=5000")

        def fetch(client, url=url):
            got, nxt = 0, url
            while nxt:
                resp = client.get(nxt)
                assert resp.status_code == 200, (nxt, resp.status_code, resp.content[:200])
                body = resp.json()
                got += len(body["results"])
                nxt = body["next"]
            return got

        api = _alternate({who: (lambda c=c: fetch(c)) for who, c in clients.items()}, repeat)
        print(f"{'  API, every page, by ' + name:<34} {fetch(clients['superuser']):>6} "
              f"{cell(api['superuser']):>17} {cell(api['park-A admin']):>17}", flush=True)
        results.append((f"API, by {name}", api["superuser"][0], api["park-A admin"][0]))
    hourly = results[0]
    print(f"rollup target: an hourly rollup query for one source over a year <= {ROLLUP_TARGET_MS} ms: "
          f"{'met' if max(hourly[1:]) <= ROLLUP_TARGET_MS else 'NOT met'} through the ORM "
          f"({max(hourly[1:]):.1f} ms median, every row fetched and converted); inside PostgreSQL see above")
    rollup_freshness()
    return results


def storage():
    """Size on disk of the readings: heap (with TOAST) and each index, summed over the partitions."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT sum(greatest(c.reltuples, 0))::bigint FROM pg_partition_tree('ingestion_reading') t "
                    "JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf")
        rows = cur.fetchone()[0] or 0
        cur.execute("SELECT sum(pg_table_size(relid))::bigint FROM pg_partition_tree('ingestion_reading') "
                    "WHERE isleaf")
        heap = cur.fetchone()[0] or 0
        cur.execute("SELECT c.relname, (SELECT sum(pg_relation_size(t.relid)) FROM pg_partition_tree(c.oid) t)::bigint"
                    " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE i.indrelid = 'ingestion_reading'::regclass ORDER BY 2 DESC")
        idx = cur.fetchall()
        cur.execute("SELECT pg_database_size(current_database())")
        db = cur.fetchone()[0]
    gb = 1024 ** 3
    print(f"\nsize on disk: {rows:,} readings (planner estimate); database {db / gb:.2f} GiB")
    print(f"  {'heap (+TOAST, FSM, VM)':<28} {heap / gb:>7.2f} GiB {heap / max(rows, 1):>7.1f} bytes/reading")
    for name, size in idx:
        print(f"  {name:<28} {(size or 0) / gb:>7.2f} GiB {(size or 0) / max(rows, 1):>7.1f} bytes/reading")
    total = heap + sum(s or 0 for _, s in idx)
    print(f"  {'total':<28} {total / gb:>7.2f} GiB {total / max(rows, 1):>7.1f} bytes/reading")


def timed(fn, repeat=5):
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=DEFAULT_READINGS)
    ap.add_argument("--parks", type=int, default=100)
    ap.add_argument("--months", type=int, default=12, help="consecutive months loaded (a smoke run: 1)")
    ap.add_argument("--workers", type=int, default=2, help="connections loading in parallel")
    ap.add_argument("--keep", action="store_true", help="reuse the loaded database")
    ap.add_argument("--repeat", type=int, default=7, help="requests per page and user (median)")
    ap.add_argument("--baseline", action="store_true", help="also time an exact COUNT(*) per filter (slow)")
    ap.add_argument("--rebuild-rollups", action="store_true",
                    help="build the rollups again with the bulk rebuild (else only when none or pending)")
    ap.add_argument("--only", default="", help="only the pages whose label contains this (e.g. 'data code')")
    args = ap.parse_args()
    globals()["MONTHS"] = args.months
    exists, admin_url = setup_env()
    import psycopg

    if exists and not args.keep:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {DB_NAME} WITH (FORCE)")
        exists = False
    if not exists:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from apps.ingestion.models import Reading

    if not exists or not Reading.objects.exists():
        load(args.readings, parks=args.parks, workers=args.workers)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM ingestion_reading_default")
        print(f"readings in the DEFAULT partition: {cur.fetchone()[0]}")
    print("month partitions with readings: " + ", ".join(
        f"{p.name} ({p.rows_estimate:,})" for p in _parts() if p.rows_estimate > 0))
    storage()
    run_pages(args.repeat, args.baseline, args.only, args.rebuild_rollups)


def run_pages(repeat=7, baseline=False, only="", rebuild_rollups=False):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from apps.accounts.models import Park
    from apps.accounts.services import set_membership
    from apps.ingestion.models import Reading

    park = Park.objects.get(code=PARK_CODE.format(1))
    users = get_user_model().objects
    root = users.filter(username="bench").first() or users.create_superuser(
        "bench", "bench@example.invalid", "bench-password-123")
    park_user = users.filter(username="bench-park-a").first() or users.create_user(
        "bench-park-a", "park-a@example.invalid", "bench-password-123")
    set_membership(actor="bench", user=park_user, park=park, role="admin")
    clients = {}
    for label, user in (("superuser", root), ("park-A admin", park_user)):
        clients[label] = Client()
        clients[label].force_login(user)
    with connection.cursor() as cur:
        cur.execute("SELECT sum(greatest(c.reltuples, 0))::bigint FROM pg_partition_tree('ingestion_reading') t "
                    "JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf")
        estimate = cur.fetchone()[0]
    parks = Park.objects.count()
    print(f"\nreadings stored (planner estimate): {estimate:,} over {parks} parks; park A = {park.code}; "
          f"load average {os.getloadavg()[0]:.1f} (2 cores shared with other sessions)")
    src = f"{park.code}-EM-0001"
    middle = _months()[len(_months()) // 2]  # July with the 12 months of 2025
    detail = Reading.objects.filter(park_id=park.pk, ts__gte=f"{middle:%Y-%m-%d}T00:00:00Z").order_by(
        "ts").values_list("pk", flat=True).first()
    last = _months()[-1]
    day = f"{last:%Y-%m}-10"
    pages = [
        # (label, query string or a path of its own, exact COUNT(*) filter for the --baseline column)
        ("unfiltered, newest first", "", {}),
        ("park", f"park={park.pk}", {"park_id": park.pk}),
        ("one source", f"source={src}", {"source__source_id": src}),
        ("data code, common", f"code={COMMON[0]}", {"data_item__code": COMMON[0]}),
        ("data code, rare", f"code={RARE}", {"data_item__code": RARE}),
        ("flag backfill", "flag=backfill", None),
        ("flag suspect", "flag=suspect", None),
        ("time range (1 day, newest)", f"start={day}%2000:00:00&end={day}%2023:59:59", None),
        ("time range (1 day, oldest)", "start=2025-01-10%2000:00:00&end=2025-01-10%2023:59:59", None),
        ("time range (1 month)", "start=2025-06-01%2000:00:00&end=2025-06-30%2023:59:59", None),
        ("source + range", f"source={src}&start=2025-01-10%2000:00:00&end=2025-01-11%2000:00:00", None),
        ("code + range", f"code={COMMON[1]}&start=2025-03-01%2000:00:00&end=2025-03-02%2000:00:00", None),
        ("page 50", "p=50", None),
        ("page 1000 (deep)", "p=1000", None),
        ("detail page", f"/ingestion/reading/{detail}/change/", None),
    ]
    print(f"\n{'readings browser page':<28} {'superuser ms':>13} {'park-A admin ms':>16} {'ratio':>6}"
          f" {'target ms':>10}" + (f"   {'baseline: exact COUNT(*) ms':>28}" if baseline else ""))
    worst, worst_ratio, results = 0.0, 0.0, []
    for label, query, count_filter in pages:
        if only not in label:
            continue
        url = query if query.startswith("/") else "/ingestion/reading/" + (f"?{query}" if query else "")
        for client in clients.values():
            resp = client.get(url)
            assert resp.status_code == 200, (url, resp.status_code)
        # alternated, so that other load on the machine falls on both figures alike
        samples = {who: [] for who in clients}
        for _ in range(repeat):
            for who, client in clients.items():
                t = time.perf_counter()
                client.get(url)
                samples[who].append((time.perf_counter() - t) * 1000)
        su, scoped = (statistics.median(samples[who]) for who in clients)
        worst, worst_ratio = max(worst, su, scoped), max(worst_ratio, scoped / su)
        results.append((label, su, scoped))
        base = ""
        if baseline and count_filter is not None:
            base = f"   {timed(lambda f=count_filter: Reading.objects.filter(**f).count(), repeat=1):>28.0f}"
        mark = "" if max(su, scoped) <= TARGET_MS else "  OVER"
        print(f"{label:<28} {su:>13.0f} {scoped:>16.0f} {scoped / su:>5.2f}x {TARGET_MS:>10}{base}{mark}",
              flush=True)
    rollup_queries(clients, {"superuser": root, "park-A admin": park_user}, src, repeat, rebuild_rollups)
    over = [label for label, su, scoped in results if max(su, scoped) > TARGET_MS]
    print(f"\nslowest page: {worst:.0f} ms (target: every filter's median <= {TARGET_MS} ms with {estimate:,} "
          f"readings over {MONTHS} monthly partitions: {'met' if not over else 'NOT met: ' + ', '.join(over)}); "
          f"worst scoped/superuser ratio {worst_ratio:.2f}x (target: <= 1.5x); "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
