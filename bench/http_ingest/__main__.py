"""Options and the run: ``python -m bench.http_ingest [options]`` (see the package docstring)."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import sys
import time
from datetime import UTC, datetime

from . import __doc__ as PACKAGE_DOC
from .clients import run_http
from .common import ROOT, URL_PATH, say
from .cpu import find_postmaster, machine_load
from .data import make_bodies, make_rows
from .database import prepare_database, setup_fixtures
from .profiling import run_profile
from .raw import raw_plans, run_raw
from .report import report_data, report_http, report_raw, report_summary


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.http_ingest", description=PACKAGE_DOC.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000, help="records per request (default 1000)")
    ap.add_argument("--clients", type=int, default=6, help="concurrent client processes (default 6)")
    ap.add_argument("--workers", type=int, default=None,
                    help="gunicorn workers (default: carbonpark/gunicorn.conf.py's, one per core, at least 2)")
    ap.add_argument("--quick", action="store_true", help="100 000 readings")
    ap.add_argument("--sources", type=int, default=300, help="data sources the readings spread over")
    ap.add_argument("--port", type=int, default=0, help="gunicorn port (default: a free one)")
    ap.add_argument("--gunicorn-config", default="carbonpark/gunicorn.conf.py",
                    help="gunicorn config (default: production's; another one e.g. to profile a worker)")
    ap.add_argument("--raw-big-txn", type=int, default=100_000,
                    help="rows per transaction of the bigger-transaction raw COPY runs (0: skip them)")
    ap.add_argument("--raw-conns", default=f"1,{mp.cpu_count()}",
                    help="comma-separated loader connection counts for the batch-sized raw runs "
                         "(default 1,<cores>); the best one is the baseline")
    ap.add_argument("--skip-raw", action="store_true", help="HTTP only")
    ap.add_argument("--truncate-ok", action="store_true",
                    help="with DATABASE_URL: allow truncating its ingestion tables when not empty")
    ap.add_argument("--profile", action="store_true",
                    help="instead of the benchmark: time each stage of a batch in-process and cProfile it")
    ap.add_argument("--profile-batches", type=int, default=100)
    ap.add_argument("--profile-top", type=int, default=30)
    args = ap.parse_args()
    if args.quick:
        args.readings = 100_000
    return args


def main() -> int:
    args = parse_args()
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    os.chdir(ROOT)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even if started with it ignored

    url = prepare_database(args)
    fx = setup_fixtures(args.sources)
    find_postmaster(url)
    load = machine_load()
    say(f"machine: {mp.cpu_count()} cores, {load:.0%} busy before the run"
        + ("  (WARNING: something else is running; figures will be low and noisy)" if load > 0.1 else ""))
    if args.profile:
        run_profile(args, fx)
        return 0

    t = time.perf_counter()
    bodies = make_bodies(args.readings, args.batch, fx)
    rows = None if args.skip_raw else make_rows(args.readings, args.batch, fx, datetime.now(UTC))
    report_data(args, bodies, time.perf_counter() - t)

    say(f"\nHTTP: {args.clients} clients -> POST {URL_PATH} ...")
    h = run_http(args, url, fx, bodies)
    report_http(args, h)

    raws = []
    if not args.skip_raw:
        for per_txn, nconn in raw_plans(args):
            say(f"\nraw COPY: {args.readings:,} rows, {per_txn:,}-row transactions, {nconn} connection(s) ...")
            r = run_raw(url, rows, per_txn, nconn)
            report_raw(args, r)
            raws.append(r)

    ok = report_summary(args, h, raws)
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; gunicorn stopped", file=sys.stderr)
        sys.exit(130)
