"""Options and the run: ``python -m bench.mqtt_ingest [options]`` (see the package docstring)."""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from . import __doc__ as PACKAGE_DOC
from .common import BENCH_DB, CONNECTIONS_TARGET, LATENCY_RATE, PHASE_MINUTES, REDIS_URL, ROOT, raise_fd_limit, say


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.mqtt_ingest", description=PACKAGE_DOC.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readings", type=int, default=1_000_000, help="readings of the saturation phase")
    ap.add_argument("--quick", action="store_true", help="200 000 readings, a 10 s latency phase")
    ap.add_argument("--rate", type=float, default=LATENCY_RATE, help="readings/s of the latency phase")
    ap.add_argument("--latency-seconds", type=float, default=30)
    ap.add_argument("--hold", type=int, default=CONNECTIONS_TARGET,
                    help="idle device connections held during the latency phase (0: none)")
    ap.add_argument("--consumers", type=int, default=2, help="run_mqtt_ingest processes")
    ap.add_argument("--batch-wait", type=float, default=None, help="the consumers' --batch-wait (default theirs)")
    ap.add_argument("--publishers", type=int, default=2, help="publisher processes")
    ap.add_argument("--connections", type=int, default=4, help="device (gateway) connections per publisher")
    ap.add_argument("--per-message", type=int, nargs=2, default=(10, 50), metavar=("MIN", "MAX"),
                    help="readings per message, drawn uniformly (default 10 50)")
    ap.add_argument("--window", type=int, default=100, help="unacknowledged messages per device connection")
    ap.add_argument("--sources", type=int, default=500)
    ap.add_argument("--poll", type=float, default=0.01, help="commit monitor's poll interval, seconds")
    ap.add_argument("--drain-idle", type=float, default=30, help="give up draining after this long without a commit")
    ap.add_argument("--drain-timeout", type=float, default=900)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-saturation", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--poison-every", type=int, default=1000,
                    help="after the clean saturation run, the same again with one poison message (a NUL byte, "
                         "5 000 levels of JSON nesting, alternately) every this many messages (0: no poisoned run)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (broker, consumer logs)")
    ap.add_argument("--truncate-ok", action="store_true",
                    help="with DATABASE_URL: allow truncating its ingestion tables when not empty")
    args = ap.parse_args()
    if args.quick:
        args.readings, args.latency_seconds = 200_000, 10
    return args


def prepare(args) -> str:
    """DATABASE_URL if set (its ingestion tables get truncated), else a fresh carbonpark_bench_mqtt."""
    import psycopg

    from bench.http_ingest.database import prepare_database

    if not os.environ.get("DATABASE_URL"):
        with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            c.execute(f"CREATE DATABASE {BENCH_DB}")
        say(f"database: {BENCH_DB} on 127.0.0.1:5432 (recreated)")
        os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}"
        args.truncate_ok = True
    return prepare_database(args)


