"""Options and the run: ``python -m bench.peer [options]`` (see the package docstring)."""

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

from bench.mqtt_ingest.common import REDIS_URL, ROOT, raise_fd_limit, say

from . import __doc__ as PACKAGE_DOC

BENCH_DB = "carbonpark_bench_peer"
SIDES = {"ours": "CarbonPark (2 x run_mqtt_ingest)", "peer": "Node-RED 5 (2 instances, one shared subscription)"}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.peer", description=PACKAGE_DOC.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readings", type=int, default=200_000, help="readings of each saturation run")
    ap.add_argument("--rates", type=float, nargs="+", default=(5000, 10000), help="readings/s of the latency runs")
    ap.add_argument("--latency-seconds", type=float, default=10, help="length of each latency run")
    ap.add_argument("--order", default="ours,peer,peer,ours",
                    help="the slots, each: start that side, warm up, saturation, latency runs, stop")
    ap.add_argument("--no-kill", action="store_true", help="skip the SIGKILL runs")
    ap.add_argument("--kill-at", type=float, default=0.5, help="SIGKILL once this share of the readings is stored")
    ap.add_argument("--consumers", type=int, default=2, help="processes per side (run_mqtt_ingest / Node-RED)")
    ap.add_argument("--publishers", type=int, default=2, help="publisher processes")
    ap.add_argument("--connections", type=int, default=4, help="device (gateway) connections per publisher")
    ap.add_argument("--per-message", type=int, nargs=2, default=(10, 50), metavar=("MIN", "MAX"))
    ap.add_argument("--window", type=int, default=100, help="unacknowledged messages per device connection")
    ap.add_argument("--sources", type=int, default=500)
    ap.add_argument("--poll", type=float, default=0.01, help="commit monitors' poll interval, seconds")
    ap.add_argument("--drain-idle", type=float, default=10, help="give up draining after this long without progress")
    ap.add_argument("--drain-timeout", type=float, default=900)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="npm install of bench/peer/package.json (default var/bench/peer, or CARBONPARK_PEER_CACHE)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (broker, logs, userDirs)")
    ap.add_argument("--truncate-ok", action="store_true",
                    help="with DATABASE_URL: allow truncating its ingestion tables when not empty")
    args = ap.parse_args()
    args.order = [s.strip() for s in args.order.split(",") if s.strip()]
    if not set(args.order) <= set(SIDES):
        ap.error("--order takes ours and peer")
    args.batch_wait = None
    args.poison_every = 0
    return args


def prepare(args) -> str:
    """DATABASE_URL if set (its ingestion tables get truncated), else a fresh carbonpark_bench_peer."""
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


