"""Benchmark: the cost of one small request (issue #9 deliverable 6): single-reading ``POST /api/v1/readings``
and ``GET /healthz`` under ``wrk``, against the product's web server started as the run command starts it.

    .venv/bin/python -m bench.http_small                       # make bench-small
    .venv/bin/python -m bench.http_small --duration 10 --connections 10,1000
    .venv/bin/python -m bench.http_small --tree before=/tmp/cp-main --tree after=.   # before/after in one run
    .venv/bin/python -m bench.http_small --tree w2=. --tree "w5=.?WEB_CONCURRENCY=5"  # a setting, both ways

- Server: ``gunicorn carbonpark.wsgi -c carbonpark/gunicorn.conf.py`` (the Procfile's ``web``: gevent workers,
  the settings' database pool) on a free port, with the run command's environment (its own ``CARBONPARK_VAR``
  and ``PROMETHEUS_MULTIPROC_DIR`` in a temporary directory, ``HEALTH_EXPECT`` empty: no consumer beats here,
  /healthz checks the database and Redis). ``--tree NAME=PATH`` (repeatable) serves another checkout of the
  project (e.g. ``git worktree add /tmp/cp-main main``) with the same database and load, phases alternating
  between trees, so a change is measured before and after in one run on the same machine.
- Database: ``DATABASE_URL`` if set (disposable: its ingestion tables are truncated; ``--truncate-ok`` when not
  empty), else a fresh ``carbonpark_bench`` on 127.0.0.1:5432. One park, ``--sources`` sources bound to
  CS010201, one **device** token (the common case), through the services (``bench/http_ingest/database.py``).
- Load: ``wrk`` (Debian's package; ``scripts/install-wrk``) with a Lua script posting one reading per request,
  ``{"sourceId", "timestamp", "value"}``, every timestamp unique (per wrk thread and phase), sources
  round-robin, ``Authorization: Token``. ``--connections`` (default 10 and 1 000) for ``--duration`` seconds
  each after a short warm-up; then ``GET /healthz`` at 10 connections. wrk's request time-out is raised to
  30 s so that slow answers are measured, not dropped.
- Checks (exit 1 otherwise): every POST answered 200, and the readings stored during the phase (counted once
  the requests in flight have settled) equal the 200 answers (at most the requests in flight when wrk stopped
  are stored beyond them: wrk drops their answers). The ingestion tables are emptied once, at the start.
- Prints req/s, p50 and p99 per phase beside the baseline of issue #9 (before this work), and the CPU
  seconds per 1 000 requests of gunicorn and PostgreSQL. Other load on the 2 cores lowers every figure: the
  run prints how busy the machine was before it started.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_ingest.common import say  # noqa: E402
from bench.http_ingest.cpu import CpuProbe, find_postmaster, machine_load, postgres_processes  # noqa: E402
from bench.http_ingest.database import connect, prepare_database, reset_tables  # noqa: E402

# Issue #9, measured before this work on the 2-core machine: (req/s, p50 ms, p99 ms); None where not given.
BASELINE = {("post", 10): (390, 25, None), ("post", 1000): (None, 2600, 2900), ("healthz", 10): (880, None, None)}
TARGETS = "single-reading POSTs >= 1 500 req/s; p99 <= 1 000 ms at 1 000 connections"

LUA = r"""
-- One reading per request, every (source, timestamp) unique: per thread a block of seconds, per phase another.
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  sources = {}
  for s in string.gmatch(SOURCES, "[^,]+") do table.insert(sources, s) end
  nsrc = #sources
  base = BASE + tid * 1000000
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Token " .. TOKEN
  statuses = {}
end
function request()
  counter = counter + 1
  local body = string.format('{"sourceId":"%s","timestamp":"%s.000","value":%d.5}',
    sources[(counter % nsrc) + 1], os.date("!%Y-%m-%d %H:%M:%S", base + counter), counter % 100000)
  return wrk.format(nil, nil, nil, body)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 200 and not first_error then first_error = status .. " " .. string.sub(body, 1, 300) end
end
function done(summary, latency, requests)
  local st = {}
  local err = nil
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do st[tostring(k)] = (st[tostring(k)] or 0) + v end
    err = err or t:get("first_error")
  end
  local parts = {}
  for k, v in pairs(st) do table.insert(parts, string.format('"%s":%d', k, v)) end
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"statuses":{%s},"first_error":%q}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    table.concat(parts, ","), err or ""))
end
"""

HEALTHZ_LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local st = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do st[tostring(k)] = (st[tostring(k)] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(st) do table.insert(parts, string.format('"%s":%d', k, v)) end
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"statuses":{%s},"first_error":""}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    table.concat(parts, ",")))
end
"""

