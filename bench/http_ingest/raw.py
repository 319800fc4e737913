"""The raw baseline: psycopg 3 binary COPY into a temp staging table + idempotent INSERT ... SELECT,
over one or several loader connections, on a fresh table."""

from __future__ import annotations

import multiprocessing as mp
import signal
import time

from .common import RAW_INSERT, STAGE_COLUMNS, STAGE_DDL, STAGE_TYPES
from .cpu import CpuProbe, postgres_processes
from .database import connect, reset_tables, stored_count


def _raw_loader(url, txns, counter, start_evt, finish_evt, results):
    """One connection: per transaction, the guard's set_config, binary COPY into the temp staging
    table, INSERT ... SELECT ... ON CONFLICT DO NOTHING, commit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (terminate())
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    copy_sql = f"COPY reading_stage ({', '.join(STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    with connect(url) as conn:
        conn.execute(STAGE_DDL)
        conn.commit()
        results.put(("ready", 0.0, 0.0))
        start_evt.wait()
        cpu0 = time.process_time()
        with conn.cursor() as cur:
            while True:
                with counter.get_lock():
                    k = counter.value
                    counter.value += 1
                if k >= len(txns):
                    break
                cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
                with cur.copy(copy_sql) as copy:
                    copy.set_types(STAGE_TYPES)
                    for row in txns[k]:
                        copy.write_row(row)
                cur.execute(RAW_INSERT)
                conn.commit()
        results.put(("done", time.process_time() - cpu0, time.perf_counter()))
        finish_evt.wait(60)  # keep the backend alive until its CPU time has been read


def run_raw(url: str, rows_by_batch: list[list[tuple]], rows_per_txn: int, conns: int) -> dict:
    """Same rows, fresh table; conns loader processes (one connection each) share the transactions."""
    reset_tables(url)
    # Regroup the (batch-sized) row lists into transactions of rows_per_txn rows.
    txns, cur_rows = [], []
    for rows in rows_by_batch:
        cur_rows.extend(rows)
        if len(cur_rows) >= rows_per_txn:
            txns.append(cur_rows)
            cur_rows = []
    if cur_rows:
        txns.append(cur_rows)
    ctx = mp.get_context("fork")  # the rows are shared copy-on-write, not pickled
    counter, start_evt, finish_evt, results = ctx.Value("q", 0), ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_raw_loader, args=(url, txns, counter, start_evt, finish_evt, results),
                         daemon=True)
             for _ in range(conns)]
    try:
        for p in procs:
            p.start()
        for _ in procs:
            results.get(timeout=60)
        probe = CpuProbe({"postgres": postgres_processes})
        probe.start()
        t0 = time.perf_counter()
        start_evt.set()
        done = [results.get(timeout=1800) for _ in procs]
        wall = max(d[2] for d in done) - t0
        cpu = probe.stop()
        cpu["wall"] = wall
        finish_evt.set()
        for p in procs:
            p.join(timeout=10)
    finally:
        finish_evt.set()
        for p in procs:
            if p.is_alive():
                p.terminate()
    n = sum(len(r) for r in txns)
    return {"wall": wall, "rows": n, "txns": len(txns), "rate": n / wall, "client_cpu": sum(d[1] for d in done),
            "cpu": cpu, "stored": stored_count(url), "conns": conns, "per_txn": rows_per_txn}


def raw_plans(args) -> list[tuple[int, int]]:
    """(rows per transaction, connections) of each raw run: --batch-row transactions over every
    --raw-conns count, then --raw-big-txn-row ones (not over more connections than transactions)."""
    conns = sorted({int(x) for x in args.raw_conns.split(",") if x.strip()})
    plans = [(args.batch, c) for c in conns]
    if args.raw_big_txn and args.raw_big_txn != args.batch:
        ntxn = -(-args.readings // args.raw_big_txn)
        plans += [(args.raw_big_txn, c) for c in conns if c == conns[0] or c <= ntxn]
    return plans
