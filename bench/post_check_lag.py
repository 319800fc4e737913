#!/usr/bin/env python
"""Benchmark: while ingest runs at 10 000 readings/s, the checks after storage lag it by <= 60 s (issue #12,
benchmark line 4).

In its own database (BENCH_LAG_DB, default `carbonpark_bench_lag` on DATABASE_URL's server): one park of --sources
meters (CS010201) with post rules jump, frozen, outlier and duplicate, and a balance group (one main meter, nine
sub-meters). Three threads, as production runs them:

- ingest: --workers processes, each storing batches of its meters' readings through ``ingest_readings`` (the one
  way in), together paced to --rate readings/s (each meter a reading every sources/rate seconds, random values
  between 100 and 101); and every 2 s one probe reading of a probe meter alternating 0 and 10 000, which its jump
  rule (absolute 1 000) must find;
- rollups: ``apps.ingestion.rollups.refresh()`` every beat period of `refresh-rollups` (carbonpark/celery.py);
- post checks: ``run_post_checks()`` every beat period of `post-checks` (carbonpark/celery.py).

The lag of a probe: the end of the post-check run whose commit first shows its hit, minus the time its ingest
call returned. Prints the rate reached, the probes' lag (median, max) and the runs' durations beside the target.
End to end, so it holds whether the checks' queue is fed when readings are stored or when the rollup refresh
takes them.

    python bench/post_check_lag.py [--seconds 180] [--rate 10000] [--sources 1000] [--workers 2] [--keep]
"""

import argparse
import os
import random
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import series_db  # noqa: E402

DB_NAME = os.environ.get("BENCH_LAG_DB", "carbonpark_bench_lag")
TARGET_S = 60.0
BATCH = 500


def setup(n_sources):
    from apps.accounts.services import save_park
    from apps.catalog.models import DataItem
    from apps.quality.services import save_balance_group, save_rule
    from apps.sources.services import save_source

    item = DataItem.objects.get(code="CS010201")
    park = save_park(actor="bench", code="LAG000", name_zh="滞后基准", time_zone="Asia/Shanghai")
    sources = [save_source(actor="bench", source_id=f"LAG000-EM-{i:05d}", park=park, name=f"meter {i}",
                           data_items=[item]) for i in range(n_sources)]
    probe = save_source(actor="bench", source_id="LAG000-PROBE", park=park, name="probe", data_items=[item])
    for kind, params in (("jump", {"absolute": 1000}), ("frozen", {"n": 50}), ("outlier", {"window": 12, "k": 8}),
                         ("duplicate", {"min_points": 60, "epsilon": 0})):
        save_rule(actor="bench", name=f"{kind} lag", kind=kind, params=params, severity="flag", park=park)
    save_balance_group(actor="bench", name="main vs subs", park=park, main_source=sources[0], main_item=item,
                       members=[(s, item) for s in sources[1:10]], tolerance_pct=50)
    return [s.source_id for s in sources], probe.source_id


