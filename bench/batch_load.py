"""Batch file loading rate and memory (issue #11 benchmark): ``load_file`` on a generated CSV of ``--rows``
readings (1.5 M ≈ 100 MB), in a subprocess whose peak RSS is read from ``resource.getrusage``, beside the raw
idempotent COPY of the same rows into the same table in the same run (bench/http_ingest/raw.py: binary COPY into a
staging table + INSERT … ON CONFLICT DO NOTHING, 5 000-row transactions and one transaction for all). Then the
same readings as XLSX and as XML, smaller (``--small-rows``), each with its own rate. First, the upload of the CSV
over loopback to gunicorn with tuspy, single stream and ``--parts`` parallel parts (bench/batch_upload.py).
``--before TREE`` loads every file a second time with the loader of another source tree (e.g. main's, exported
with ``git archive main | tar -x -C TREE``) against the same database, for before/after figures in one run.

    .venv/bin/python bench/batch_load.py                   # 1.5 M rows CSV, 200 000 rows XLSX and XML
    .venv/bin/python bench/batch_load.py --rows 300000 --small-rows 50000 --before /tmp/main-tree

Database: DATABASE_URL if set (its ingestion tables are truncated: --truncate-ok), else a fresh carbonpark_bench.
Targets (2 cores): CSV ≥ 50 000 rows/s and ≥ 0.6 × raw COPY, loader peak RSS ≤ 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zoneinfo
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_ingest.common import ITEM_CODE, PARK_CODE, fmt, say  # noqa: E402
from bench.http_ingest.data import make_rows, reading_at  # noqa: E402
from bench.http_ingest.database import prepare_database, reset_tables, setup_fixtures, stored_count  # noqa: E402
from bench.http_ingest.raw import run_raw  # noqa: E402

TARGET_RATE, TARGET_RATIO, TARGET_RSS_MB = 50_000, 0.6, 300
HEADER = ["sourceId", "dataCode", "timestamp", "value", "unit", "status"]

CHILD = """
import json, os, resource, sys, time
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
django.setup()
from apps.accounts.access import SystemPrincipal
from apps.accounts.models import Park
from apps.batch.loading import load_file
from django.db import connection
park = Park.objects.get(code=sys.argv[3])
with connection.cursor() as c:
    c.execute("SELECT pg_backend_pid()")
    bpid = c.fetchone()[0]
