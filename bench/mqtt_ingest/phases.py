"""A publishing phase: publisher processes on a start signal, the consumers drain, the commit monitor
times every batch; then the counts from the database and each message's publish -> commit latency."""

from __future__ import annotations

import multiprocessing as mp
import queue
import time

from bench.http_ingest.cpu import CpuProbe, postgres_processes
from bench.http_ingest.database import connect, reset_tables, stored_count

from .common import percentile, ts_of
from .devices import publisher_main


def start_publishers(name: str, args, fx: dict, broker, readings: int, rate: float | None, minute0: int,
                     publishers: int, poison: int = 0):
    ctx = mp.get_context("spawn")
    results, start_evt, abort_evt = ctx.Queue(), ctx.Event(), ctx.Event()
    n_conns = publishers * args.connections
    source_ids = [sid for sid, _pk in fx["sources"]]
    procs = []
    for p in range(publishers):
        spec = {"index": p, "phase": name, "conns": list(range(p * args.connections, (p + 1) * args.connections)),
                "n_conns": n_conns, "readings": readings, "rate": rate, "minute0": minute0, "seed": args.seed,
                "per_message": args.per_message, "window": args.window, "host": broker.host,
                "port": broker.port, "source_ids": source_ids, "poison": poison}
        proc = ctx.Process(target=publisher_main, args=(spec, results, start_evt, abort_evt), daemon=True)
        proc.start()
        procs.append(proc)
    try:
        for _ in procs:
            kind, idx, payload = results.get(timeout=300)
            if kind != "ready":
                raise RuntimeError(f"publisher {idx}: {payload}")
    except BaseException:
        stop_publishers(procs, abort_evt)
        raise
    return procs, results, start_evt, abort_evt


def stop_publishers(procs, abort_evt) -> None:
    abort_evt.set()
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.terminate()
            p.join(5)


def run_phase(name: str, args, fx: dict, url: str, broker, monitor, consumers, *, readings: int,
              rate: float | None, minute0: int, publishers: int, cpu_groups: dict | None = None,
              poison: int = 0) -> dict:
    """Publish ``readings`` (at ``rate`` readings/s in all, or as fast as possible), wait until the
    consumers have stored them (or stall), and measure. ``poison``: one poison message every that many
    messages besides (devices.add_poison), each of which must end as one rejection."""
    import psutil

    reset_tables(url)
    monitor.reset()
    procs, results, start_evt, abort_evt = start_publishers(name, args, fx, broker, readings, rate, minute0,
                                                            publishers, poison)
    groups = {"consumers": lambda: [p for c in consumers for p in c.psutil_processes()],
              "postgres": postgres_processes, "mosquitto": lambda: [psutil.Process(broker.proc.pid)],
              **(cpu_groups or {})}
    probe = CpuProbe(groups)
    done = []
    try:
        probe.start()
        start_evt.set()
        while len(done) < len(procs):
            try:
                kind, idx, payload = results.get(timeout=1)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError("a publisher process died; see its traceback above") from None
                continue
            done.append(payload)
        messages = [m for d in done for m in d["messages"]]
        published = sum(n for _s, _m, n, _tp, ta in messages if ta)
        drained = monitor.wait_for(published, idle=args.drain_idle, timeout=args.drain_timeout)
        cpu = probe.stop()
    finally:
        stop_publishers(procs, abort_evt)
    t_first = min((tp for _s, _m, _n, tp, _ta in messages if tp), default=0.0)
    t_end = monitor.time_reaching(published) or monitor.last_seen
    out = {
        "name": name, "readings": readings, "rate": rate, "published": published, "drained": drained,
        "messages": len(messages), "unacked": sum(1 for m in messages if not m[4]),
        "sent_readings": sum(m[2] for m in messages if m[3]),
        "t_first": t_first, "t_published": max(d["t_published"] for d in done),
        "t_last_ack": max((m[4] for m in messages), default=0.0), "t_end": t_end,
        "publisher_cpu": sum(d["cpu"] for d in done), "errors": [e for d in done for e in d["errors"]],
        "cpu": cpu, "accepted": monitor.accepted, "duplicates": monitor.duplicates,
        "rejected": monitor.rejected, "flagged": monitor.flagged, "batches": len(monitor.seen),
        "monitor_error": monitor.error, "publishers": publishers,
        "poison_sent": sum(1 for m in messages if m[2] == 0 and m[4]),
    }
    out["stored"] = stored_count(url)
    out["lost"] = published - out["stored"]
    if poison:
        # A poison message after the last reading may commit just after the drain saw that reading.
        deadline = time.monotonic() + 10
        with connect(url) as conn:
            while True:
                out["poison_rejected"] = dict(conn.execute(
                    "SELECT code, count(*) FROM ingestion_rejection GROUP BY code ORDER BY code").fetchall())
                if sum(out["poison_rejected"].values()) >= out["poison_sent"] or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
    span = max(t_end - t_first, 1e-9)
    out["sustained"] = out["stored"] / span
    out["offered"] = published / max(out["t_last_ack"] - t_first, 1e-9)  # what the broker took in
    out["steady"] = steady_rate(monitor.timeline)
    out.update(latencies(url, fx, messages, monitor.seen))
    return out


def steady_rate(timeline: list[tuple[float, int]]) -> float:
    """Readings/s between the times 10 % and 90 % of the phase's readings had committed."""
    total = sum(n for _t, n in timeline)
    if total == 0:
        return 0.0
    cum, t10, t90 = 0, None, None
    for t, n in timeline:
        cum += n
        if t10 is None and cum >= 0.1 * total:
            t10, c10 = t, cum
        if cum >= 0.9 * total:
            t90, c90 = t, cum
            break
    return (c90 - c10) / (t90 - t10) if t90 and t90 > t10 else 0.0


def latencies(url: str, fx: dict, messages, seen: dict[int, float]) -> dict:
    """Per message: publish() -> its batch's commit seen by the monitor, split at the batch's
    received_at (taken by the consumer when it starts working on the batch)."""
    with connect(url) as conn:
        rows = conn.execute("SELECT source_id, extract(epoch FROM ts)::bigint, batch_id, "
                            "extract(epoch FROM received_at)::float8 FROM ingestion_reading").fetchall()
    where = {(src, ts): (bid, rat) for src, ts, bid, rat in rows}
    pk = [pk for _sid, pk in fx["sources"]]
    total, to_batch, in_batch, unseen = [], [], [], 0
    for s, m0, n, t_pub, t_ack in messages:
        if not t_ack or not n:  # unacknowledged, or a poison message (no reading to time)
            continue
        hit = where.get((pk[s], int(ts_of(m0).timestamp())))
        if hit is None or hit[0] not in seen:
            unseen += 1
            continue
        committed = seen[hit[0]]
        total.append(committed - t_pub)
        to_batch.append(hit[1] - t_pub)
        in_batch.append(committed - hit[1])
    total.sort()
    to_batch.sort()
    in_batch.sort()
    q = lambda xs, p: percentile(xs, p)  # noqa: E731
    return {"lat_n": len(total), "lat_unseen": unseen,
            "p50": q(total, 0.5), "p99": q(total, 0.99), "lat_max": total[-1] if total else float("nan"),
            "to_batch_p50": q(to_batch, 0.5), "to_batch_p99": q(to_batch, 0.99),
            "in_batch_p50": q(in_batch, 0.5), "in_batch_p99": q(in_batch, 0.99)}