def main() -> int:
    args = parse_args()
    os.environ.setdefault("REDIS_URL", REDIS_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    os.chdir(ROOT)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    from bench.http_ingest.cpu import find_postmaster, machine_load
    from bench.http_ingest.database import setup_fixtures

    from .broker import SysWatcher, process_fd_limit, start_broker
    from .consumers import start_consumers
    from .holder import ConnectionHolder
    from .monitor import CommitMonitor
    from .phases import run_phase
    from .report import report_phase, report_summary

    soft, hard = raise_fd_limit()
    if args.hold and soft < args.hold + 1000:
        say(f"WARNING: open-file limit {soft} (hard {hard}) is too low to hold {args.hold:,} connections")
    url = prepare(args)
    fx = setup_fixtures(args.sources)
    find_postmaster(url)
    load = machine_load()
    say(f"machine: {mp.cpu_count()} cores, {load:.0%} busy before the run"
        + ("  (WARNING: something else is running; figures will be low and noisy)" if load > 0.1 else ""))
    tmp = Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
    sat = poisoned = lat = held = None
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: None if args.keep else shutil.rmtree(tmp, ignore_errors=True))
        broker = start_broker(tmp / "broker")
        stack.callback(broker.stop)
        say(f"broker: Mosquitto pid {broker.proc.pid} on {broker.url}, open-file limit "
            f"{process_fd_limit(broker.proc.pid)} (logs in {tmp})")
        consumers = start_consumers(args.consumers, broker.url, url, tmp, args.batch_wait)
        for c in consumers:
            stack.callback(c.stop)
        say(f"consumers: {', '.join(f'{c.client_id} (pid {c.proc.pid})' for c in consumers)}")
        monitor = CommitMonitor(url, args.poll)
        monitor.start()
        stack.callback(monitor.stop)
        watcher = SysWatcher(broker.url)
        stack.callback(watcher.close)
        phase = dict(args=args, fx=fx, url=url, broker=broker, monitor=monitor, consumers=consumers)

        say("\nwarm-up: 5 000 readings ...")
        w = run_phase("warmup", **phase, readings=5000, rate=None, minute0=PHASE_MINUTES["warmup"], publishers=1)
        say(f"  stored {w['stored']:,}, lost {w['lost']:,}")

        if not args.skip_saturation:
            say(f"\nsaturation: {args.readings:,} readings as fast as {args.publishers} x {args.connections} "
                "device connections publish ...")
            sat = run_phase("saturation", **phase, readings=args.readings, rate=None,
                            minute0=PHASE_MINUTES["saturation"], publishers=args.publishers)
            report_phase(sat)
            if args.poison_every:
                say(f"\nsaturation, poisoned: the same {args.readings:,} readings plus one poison message every "
                    f"{args.poison_every:,} messages (a NUL byte / 5 000 levels of nesting, alternately) ...")
                poisoned = run_phase("poisoned", **phase, readings=args.readings, rate=None,
                                     minute0=PHASE_MINUTES["poisoned"], publishers=args.publishers,
                                     poison=args.poison_every)
                report_phase(poisoned)

        groups = {}
        if args.hold:
            say(f"\nconnections: opening {args.hold:,} idle MQTT 3.1.1 device connections ...")
            holder = ConnectionHolder(broker.host, broker.port, args.hold)
            stack.callback(holder.stop)
            opened = holder.open()
            held = {"opened": opened["open"], "seconds": opened["seconds"], "errors": opened["errors"]}
            held["broker_count"] = watcher.wait_for(opened["open"], timeout=10)
            say(f"  {opened['open']:,} connected in {opened['seconds']:.1f} s (refused {opened['refused']}, "
                f"failed {opened['failed']}); the broker counts {held['broker_count'] or 0:,} clients")
            groups["connection holder"] = holder.psutil_processes

        if not args.skip_latency:
            n = int(args.rate * args.latency_seconds)
            say(f"\nlatency: {n:,} readings at {args.rate:,.0f} readings/s ({args.latency_seconds:.0f} s)"
                + (f" while {held['opened']:,} device connections are held" if held else "") + " ...")
            lat = run_phase("latency", **phase, readings=n, rate=args.rate, minute0=PHASE_MINUTES["latency"],
                            publishers=args.publishers, cpu_groups=groups)
            report_phase(lat)

        if args.hold:
            time.sleep(2.5)  # one more $SYS period
            watcher.poll()
            checked = holder.check()
            held.update(alive=checked["alive"], broker_count=watcher.last, broker_peak=watcher.peak,
                        errors=held["errors"] + checked["errors"])
            say(f"\nconnections after the latency phase: {checked['alive']:,} answered a PINGREQ, "
                f"{checked['dropped']:,} dropped by the broker")
        warnings = [line for c in consumers for line in c.warnings()]
        ok = report_summary(args, sat, lat, held, warnings, poisoned)
        if args.keep:
            say(f"kept: {tmp}")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; broker, consumers, publishers and connections stopped", file=sys.stderr)
        sys.exit(130)