def backend_cpu():
    f = open(f"/proc/{bpid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
b0 = backend_cpu()
kw = {"batch_size": int(sys.argv[4])} if int(sys.argv[4]) else {}
rss0 = int(next(ln for ln in open("/proc/self/status") if ln.startswith("VmRSS:")).split()[1])
t = time.perf_counter()
rep = load_file(sys.argv[1], park=park, actor=SystemPrincipal("bench"), filename=sys.argv[2], **kw)
wall = time.perf_counter() - t
out = rep.to_json()
def hwm_mb():  # this process's own peak (ru_maxrss keeps the parent's peak across exec on Linux)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
out.update(wall=wall, cpu=time.process_time(), backend_cpu=backend_cpu() - b0, rss_mb=hwm_mb(),
           rss_start_mb=rss0 / 1024)
print("RESULT " + json.dumps(out))
"""


def rows_of(n: int, fx: dict):
    tz = zoneinfo.ZoneInfo(fx["tz"])
    local_of = {}
    for i in range(n):
        sid, _pk, ts, value = reading_at(i, fx["sources"])
        local = local_of.get(ts)
        if local is None:
            local_of.clear()
            local = local_of[ts] = ts.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S.000")
        yield sid, ITEM_CODE, local, value


def write_csv(path: Path, n: int, fx: dict) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(f"# park: {PARK_CODE}\n# period: 2020\n# producer: bench\n# records: {n}\n")
        fh.write(",".join(HEADER) + "\n")
        fh.writelines(f"{sid},{code},{ts},{value},kWh,N\n" for sid, code, ts, value in rows_of(n, fx))


def write_xlsx(path: Path, n: int, fx: dict) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    ws = book.create_sheet("data")
    ws.append([f"# records: {n}"])
    ws.append(HEADER)
    for sid, code, ts, value in rows_of(n, fx):
        ws.append([sid, code, ts, value, "kWh", "N"])
    book.save(path)


def write_xml(path: Path, n: int, fx: dict) -> None:
    from lxml import etree

    with etree.xmlfile(str(path), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("batch", park=PARK_CODE, period="2020", producer="bench", records=str(n)):
            for sid, code, ts, value in rows_of(n, fx):
                xf.write(etree.Element("record", sourceId=sid, dataCode=code, timestamp=ts, value=str(value),
                                       unit="kWh", status="N"))


def run_loader(path: Path, batch: int, env: dict, tree: Path = ROOT) -> dict:
    """load_file of ``tree`` (this one, or --before's) on ``path`` in a child process; ``batch`` 0: its default."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    env = dict(env, PYTHONPATH=str(tree))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), path.name, PARK_CODE, str(batch)], cwd=tree,
                          env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.exit(f"loader failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    out = json.loads(lines[-1][7:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out["rss_children_mb"] = max(after, before) / 1024  # the largest child so far, as the kernel counted it
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_500_000)
    ap.add_argument("--small-rows", type=int, default=200_000, help="rows of the XLSX and XML files")
    ap.add_argument("--sources", type=int, default=300)
    ap.add_argument("--batch", type=int, default=0, help="load_file's batch_size (0: its default)")
    ap.add_argument("--before", type=Path, help="another source tree whose loader runs the same files (before)")
    ap.add_argument("--before-batch", type=int, default=0, help="the --before tree's batch_size (0: its default)")
    ap.add_argument("--parts", type=int, default=4, help="parallel parts of the concatenated upload")
    ap.add_argument("--skip-upload", action="store_true")
    ap.add_argument("--truncate-ok", action="store_true")
    ap.add_argument("--skip-small", action="store_true")
    ap.add_argument("--again", action="store_true", help="also load the CSV a second time (all duplicates)")
    args = ap.parse_args()

    url = prepare_database(args)
    fx = setup_fixtures(args.sources)
    workdir = Path(tempfile.mkdtemp(prefix="cp-batch-bench-"))
    env = dict(os.environ, DATABASE_URL=url, BATCH_REPORT_ROOT=str(workdir / "reports"),
               BATCH_MAX_BYTES=str(1 << 30))
    say(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")

    csv_path = workdir / f"{PARK_CODE}_CS_2020_20200201000000_001.csv"
    t = time.perf_counter()
    write_csv(csv_path, args.rows, fx)
    size_mb = csv_path.stat().st_size / 1e6
    say(f"CSV: {fmt(args.rows)} rows, {size_mb:.1f} MB, generated in {time.perf_counter() - t:.1f} s")

    if not args.skip_upload:
        from bench.batch_upload import run_uploads

        run_uploads(url, fx["token"], csv_path, workdir, parts=args.parts)

    before = None
    if args.before:
        reset_tables(url)
        before = run_loader(csv_path, args.before_batch, env, args.before.resolve())
        report_load("CSV, BEFORE (--before tree)", args.rows, before, url)
    reset_tables(url)
    res = run_loader(csv_path, args.batch, env)
    report_load("CSV", args.rows, res, url)
    csv_rate = args.rows / res["wall"]

    if args.again:
        again = run_loader(csv_path, args.batch, env)
        say(f"load_file CSV again (all duplicates): {again['wall']:.1f} s, {fmt(args.rows / again['wall'])} rows/s, "
        f"duplicates {fmt(again['duplicates'])}, stored {fmt(stored_count(url))}")

    from datetime import UTC, datetime

    rows = make_rows(args.rows, 5000, fx, datetime.now(UTC))
    raws = {}
    for per_txn in (5000, args.rows):
        r = run_raw(url, rows, per_txn, 1)
        raws[per_txn] = r
        say(f"raw COPY, {fmt(per_txn)}-row transactions, 1 connection: {r['wall']:.1f} s, {fmt(r['rate'])} rows/s "
            f"(stored {fmt(r['stored'])})")
    del rows
    best_raw = max(r["rate"] for r in raws.values())
    ratio = csv_rate / best_raw
    if before is not None:
        b_rate = args.rows / before["wall"]
        say(f"CSV load BEFORE / best raw COPY: {b_rate / best_raw:.2f} ({fmt(b_rate)} rows/s)")
    say(f"CSV load / best raw COPY: {ratio:.2f}  (targets: ≥ {fmt(TARGET_RATE)} rows/s "
        f"{'MET' if csv_rate >= TARGET_RATE else 'NOT MET'}, ≥ {TARGET_RATIO} × raw "
        f"{'MET' if ratio >= TARGET_RATIO else 'NOT MET'}, peak RSS ≤ {TARGET_RSS_MB} MB "
        f"{'MET' if res['rss_mb'] <= TARGET_RSS_MB else 'NOT MET'})")

    if not args.skip_small:
        for ext, writer in (("xlsx", write_xlsx), ("xml", write_xml)):
            path = workdir / f"{PARK_CODE}_CS_2020_20200201000000_002.{ext}"
            t = time.perf_counter()
            writer(path, args.small_rows, fx)
            gen = time.perf_counter() - t
            for label, tree in ([("BEFORE", args.before)] if args.before else []) + [("", ROOT)]:
                reset_tables(url)
                r = run_loader(path, args.before_batch if label else args.batch, env, tree.resolve())
                if r["accepted"] != args.small_rows:
                    sys.exit(f"{ext} load accepted {r['accepted']:,} of {args.small_rows:,}: {r}")
                say(f"load_file {ext.upper()}{' ' + label if label else ''}: {fmt(args.small_rows)} rows, "
                    f"{path.stat().st_size / 1e6:.1f} MB (made in {gen:.1f} s): {r['wall']:.1f} s, "
                    f"{fmt(args.small_rows / r['wall'])} rows/s, loader CPU {r['cpu']:.1f} s, PostgreSQL backend "
                    f"CPU {r['backend_cpu']:.1f} s, peak RSS {r['rss_mb']:.0f} MB")
    say(f"load average at the end {os.getloadavg()[0]:.2f}")
    shutil.rmtree(workdir, ignore_errors=True)


def report_load(label: str, rows: int, res: dict, url: str) -> None:
    stored = stored_count(url)
    if stored != rows or res["accepted"] != rows:
        sys.exit(f"{label} load stored {stored:,} of {rows:,} (report: {res})")
    say(f"load_file {label}: {res['wall']:.1f} s, {fmt(rows / res['wall'])} rows/s, loader CPU {res['cpu']:.1f} s, "
        f"PostgreSQL backend CPU {res['backend_cpu']:.1f} s, peak RSS {res['rss_mb']:.0f} MB "
        f"(at start {res['rss_start_mb']:.0f} MB), load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
