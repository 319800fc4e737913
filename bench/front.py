"""Slow clients against the production front (issue #7): 1 000 concurrent HTTP connections posting single readings
while 200 slow clients trickle their headers, through nginx + gunicorn, beside the same load straight at gunicorn.

    .venv/bin/python -m bench.front                 # make bench-front: the three runs below, 60 s each
    .venv/bin/python -m bench.front --duration 10   # shorter
    .venv/bin/python -m bench.front --runs front    # one of: front, direct, today

Runs (each on a fresh ingestion table, a free port, loopback only):
  front   nginx (deploy/nginx/ template, TLS with a throw-away CA) before gunicorn (carbonpark/gunicorn.conf.py)
  direct  the same gunicorn, no front: the embedded default (`make run`)
  today   the same gunicorn with --worker-class sync: the default before issue #7

Load: one asyncio process holds --connections kept-alive connections; each posts one reading (its own source and
minute, never a duplicate) every --interval seconds, waiting for the answer first (a device). Slow clients: a
second process holds --slow connections that send their headers one byte per second and never finish (a closed
one is opened again), and asks GET /healthz on a fresh connection every 0.5 s (10 s time-out). Printed per run:
requests answered 200, errors and time-outs, latency p50/p99/max, /healthz answers and its max latency, CPU.
Target (issue #7): p99 <= 1 s through the front, /healthz answering throughout. Exit status 1 if fewer readings
are stored than were answered 200 (a reading is stored at most once: its source and minute are unique).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import resource
import ssl
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psutil

from bench.http_ingest.common import ROOT, TS_BASE, say
from bench.http_ingest.cpu import CpuProbe, postgres_processes
from bench.http_ingest.database import prepare_database, reset_tables, setup_fixtures, stored_count

PATH = "/api/v1/readings"
REQUEST_TIMEOUT = 30.0


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- HTTP/1.1 over asyncio streams ------------------------------------------------------------------------------

async def open_conn(port: int, tls: ssl.SSLContext | None):
    return await asyncio.open_connection("127.0.0.1", port, ssl=tls, server_hostname="localhost" if tls else None)


async def exchange(reader, writer, request: bytes) -> tuple[int, bytes, bool]:
    """Send one request, read its answer; (status, body, server keeps the connection)."""
    writer.write(request)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed by the server")
    status = int(status_line.split()[1])
    length, keep = 0, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
    body = await reader.readexactly(length) if length else b""
    return status, body, keep


def post_request(token: str, sid: str, minute: int) -> bytes:
    ts = (TS_BASE + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M:%S")
    body = (f'{{"sourceId":"{sid}","timestamp":"{ts}","value":{minute % 1000}.5,"unit":"kWh",'
            f'"status":"N"}}').encode()
    return (f"POST {PATH} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Token {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


# --- the load: N devices ----------------------------------------------------------------------------------------

def load_main(port, tls_ca, token, sources, connections, interval, duration, start_at, results):
    raise_nofile()
    tls = client_tls(tls_ca)

    async def device(c: int, stats: dict):
        sid = sources[c % len(sources)]
        per_source, slot = -(-connections // len(sources)), c // len(sources)
        # Phases spread over one interval (devices are not synchronised); the clock starts one interval later,
        # when every connection is open and has posted once.
        await asyncio.sleep(max(0.0, start_at - interval - time.monotonic()) + c * interval / connections)
        reader = writer = None
        k = 0
        next_at = time.monotonic()
        while time.monotonic() < start_at + duration:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            request = post_request(token, sid, k * per_source + slot)
            k += 1
            t = time.monotonic()
            stats["inflight"] += 1
            try:
                if writer is not None:  # kept alive: the server may have closed it meanwhile (as HTTP clients do,
                    try:                # send again once on a new connection; the reading is stored at most once)
                        status, body, keep = await asyncio.wait_for(exchange(reader, writer, request),
                                                                    REQUEST_TIMEOUT)
                    except (ConnectionError, asyncio.IncompleteReadError):
                        writer.close()
                        writer = None
                        stats["reconnects"] += 1
                if writer is None:
                    reader, writer = await open_conn(port, tls)
                    status, body, keep = await asyncio.wait_for(exchange(reader, writer, request),
                                                                REQUEST_TIMEOUT - (time.monotonic() - t))
            except (TimeoutError, OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
                stats["inflight"] -= 1
                stats["timeouts" if isinstance(e, TimeoutError) else "errors"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            stats["inflight"] -= 1
            latency = time.monotonic() - t
            if t >= start_at:
                stats["lat"].append(latency)
            if status == 200 and b'"accepted":1' in body.replace(b" ", b""):
                stats["ok"] += 1
            else:
                stats["bad"] += 1
                if len(stats["samples"]) < 3:
                    stats["samples"].append(f"{status} {body[:200]!r}")
            if not keep:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    async def main():
        stats = {"ok": 0, "bad": 0, "errors": 0, "timeouts": 0, "inflight": 0, "reconnects": 0, "lat": [],
                 "samples": []}
        tasks = [asyncio.create_task(device(c, stats)) for c in range(connections)]
        _done, pending = await asyncio.wait(tasks, timeout=start_at + duration + 5 - time.monotonic())
        stats["unanswered"] = stats["inflight"]  # still waiting 5 s after the end: counted, then dropped
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return stats

    stats = asyncio.run(main())
    results.put(("load", stats))


# --- slow clients and the /healthz probe ------------------------------------------------------------------------

def slow_main(port, tls_ca, slow, duration, start_at, ramp, results):
    raise_nofile()
    tls = client_tls(tls_ca)
    request = (f"GET {PATH} HTTP/1.1\r\nHost: localhost\r\n"
               + "".join(f"X-Slow-{i}: {'x' * 40}\r\n" for i in range(90)) + "\r\n").encode()
    end = start_at + duration
    counts = {"reopened": 0, "bytes": 0}

    async def trickler(i: int):
        await asyncio.sleep(max(0.0, start_at - ramp - time.monotonic()) + i * ramp / max(slow, 1))
        while time.monotonic() < end:
            try:
                _reader, writer = await open_conn(port, tls)
                for b in range(len(request) - 1):  # never the last byte
                    if time.monotonic() >= end:
                        break
                    writer.write(request[b:b + 1])
                    await writer.drain()
                    counts["bytes"] += 1
                    await asyncio.sleep(1.0)
                writer.close()
            except (OSError, ConnectionError):
                counts["reopened"] += 1
                await asyncio.sleep(0.2)

    async def probe():
        answers, failures, lat = 0, [], []
        req = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        while time.monotonic() < end:
            t = time.monotonic()
            try:
                reader, writer = await asyncio.wait_for(open_conn(port, tls), 10)
                status, body, _keep = await asyncio.wait_for(exchange(reader, writer, req), 10)
                writer.close()
                if status in (200, 503) and b"checks" in body:
                    answers += 1
                    lat.append(time.monotonic() - t)
                else:
                    failures.append(f"HTTP {status}")
            except (TimeoutError, OSError, ConnectionError, asyncio.IncompleteReadError) as e:
                failures.append(type(e).__name__)
            await asyncio.sleep(max(0.0, t + 0.5 - time.monotonic()))
        return answers, failures, lat

    async def main():
        tasks = [asyncio.create_task(trickler(i)) for i in range(slow)]
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        answers, failures, lat = await probe()
        for t in tasks:
            t.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
        return {"answers": answers, "failures": failures, "lat": lat, **counts}

    results.put(("slow", asyncio.run(main())))


def client_tls(ca_file: str | None) -> ssl.SSLContext | None:
    if ca_file is None:
        return None
    return ssl.create_default_context(cafile=ca_file)


# --- one run ----------------------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def run(kind: str, args, url: str, fx: dict, pki) -> dict:
    from tests.webfront import Gunicorn, Nginx

    reset_tables(url)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-front-{kind}-"))
    extra = ("--worker-class", "sync") if kind == "today" else ()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
    with contextlib.ExitStack() as stack:
        app = stack.enter_context(Gunicorn(url, redis_url, workdir / "gunicorn.log", workers=args.workers,
                                           extra_args=extra))
        port, ca_file = app.port, None
        if kind == "front":
            ca, cert, key = pki
            front = stack.enter_context(Nginx(workdir / "nginx", app.port, cert, key,
                                              worker_connections=2 * (args.connections + args.slow) + 512))
            port, ca_file = front.https_port, str(ca.cert_file)
        say(f"{kind}: gunicorn {'sync' if extra else 'gevent'} on {app.port}"
            + (f", nginx TLS on {port}" if kind == "front" else "") + f" (logs {workdir})")
        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        # CLOCK_MONOTONIC is shared by the processes of one boot. Clients start in 4 s (spawned processes
        # import), open their connections over one interval, and the clock runs from then for --duration.
        start_at = time.monotonic() + 4.0 + args.interval
        sources = [sid for sid, _pk in fx["sources"]]
        procs = [ctx.Process(target=load_main, args=(port, ca_file, fx["token"], sources, args.connections,
                                                     args.interval, args.duration, start_at, results)),
                 ctx.Process(target=slow_main, args=(port, ca_file, args.slow, args.duration, start_at,
                                                     args.interval, results))]
        for p in procs:
            p.start()
        groups = {"gunicorn": lambda: family(app.proc), "postgres": postgres_processes,
                  "clients": lambda: [psutil.Process(p.pid) for p in procs if p.is_alive()]}
        if kind == "front":
            groups["nginx"] = lambda: family(front.proc)
        probe = CpuProbe(groups)
        time.sleep(max(0.0, start_at - time.monotonic()))
        probe.start()
        got = {}
        deadline = start_at + args.duration + 60
        while len(got) < 2 and time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                name, payload = results.get(timeout=1)
                got[name] = payload
        cpu = probe.stop()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
        if len(got) < 2:
            raise RuntimeError(f"{kind}: a client process gave no result")
    load, slow = got["load"], got["slow"]
    stored = stored_count(url)
    return {"kind": kind, "load": load, "slow": slow, "stored": stored, "cpu": cpu}


def family(proc) -> list:
    """A process and its children (gunicorn's arbiter and workers, nginx's master and worker)."""
    try:
        parent = psutil.Process(proc.pid)
        return [parent, *parent.children()]
    except (psutil.NoSuchProcess, AttributeError):
        return []


def report(r: dict, args) -> None:
    load, slow = r["load"], r["slow"]
    lat = load["lat"]
    total = load["ok"] + load["bad"] + load["errors"] + load["timeouts"] + load["unanswered"]
    hz = slow["lat"]
    say(f"  {r['kind']:6} requests {total:,} ({len(lat):,} answered in the {args.duration:g} s window,"
        f" {len(lat) / args.duration:,.0f}/s), 200 {load['ok']:,},"
        f" other {load['bad']:,}, errors {load['errors']:,}, time-outs {load['timeouts']:,}, unanswered at the end"
        f" {load['unanswered']:,}, kept-alive connections found closed {load['reconnects']:,}; latency p50"
        f" {pct(lat, 0.5) * 1000:,.0f} ms, p99 {pct(lat, 0.99) * 1000:,.0f} ms, max {max(lat or [0]) * 1000:,.0f} ms")
    say(f"         /healthz: {slow['answers']} answered, {len(slow['failures'])} failed"
        f"{' (' + ', '.join(sorted(set(slow['failures']))) + ')' if slow['failures'] else ''}, max"
        f" {max(hz or [float('nan')]) * 1000:,.0f} ms; slow clients sent {slow['bytes']:,} bytes,"
        f" reopened {slow['reopened']:,}; stored {r['stored']:,} readings")
    c = r["cpu"]
    cap = c["wall"] * c["cores"]
    say(f"         CPU: machine busy {c['machine'] / cap:.0%} of {c['cores']} cores; "
        + ", ".join(f"{k} {c[k] / cap:.0%}" for k in ("gunicorn", "nginx", "postgres", "clients") if k in c)
        + "; other " + ", ".join(f"{name} {v / cap:.0%}" for name, v in c["foreign"]))
    if load["samples"]:
        say(f"         sample answers: {load['samples']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--slow", type=int, default=200)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load per run")
    ap.add_argument("--interval", type=float, default=30.0, help="seconds between two posts of one connection")
    ap.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: its configuration's)")
    ap.add_argument("--runs", default="front,direct,today")
    ap.add_argument("--sources", type=int, default=200)
    ap.add_argument("--truncate-ok", action="store_true", help="DATABASE_URL's ingestion tables may be emptied")
    args = ap.parse_args(argv)
    if args.connections > 5000 or args.slow > 2000 or args.duration > 600:
        ap.error("bounded: at most 5 000 connections, 2 000 slow clients, 600 s")
    raise_nofile()
    os.chdir(ROOT)
    url = prepare_database(args)
    fx = setup_fixtures(args.sources)
    from tests.brokers import make_ca

    pki_dir = Path(tempfile.mkdtemp(prefix="bench-front-pki-"))
    ca = make_ca(pki_dir / "ca")
    cert, key = ca.issue("localhost", pki_dir / "server")
    say(f"load: {args.connections} connections, one reading each every {args.interval:g} s "
        f"(offered {args.connections / args.interval:,.0f}/s), {args.slow} slow clients, {args.duration:g} s per run")
    results = []
    lost = False
    for kind in args.runs.split(","):
        r = run(kind, args, url, fx, (ca, cert, key))
        results.append(r)
        if r["stored"] < r["load"]["ok"]:  # more is fine: requests cut off at the end may still be stored
            say(f"  {kind}: {r['load']['ok']:,} readings answered 200 but only {r['stored']:,} stored")
            lost = True
    say("=" * 100)
    for r in results:
        report(r, args)
    front = next((r for r in results if r["kind"] == "front"), None)
    if front:
        p99 = pct(front["load"]["lat"], 0.99)
        ok = p99 <= 1.0 and not front["slow"]["failures"]
        say(f"target: p99 <= 1 s through the front and /healthz answering throughout: {'OK' if ok else 'MISSED'}")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