BASE_EPOCH = 946684800  # 2000-01-01 UTC; phase k uses [BASE + k * 4e6, ...): up to 4 wrk threads x 1e6 s each


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The Procfile's web process from checkout ``tree``, with the run command's environment."""

    def __init__(self, tree: Path, url: str, workers: int | None, extra_env: dict):
        self.port = free_port()
        self.var = Path(tempfile.mkdtemp(prefix="bench-small-var-"))
        (self.var / "run" / "metrics").mkdir(parents=True)
        self.log_path = self.var / "gunicorn.log"
        env = dict(os.environ, DATABASE_URL=url, CARBONPARK_HOST="127.0.0.1", CARBONPARK_PORT=str(self.port),
                   CARBONPARK_VAR=str(self.var), PROMETHEUS_MULTIPROC_DIR=str(self.var / "run" / "metrics"),
                   HEALTH_EXPECT="", PYTHONUNBUFFERED="1", **extra_env)
        # The tree's own settings module, not this checkout's.
        env["PYTHONPATH"] = str(tree)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        # The secrets of the run command live under var/: the same key for every tree (none is signed here).
        for name in ("SECRET_KEY", "CARBONPARK_MASTER_KEY"):
            env.setdefault(name, "bench-" + name.lower() + "-x" * 20)
        if workers:
            env["WEB_CONCURRENCY"] = str(workers)
        exe = Path(sys.executable).with_name("gunicorn")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([str(exe), "carbonpark.wsgi", "-c", "carbonpark/gunicorn.conf.py"],
                                         cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited; {self.log_path}:\n" + self.log_path.read_text()[-3000:])
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2).read()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn not ready after {timeout} s; see {self.log_path}")

    def workers(self):
        import psutil

        try:
            return psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what we started
                self.proc.wait()
        shutil.rmtree(self.var, ignore_errors=True)


def device_token(url: str, n_sources: int) -> tuple[str, list[str]]:
    """Park, sources and a device token (through the services); returns the key and the source ids."""
    from bench.http_ingest.database import setup_fixtures

    fx = setup_fixtures(n_sources)
    from apps.accounts.models import ApiToken, Park
    from apps.accounts.services import issue_token

    _token, key = issue_token(actor="bench", park=Park.objects.get(pk=fx["park_pk"]),
                              name=f"bench device {time.time():.3f}", role=ApiToken.Role.DEVICE)
    from django.db import connections

    connections.close_all()
    return key, [sid for sid, _pk in fx["sources"]]


def run_wrk(port: int, path: str, lua: str, connections: int, duration: float, threads: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    try:
        cmd = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(duration))}s",
               "--timeout", "30s", "-s", f.name, f"http://127.0.0.1:{port}{path}"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    finally:
        os.unlink(f.name)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            res = json.loads(line[8:])
            res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
            return res
    raise RuntimeError(f"wrk gave no result ({out.returncode}):\n{out.stdout}\n{out.stderr}")


def post_lua(token: str, sources: list[str], phase: int) -> str:
    head = (f'TOKEN = "{token}"\nSOURCES = "{",".join(sources)}"\n'
            f"BASE = {BASE_EPOCH + phase * 4_000_000}\n")
    return head + LUA


def stored(url: str) -> int:
    with connect(url) as conn:
        return conn.execute("SELECT count(*) FROM ingestion_reading").fetchone()[0]


def settled(url: str) -> int:
    """The stored count once the requests wrk left in flight are done (no change for a second)."""
    last = stored(url)
    for _ in range(60):
        time.sleep(1)
        now = stored(url)
        if now == last:
            return now
        last = now
    return last


def phase(args, url, server, name, kind, conns, token, sources, k) -> dict:
    path = "/api/v1/readings" if kind == "post" else "/healthz"
    lua = post_lua(token, sources, 2 * k + 1) if kind == "post" else HEALTHZ_LUA
    run_wrk(server.port, path, post_lua(token, sources, 2 * k) if kind == "post" else lua, conns, args.warmup,
            args.threads)
    before = settled(url) if kind == "post" else 0
    probe = CpuProbe({"gunicorn": server.workers, "postgres": postgres_processes})
    probe.start()
    res = run_wrk(server.port, path, lua, conns, args.duration, args.threads)
    cpu = probe.stop()
    res.update(tree=name, kind=kind, conns=conns, cpu=cpu)
    if kind == "post":
        res["stored"] = settled(url) - before
    return res


def ms(us) -> str:
    return "-" if us is None else f"{us / 1000:,.0f}" if us >= 10_000 else f"{us / 1000:,.1f}"


def report(results: list[dict]) -> bool:
    ok = True
    say("\n| tree | request | conns | req/s | p50 ms | p99 ms | max ms | baseline req/s, p50, p99 | "
        "gunicorn / PostgreSQL CPU ms per request | answers |")
    say("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        b = BASELINE.get((r["kind"], r["conns"]), (None, None, None))
        base = ", ".join("-" if v is None else f"{v:,}" for v in b)
        n = max(r["requests"], 1)
        cpu = f"{r['cpu']['gunicorn'] * 1000 / n:.2f} / {r['cpu']['postgres'] * 1000 / n:.2f}"
        statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted(r["statuses"].items()))
        errs = {k: v for k, v in r["errors"].items() if v}
        label = "POST 1 reading" if r["kind"] == "post" else "GET /healthz"
        say(f"| {r['tree']} | {label} | {r['conns']:,} | {r['rps']:,.0f} | {ms(r['p50_us'])} | {ms(r['p99_us'])} "
            f"| {ms(r['max_us'])} | {base} | {cpu} | {statuses}{'; errors ' + str(errs) if errs else ''} |")
        if r["kind"] == "post":
            ok200 = r["statuses"].get("200", 0)
            bad = sum(v for k, v in r["statuses"].items() if k != "200")
            if bad or errs:
                ok = False
                say(f"    FAIL: {bad} answers not 200, errors {errs}; first: {r['first_error']}")
            if not ok200 <= r["stored"] <= ok200 + r["conns"]:
                ok = False
                say(f"    FAIL: {r['stored']:,} readings stored for {ok200:,} answers of 200")
    say(f"\ntargets: {TARGETS}; baseline = issue #9 before this work (same machine, wrk, make run's server)")
    other = [r["cpu"]["foreign"] for r in results if r["cpu"].get("foreign")]
    if other:
        say("other processes' CPU during the phases (top): "
            + "; ".join(", ".join(f"{n} {s:.1f}s" for n, s in f) for f in other[:4]))
    return ok


def on_term(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.http_small", description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=15, help="seconds per measured phase (default 15)")
    ap.add_argument("--warmup", type=float, default=3, help="seconds of load before each phase (default 3)")
    ap.add_argument("--connections", default="10,1000", help="POST phases' connection counts (default 10,1000)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--workers", type=int, default=None, help="WEB_CONCURRENCY (default: gunicorn.conf.py's)")
    ap.add_argument("--sources", type=int, default=300)
    ap.add_argument("--skip-healthz", action="store_true")
    ap.add_argument("--tree", action="append", default=[], metavar="NAME=PATH[?KEY=VALUE&...]",
                    help="serve this checkout, with this environment (repeatable; default: this one as 'this'), "
                         "e.g. --tree w5=.?WEB_CONCURRENCY=5")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="for the server (repeatable)")
    ap.add_argument("--truncate-ok", action="store_true",
                    help="with DATABASE_URL: allow truncating its ingestion tables when not empty")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: scripts/install-wrk (Debian's package), or apt-get install wrk")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    os.chdir(ROOT)
    signal.signal(signal.SIGTERM, on_term)
    trees, tree_env = [], {}
    for spec in args.tree:  # NAME=PATH[?KEY=VALUE&KEY=VALUE]: a checkout, and environment of its own
        name, _, rest = spec.partition("=")
        path, _, query = rest.partition("?")
        trees.append((name, Path(path).resolve()))
        tree_env[name] = dict(kv.split("=", 1) for kv in query.split("&") if kv)
    trees = trees or [("this", ROOT)]
    extra_env = dict(e.split("=", 1) for e in args.env)
    url = prepare_database(args)
    reset_tables(url)
    token, sources = device_token(url, args.sources)
    find_postmaster(url)
    load = machine_load()
    say(f"machine: {os.cpu_count()} cores, {load:.0%} busy before the run"
        + ("  (WARNING: something else is running; figures will be low and noisy)" if load > 0.1 else ""))
    plan = [("post", int(c)) for c in args.connections.split(",")]
    if not args.skip_healthz:
        plan.append(("healthz", 10))
    results = []
    k = 0
    # Trees alternate within each phase (and their order flips each phase), so drift falls on both alike.
    servers = {}
    try:
        for name, tree in trees:
            servers[name] = Server(tree, url, args.workers, {**extra_env, **tree_env.get(name, {})})
        for s in servers.values():
            s.wait_ready()
        say(f"gunicorn: {', '.join(f'{n} on :{s.port}' for n, s in servers.items())}; "
            f"wrk -t{args.threads}, {args.duration:g} s per phase")
        for i, (kind, conns) in enumerate(plan):
            order = trees if i % 2 == 0 else trees[::-1]
            for name, _tree in order:
                say(f"  {name}: {kind} at {conns} connections ...")
                results.append(phase(args, url, servers[name], name, kind, conns, token, sources, k))
                k += 1
    finally:
        for s in servers.values():
            s.stop()
    results.sort(key=lambda r: (r["kind"] != "post", r["conns"], [n for n, _ in trees].index(r["tree"])))
    return 0 if report(results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; gunicorn stopped", file=sys.stderr)
        sys.exit(130)