def wipe_sessions(broker, client_ids) -> None:
    """Connect as each client id with a clean start and no session expiry, then leave: the broker drops the
    session, its subscription and anything queued for it, so the side that is not running never holds
    (and later replays) the other side's messages."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    for cid in client_ids:
        c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
        connected = []
        c.on_connect = lambda *_a, done=connected: done.append(1)
        c.connect(broker.host, broker.port, 60, clean_start=True, properties=props)
        c.loop_start()
        deadline = time.monotonic() + 10
        while not connected and time.monotonic() < deadline:
            time.sleep(0.02)
        c.disconnect()
        c.loop_stop()
        if not connected:
            raise RuntimeError(f"could not clear the MQTT session of {cid}")


class Slot:
    """One side running for a while: its processes, its commit monitor and a phase runner."""

    def __init__(self, side: str, ctx: dict, k: int):
        self.side, self.ctx, self.k = side, ctx, k
        args, broker, url, tmp = ctx["args"], ctx["broker"], ctx["url"], ctx["tmp"]
        if side == "ours":
            from bench.mqtt_ingest.consumers import start_consumers
            from bench.mqtt_ingest.monitor import CommitMonitor

            logdir = tmp / f"slot{k}-ours"
            logdir.mkdir()
            self.procs = start_consumers(args.consumers, broker.url, url, logdir, args.batch_wait)
            self.monitor = CommitMonitor(url, args.poll)
        else:
            from .lean import SnapshotMonitor
            from .nodered import start_peers

            self.procs = start_peers(ctx["inst"], args.consumers, broker, url, tmp / f"slot{k}-peer")
            self.monitor = SnapshotMonitor(url, args.poll)
        self.monitor.start()

    def ids(self) -> str:
        return ", ".join(f"{p.client_id} (pid {p.proc.pid})" for p in self.procs)

    def run(self, name: str, readings: int, rate: float | None, publishers: int, killer=None) -> dict:
        from bench.mqtt_ingest.phases import run_phase

        from .phases import run_peer_phase

        c = self.ctx
        c["minute"] += 20_000  # each phase its own minutes: no reading is ever a duplicate of an earlier one
        kw = dict(args=c["args"], fx=c["fx"], url=c["url"], broker=c["broker"], monitor=self.monitor,
                  readings=readings, rate=rate, minute0=c["minute"], publishers=publishers)
        if self.side == "ours":
            if killer:
                killer.start()
            r = run_phase(name, consumers=self.procs, **kw)
            if killer:
                killer.join()
        else:
            r = run_peer_phase(name, peers=self.procs, killer=killer, **kw)
        r.update(side=self.side, slot=self.k)
        return r

    def killer(self, readings: int, bytes_per_row: float | None):
        """Kills the first process once ``kill_at`` of the readings are stored, then starts it again."""
        from .phases import Killer

        args, victim = self.ctx["args"], self.procs[0]
        if self.side == "ours":
            from bench.mqtt_ingest.consumers import Consumer

            self.monitor.reset()

            def reached():
                return self.monitor.accepted >= args.kill_at * readings

            def kill():
                victim.proc.kill()
                victim.proc.wait()

            def restart():
                again = Consumer(self.ctx["broker"].url, self.ctx["url"], victim.client_id,
                                 victim.log_path.with_name(victim.log_path.stem + "-restarted.log"), args.batch_wait)
                self.procs[0] = again
                again.wait_connected()
        else:
            self.monitor.reset()
            goal = args.kill_at * readings * bytes_per_row

            def reached():
                return self.monitor.size >= goal

            kill = victim.kill

            def restart():
                victim.start()
                victim.wait_connected()
        return Killer(reached, kill, restart)

    def stop(self) -> None:
        self.monitor.stop()
        for p in self.procs:
            p.stop()
        wipe_sessions(self.ctx["broker"], [p.client_id for p in self.procs])


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
    from bench.mqtt_ingest.broker import start_broker

    from .install import ensure_installed
    from .lean import create_table
    from .report import report_kill, report_phase, report_table, report_targets

    inst = ensure_installed(args.cache_dir)
    v = inst.versions()
    say(f"peer: Node-RED {v['node-red']} on Node {v['node']}, pg {v['pg']} ({inst.cache})")
    raise_fd_limit()
    url = prepare(args)
    fx = setup_fixtures(args.sources)
    create_table(url)
    find_postmaster(url)
    load = machine_load()
    say(f"machine: {mp.cpu_count()} cores, {load:.0%} busy before the run"
        + ("  (WARNING: something else is running; compare the ratios, not the absolute figures)"
           if load > 0.1 else ""))
    tmp = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    results: list[dict] = []
    kills: dict[str, dict] = {}
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: None if args.keep else shutil.rmtree(tmp, ignore_errors=True))
        broker = start_broker(tmp / "broker")
        stack.callback(broker.stop)
        say(f"broker: Mosquitto pid {broker.proc.pid} on {broker.url} (logs in {tmp})")
        ctx = dict(args=args, fx=fx, url=url, broker=broker, tmp=tmp, inst=inst, minute=0)
        last_slot = {side: max(i for i, s in enumerate(args.order) if s == side) for side in set(args.order)}
        for k, side in enumerate(args.order, 1):
            slot = Slot(side, ctx, k)
            try:
                say(f"\n[{k}/{len(args.order)}] {SIDES[side]}: {slot.ids()}")
                w = slot.run("warmup", 5000, None, 1)
                say(f"  warm-up: stored {w['stored']:,} of {w['published']:,}")
                say(f"  saturation: {args.readings:,} readings as fast as {args.publishers} x {args.connections} "
                    "device connections publish ...")
                sat = slot.run("saturation", args.readings, None, args.publishers)
                report_phase(sat)
                results.append(sat)
                for rate in args.rates:
                    n = int(rate * args.latency_seconds)
                    say(f"  latency: {n:,} readings at {rate:,.0f} readings/s ...")
                    r = slot.run(f"rate{rate:.0f}", n, rate, args.publishers)
                    report_phase(r)
                    results.append(r)
                if not args.no_kill and k - 1 == last_slot[side]:
                    sats = [r for r in results if r["side"] == side and r["name"] == "saturation"]
                    bpr = None
                    if side == "peer":
                        bpr = sats[-1]["table_bytes"] / max(sats[-1]["stored"], 1) or 100.0
                    say(f"  SIGKILL: {args.readings:,} readings as fast as they come; {slot.procs[0].client_id} "
                        f"killed once {args.kill_at:.0%} are stored, then started again ...")
                    killer = slot.killer(args.readings, bpr)
                    r = slot.run("kill", args.readings, None, args.publishers, killer=killer)
                    r.update(t_kill=killer.t_kill, t_back=killer.t_back, kill_error=killer.error)
                    report_phase(r)
                    kills[side] = r
            finally:
                slot.stop()
        say("")
        report_table(args, results, kills)
        if kills:
            report_kill(kills)
        ok = report_targets(results, kills)
        if args.keep:
            say(f"kept: {tmp}")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; broker, consumers, Node-RED and publishers stopped", file=sys.stderr)
        sys.exit(130)
