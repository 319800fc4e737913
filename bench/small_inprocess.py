"""The CPU of one single-reading ``POST /api/v1/readings``, in-process: the served WSGI application
(carbonpark.wsgi, the web workers' database pool and last-seen coalescing) called directly, no HTTP server,
no client. Steadier than ``bench.http_small`` on a shared machine (no wrk, no gunicorn, no queueing), so a
change is measured before/after in one run even while other work loads the cores.

    .venv/bin/python -m bench.small_inprocess                                   # this checkout
    .venv/bin/python -m bench.small_inprocess --tree before=/tmp/cp-main --tree after=.   # alternating, one run
    .venv/bin/python -m bench.small_inprocess --profile                         # + cProfile (CPU time) of it

Prints, per tree and round: wall ms, the worker's CPU ms and PostgreSQL's CPU ms (our database's backends and
the server's shared processes) per request. ``DATABASE_URL`` as for bench.http_small (its ingestion tables
are truncated); every request stores a new reading (answer 200 checked).
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(n: int, warm: int, profile: bool) -> dict:
    """In this process (cwd: the tree served): n requests after warm ones."""
    # This checkout's bench helpers, the served tree's application (nothing of it is imported before the swap).
    sys.path.insert(0, str(ROOT))
    from bench.http_ingest.cpu import CpuProbe, find_postmaster, postgres_processes
    from bench.http_ingest.database import reset_tables
    from bench.http_small import device_token

    sys.path[:] = [os.getcwd()] + [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    os.environ.setdefault("CARBONPARK_DB_POOL", "8")  # as under gunicorn (carbonpark/gunicorn.conf.py)

    url = os.environ["DATABASE_URL"]
    reset_tables(url)
    key, sources = device_token(url, 300)
    from carbonpark.wsgi import application  # django.setup() before any model is imported

    importlib.import_module("apps.ingestion.lastseen").defer(0.5)  # as a web worker does
    counter = [0]
    statuses: dict[str, int] = {}

    def start_response(status, headers, exc_info=None):
        statuses[status] = statuses.get(status, 0) + 1

    def one():
        counter[0] += 1
        c = counter[0]
        ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(946684800 + c))
        body = f'{{"sourceId":"{sources[c % len(sources)]}","timestamp":"{ts}","value":{c}.5}}'.encode()
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/readings", "SCRIPT_NAME": "", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_AUTHORIZATION": "Token " + key, "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False}
        out = application(environ, start_response)
        b"".join(out)
        out.close()

    for _ in range(warm):
        one()
    find_postmaster(url)
    probe = CpuProbe({"postgres": postgres_processes})
    probe.start()
    t, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        one()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    res = probe.stop()
    out = {"wall_ms": wall * 1000 / n, "worker_ms": cpu * 1000 / n, "postgres_ms": res["postgres"] * 1000 / n,
           "statuses": statuses, "machine_busy": res["machine"] / wall / (os.cpu_count() or 1)}
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile(time.process_time)
        prof.enable()
        for _ in range(n):
            one()
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(60)
        out["profile"] = text.getvalue()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.small_inprocess", description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warm", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2, help="rounds over the trees, order flipped each round")
    ap.add_argument("--tree", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(measure(args.requests, args.warm, args.profile)))
        return 0
    if "DATABASE_URL" not in os.environ:
        sys.exit("DATABASE_URL: a disposable, migrated database (its ingestion tables are truncated)")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
    trees = [tuple(t.split("=", 1)) for t in args.tree] or [("this", str(ROOT))]
    ok = True
    print("| tree | round | wall ms | worker CPU ms | PostgreSQL CPU ms | machine busy | answers |")
    print("|---|---|---|---|---|---|---|")
    for rnd in range(args.rounds):
        for name, path in (trees if rnd % 2 == 0 else trees[::-1]):
            env = dict(os.environ, PYTHONPATH=str(Path(path).resolve()))
            env.pop("DJANGO_SETTINGS_MODULE", None)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--requests", str(args.requests),
                   "--warm", str(args.warm)] + (["--profile"] if args.profile else [])
            done = subprocess.run(cmd, cwd=Path(path).resolve(), env=env, capture_output=True, text=True)
            line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
            if done.returncode or not line:
                print(f"{name}: failed\n{done.stderr[-3000:]}", file=sys.stderr)
                return 1
            r = json.loads(line[0][7:])
            ok &= set(r["statuses"]) == {"200 OK"}
            print(f"| {name} | {rnd + 1} | {r['wall_ms']:.2f} | {r['worker_ms']:.3f} | {r['postgres_ms']:.3f} | "
                  f"{r['machine_busy']:.0%} | {r['statuses']} |")
            if args.profile:
                print(r["profile"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