def ingest_worker(codes, rate, start_iso, stop, counter):
    """One ingest process (spawned): its meters' readings through ingest_readings, paced to ``rate``/s."""
    import django

    django.setup()
    from apps.ingestion.services import ingest_readings

    rnd = random.Random(codes[0])  # each worker its own values (equal ones would be duplicated series)
    start_ts = datetime.fromisoformat(start_iso)
    step = len(codes) / rate  # seconds between one meter's readings
    k = sent = 0
    t0 = time.monotonic()
    while not stop.is_set():
        records = []
        for _ in range(BATCH):
            i, m = k % len(codes), k // len(codes)
            records.append({"sourceId": codes[i], "timestamp": (start_ts + timedelta(seconds=m * step)).isoformat(
                timespec="milliseconds"), "value": round(100 + rnd.random(), 6)})
            k += 1
        sent += ingest_readings(records, channel="bench", actor="bench").accepted
        with counter.get_lock():
            counter.value += len(records)
        ahead = sent / rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="ingest processes (the meters split between them)")
    parser.add_argument("--keep", action="store_true", help="reuse the database (its parks and rules)")
    args = parser.parse_args()
    kept = series_db.setup_env(DB_NAME, args.keep)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import close_old_connections, connection

    from apps.ingestion.rollups import refresh
    from apps.ingestion.services import ingest_readings
    from apps.quality.models import PostHit
    from apps.quality.postchecks import run_post_checks
    from apps.sources.models import DataSource
    from carbonpark.celery import app

    start_ts = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)  # yesterday: settled periods too
    if not kept:
        call_command("migrate", verbosity=0)
        codes, probe = setup(args.sources)
    else:
        codes = list(DataSource.objects.filter(source_id__startswith="LAG000-EM-").order_by("source_id")
                     .values_list("source_id", flat=True))
        probe = "LAG000-PROBE"
    if not kept:  # a first minute of data, then statistics, as autovacuum keeps them on a running system (without
        # any, the planner read a series' readings through the item index: 45 s for 1 000 series' 30 s)
        warm = start_ts - timedelta(minutes=2)
        for m in range(12):
            ingest_readings([{"sourceId": c, "timestamp": (warm + timedelta(seconds=5 * m)).isoformat(),
                              "value": 100 + i / 1000 + m / 7} for i, c in enumerate(codes)], channel="bench",
                            actor="bench")
        refresh(budget=None)
        run_post_checks()
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    refresh_every = float(app.conf.beat_schedule["refresh-rollups"]["schedule"])
    check_every = float(app.conf.beat_schedule["post-checks"]["schedule"])
    print(f"{len(codes)} meters, target {args.rate:,.0f} readings/s for {args.seconds:.0f} s; rollups every "
          f"{refresh_every:.0f} s, post checks every {check_every:.0f} s (carbonpark/celery.py)", flush=True)

    stop = threading.Event()
    probes = {}  # probe ts (ISO) -> wall time its ingest returned
    stored = [0]
    runs = []  # (start, end, PostRun)
    refreshes = []
    lags = []

    def ingest():  # the probes; the meters' readings come from the worker processes
        p = 0
        while not stop.is_set():
            probe_ts = start_ts + timedelta(seconds=p * 2)
            ingest_readings([{"sourceId": probe, "timestamp": probe_ts.isoformat(timespec="milliseconds"),
                              "value": 10000 if p % 2 else 0}], channel="bench", actor="bench")
            probes[probe_ts] = time.monotonic()
            p += 1
            stop.wait(2)
        close_old_connections()

    def beat(every, fn, log):
        nxt = time.monotonic()
        while not stop.is_set():
            t = time.monotonic()
            if t >= nxt:
                out = fn()
                log.append((t, time.monotonic(), out))
                nxt += every
                if nxt < time.monotonic():  # a run longer than the period: the next one starts now (expires)
                    nxt = time.monotonic()
            stop.wait(0.2)
        close_old_connections()

    def checks():
        out = run_post_checks()
        end = time.monotonic()
        seen = PostHit.objects.filter(source__source_id=probe).values_list("ts", flat=True)
        for ts in seen:
            if ts in probes and ts not in done:
                done.add(ts)
                lags.append(end - probes[ts])
        return out

    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    mp_stop, counter = ctx.Event(), ctx.Value("q", 0)
    share = [codes[w::args.workers] for w in range(args.workers)]
    workers = [ctx.Process(target=ingest_worker, args=(c, args.rate / args.workers, start_ts.isoformat(), mp_stop,
                                                      counter)) for c in share]
    for w in workers:
        w.start()
    done = set()
    threads = [threading.Thread(target=ingest), threading.Thread(target=beat, args=(refresh_every, refresh, refreshes)),
               threading.Thread(target=beat, args=(check_every, checks, runs))]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    try:
        while time.monotonic() - t0 < args.seconds:
            time.sleep(5)
            stored[0] = counter.value
            print(f"  {time.monotonic() - t0:5.0f} s: {stored[0]:,} stored, {len(runs)} check runs, "
                  f"{len(lags)} probes checked", flush=True)
    finally:
        stop.set()
        mp_stop.set()
        for t in threads:
            t.join()
        for w in workers:
            w.join()
    stored[0] = counter.value
    elapsed = time.monotonic() - t0
    pending = [ts for ts in probes if ts not in done]
    connection.close()
    rate = stored[0] / elapsed
    print(f"ingest: {stored[0]:,} readings in {elapsed:.0f} s: {rate:,.0f} readings/s (target {args.rate:,.0f})")
    if refreshes:
        print(f"rollup refreshes: {len(refreshes)}, longest {max(e - s for s, e, _ in refreshes):.1f} s")
    if runs:
        durations = [e - s for s, e, _ in runs]
        print(f"post-check runs: {len(runs)}, median {statistics.median(durations):.1f} s, longest "
              f"{max(durations):.1f} s; hits {sum(sum(r.hits.values()) for _, _, r in runs)}")
        longest = max(runs, key=lambda r: r[1] - r[0])[2]
        print("  longest run: " + ", ".join(f"{k} {v:.1f} s" for k, v in longest.timings.items())
              + f" ({longest.series} series)")
    if lags:
        worst = max(lags)
        verdict = "met" if worst <= TARGET_S and rate >= 0.95 * args.rate else "NOT met"
        print(f"lag ingest -> check done, {len(lags)} probes: median {statistics.median(lags):.1f} s, max "
              f"{worst:.1f} s; target <= {TARGET_S:.0f} s at {args.rate:,.0f} readings/s: {verdict} "
              f"({len(pending)} probes of the last {check_every:.0f} s not yet checked when stopped)")
    else:
        print("no probe checked: the run was too short")


if __name__ == "__main__":
    main()
