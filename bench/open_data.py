"""Benchmark: readings/s through the third-party open API, POST /api/v1/open/data (interfaces.md §6), from 20
platforms pushing 1 000-record batches with their signed-in bearer tokens, next to POST /api/v1/readings with the
same records in the same run (target: open/data ≥ 0.9 × readings).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/<disposable db> REDIS_URL=redis://127.0.0.1:6379/<n> \\
        .venv/bin/python -m bench.open_data --readings 100000

What it does: migrates the database (bench.http_ingest.database: truncates the ingestion tables; refuses a database
holding readings unless --truncate-ok), registers 20 platforms in one park through apps.integrations.services
(certified, whitelisting 127.0.0.1, a per-platform rate limit raised to 1 000 000/min: 1 000-record pushes at full
speed are far beyond the published 100 requests/min, which is the limit under test in tests/test_platforms.py),
each subscribed to CS010201, and 20 meters for /api/v1/readings with one API token. Each platform authenticates
over HTTP (HMAC-SHA256 of app_id + timestamp + nonce, /open/auth). Then, on gunicorn as in production, both
endpoints get the same number of readings, in 1 000-record bodies with an Idempotency-Key, from --clients client
processes; each phase on truncated tables, the order swapped every round, --rounds rounds (the best of each kept:
other agents share the machine). Every answer must be 200 with all accepted,
and the stored count must equal what was sent.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import multiprocessing as mp
import os
import secrets
import sys
import time
from datetime import timedelta

from bench.http_ingest.common import ROOT, TS_BASE
from bench.http_ingest.database import prepare_database, reset_tables, stored_count
from bench.http_ingest.server import Gunicorn, free_port

TARGET_RATIO = 0.9
PLATFORMS = 20
BATCH = 1000


def setup(n: int) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    django.setup()
    from django.db import connections

    from apps.accounts.access import SystemPrincipal
    from apps.accounts.models import Park
    from apps.accounts.services import issue_token, save_park
    from apps.catalog.models import DataItem
    from apps.core.validators import uscc_check_char
    from apps.integrations import open as open_api
    from apps.integrations.services import register_platform
    from apps.sources.services import save_source

    root = SystemPrincipal("bench")
    park = Park.objects.filter(code="BO01").first() or save_park(
        actor="bench", code="BO01", name_zh="开放接口基准园区", time_zone="Asia/Shanghai")
    item = DataItem.objects.get(code="CS010201")
    meters = []
    for i in range(n):
        sid = f"BO01-EM-{secrets.token_hex(3)}-{i:02d}"
        save_source(actor="bench", source_id=sid, park=park, name=sid, data_items=[item])
        meters.append(sid)
    _t, key = issue_token(actor="bench", park=park, name=f"bench {secrets.token_hex(4)}")
    platforms = []
    for i in range(n):
        first17 = f"9111000MA01BN{i:04d}"[:17]
        platform, secret = register_platform(
            actor=root, park=park, name=f"bench platform {i}", uscc=first17 + uscc_check_char(first17),
            base_url="https://bench.invalid", ip_whitelist=["127.0.0.1/32"], alert_email="bench@example.invalid",
            certified=True, rate_limit=1_000_000)
        sub, _template = open_api.subscribe(platform, {"dataCodes": ["CS010201"]})
        platforms.append((platform.app_id, secret, sub.topic_code))
    connections.close_all()
    return {"meters": meters, "token": key, "platforms": platforms}


def auth(port: int, app_id: str, secret: str) -> str:
    ts, nonce = str(int(time.time())), secrets.token_hex(8)
    sig = hmac.new(secret.encode(), f"{app_id}{ts}{nonce}".encode(), hashlib.sha256).hexdigest()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/v1/open/auth", json.dumps({"app_id": app_id, "timestamp": ts, "nonce": nonce,
                                                          "signature": sig}), {"Content-Type": "application/json"})
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError(f"auth of {app_id}: {r.status} {body[:300]!r}")
    return json.loads(body)["token"]


def bodies(fx: dict, total: int, round_no: int) -> tuple[list, list]:
    """The same records for both endpoints: (readings bodies, open bodies), each [(headers key, bytes)]."""
    n = len(fx["meters"])
    per_source = total // n
    readings, opened = [], []
    base = TS_BASE + timedelta(days=400 * round_no)
    for s in range(n):
        for start in range(0, per_source, BATCH):
            recs = [{"timestamp": (base + timedelta(minutes=k)).strftime("%Y-%m-%d %H:%M:%S"), "value": k % 977,
                     "dataCode": "CS010201"} for k in range(start, min(start + BATCH, per_source))]
            readings.append((None, json.dumps([{**r, "sourceId": fx["meters"][s]} for r in recs]).encode()))
            opened.append((s, json.dumps({"topic_code": fx["platforms"][s][2], "records": recs}).encode()))
    return readings, opened


def client(port, path, auths, work, counter, results):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    accepted, errors = 0, []
    while True:
        with counter.get_lock():
            k = counter.value
            counter.value += 1
        if k >= len(work):
            break
        who, body = work[k]
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"b-{k}-{len(body)}",
                   "Authorization": auths[who] if who is not None else auths[None]}
        conn.request("POST", path, body, headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200 and len(errors) < 5:
            errors.append(f"{r.status} {data[:300]!r}")
        accepted += json.loads(data).get("accepted", 0) if data[:1] == b"{" else 0
    results.put((accepted, errors))


def run(url, port, path, auths, work, clients) -> dict:
    reset_tables(url)
    ctx = mp.get_context("fork")
    counter, results = ctx.Value("q", 0), ctx.Queue()
    t0 = time.perf_counter()
    procs = [ctx.Process(target=client, args=(port, path, auths, work, counter, results), daemon=True)
             for _ in range(clients)]
    for p in procs:
        p.start()
    outs = [results.get(timeout=1800) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(timeout=10)
    return {"wall": wall, "accepted": sum(a for a, _ in outs), "errors": [e for _, es in outs for e in es],
            "stored": stored_count(url)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readings", type=int, default=100_000, help="per endpoint and round (default 100 000)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--truncate-ok", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    url = prepare_database(args)
    fx = setup(PLATFORMS)
    port = free_port()
    server = Gunicorn(url, port, args.workers)
    best = {"readings": None, "open": None}
    ok = True
    try:
        server.wait_ready(args.workers or 2)
        auths = {None: f"Token {fx['token']}"}
        auths |= {i: f"Bearer {auth(port, a, s)}" for i, (a, s, _t) in enumerate(fx["platforms"])}
        print(f"gunicorn on 127.0.0.1:{port}; {PLATFORMS} platforms signed in over /open/auth (HMAC-SHA256)")
        for round_no in range(args.rounds):
            readings, opened = bodies(fx, args.readings, round_no)
            phases = [("readings", "/api/v1/readings", readings), ("open", "/api/v1/open/data", opened)]
            for name, path, work in (phases if round_no % 2 == 0 else phases[::-1]):  # neither always goes first
                out = run(url, port, path, auths, work, args.clients)
                sent = sum(len(json.loads(b)) if name == "readings" else len(json.loads(b)["records"])
                           for _w, b in work)
                good = out["accepted"] == sent == out["stored"] and not out["errors"]
                ok &= good
                rate = out["stored"] / out["wall"]
                print(f"round {round_no + 1} {path:<20} {sent:>9,} readings in {out['wall']:6.2f} s: "
                      f"{rate:>9,.0f} readings/s  {'ok' if good else 'LOST/DOUBLED/ERRORS'} {out['errors'][:2]}")
                best[name] = max(best[name] or 0, rate)
    finally:
        server.stop()
    ratio = best["open"] / best["readings"]
    print(f"\nbest: /api/v1/readings {best['readings']:,.0f} readings/s, /api/v1/open/data {best['open']:,.0f} "
          f"readings/s; ratio {ratio:.2f} (target ≥ {TARGET_RATIO}) {'MET' if ratio >= TARGET_RATIO else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
