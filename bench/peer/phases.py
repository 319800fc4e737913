"""A publishing phase against the peer (the twin of bench.mqtt_ingest.phases.run_phase, with the same
publishers, CPU probe and figures, on the lean table and its snapshot monitor), and the SIGKILL of one
consumer process of either side mid-run."""

from __future__ import annotations

import queue
import threading
import time

from bench.http_ingest.cpu import CpuProbe, postgres_processes
from bench.http_ingest.database import connect
from bench.mqtt_ingest.common import percentile, ts_of
from bench.mqtt_ingest.phases import start_publishers, steady_rate, stop_publishers

from .lean import TABLE, reset_table, timeline


def run_peer_phase(name: str, args, fx: dict, url: str, broker, monitor, peers, *, readings: int,
                   rate: float | None, minute0: int, publishers: int, killer=None) -> dict:
    """Publish ``readings`` (at ``rate`` readings/s, or as fast as possible) to the peer, wait until its
    table stops growing with every published reading in it (or gives up), and measure."""
    import psutil

    reset_table(url)
    monitor.reset()
    procs, results, start_evt, abort_evt = start_publishers(name, args, fx, broker, readings, rate, minute0,
                                                            publishers)
    groups = {"consumers": lambda: [p for c in peers for p in c.psutil_processes()],
              "postgres": postgres_processes, "mosquitto": lambda: [psutil.Process(broker.proc.pid)]}
    probe = CpuProbe(groups)
    done = []
    try:
        probe.start()
        start_evt.set()
        if killer:
            killer.start()
        while len(done) < len(procs):
            try:
                _kind, _idx, payload = results.get(timeout=1)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError("a publisher process died; see its traceback above") from None
                continue
            done.append(payload)
        messages = [m for d in done for m in d["messages"]]
        published = sum(n for _s, _m, n, _tp, ta in messages if ta)
        if killer:
            killer.join()
        drained = monitor.wait_for(published, idle=args.drain_idle, timeout=args.drain_timeout)
        cpu = probe.stop()
    finally:
        stop_publishers(procs, abort_evt)
    with connect(url) as conn:
        rows = conn.execute(f"SELECT source_id, extract(epoch FROM ts)::bigint, xmin::text::bigint FROM {TABLE}"
                            ).fetchall()
        table_bytes = conn.execute("SELECT pg_relation_size(%s)", (TABLE,)).fetchone()[0]
    per_xid: dict[int, int] = {}
    for _s, _t, x in rows:
        per_xid[x] = per_xid.get(x, 0) + 1
    commit = monitor.commit_times(set(per_xid))
    tl = timeline(commit, per_xid)
    t_first = min((tp for _s, _m, _n, tp, _ta in messages if tp), default=0.0)
    t_end = tl[-1][0] if tl else t_first
    out = {
        "name": name, "readings": readings, "rate": rate, "published": published, "drained": drained,
        "messages": len(messages), "unacked": sum(1 for m in messages if not m[4]),
        "t_first": t_first, "t_published": max(d["t_published"] for d in done),
        "t_last_ack": max((m[4] for m in messages), default=0.0), "t_end": t_end,
        "publisher_cpu": sum(d["cpu"] for d in done), "errors": [e for d in done for e in d["errors"]],
        "cpu": cpu, "batches": len(per_xid), "monitor_error": monitor.error, "publishers": publishers,
        "stored": len(rows), "table_bytes": table_bytes, "duplicates": 0, "rejected": 0, "flagged": 0,
    }
    out["lost"] = published - out["stored"]
    out["sustained"] = out["stored"] / max(t_end - t_first, 1e-9)
    out["offered"] = published / max(out["t_last_ack"] - t_first, 1e-9)
    out["steady"] = steady_rate(tl)
    # publish() -> the commit of the transaction that stored the message's first reading
    where = {(s, t): x for s, t, x in rows}
    sids = [sid for sid, _pk in fx["sources"]]
    total, unseen = [], 0
    for s, m0, n, t_pub, t_ack in messages:
        if not t_ack or not n:
            continue
        x = where.get((sids[s], int(ts_of(m0).timestamp())))
        if x is None or x not in commit:
            unseen += 1
            continue
        total.append(commit[x] - t_pub)
    total.sort()
    out.update(lat_n=len(total), lat_unseen=unseen, p50=percentile(total, 0.5), p99=percentile(total, 0.99),
               lat_max=total[-1] if total else float("nan"), latencies=total)
    return out


class Killer(threading.Thread):
    """Once ``reached()`` is true (half the phase's readings stored), SIGKILL one consumer process and start
    it again at once, as a supervisor would (same client id, so the same persistent MQTT session)."""

    def __init__(self, reached, kill, restart, timeout: float = 300):
        super().__init__(daemon=True, name="killer")
        self.reached, self.kill, self.restart, self.timeout = reached, kill, restart, timeout
        self.t_kill = self.t_back = None
        self.error: str | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            while not self.reached():
                if time.monotonic() > deadline:
                    self.error = "the phase never reached the kill point"
                    return
                time.sleep(0.01)
            self.t_kill = time.time()
            self.kill()
            self.restart()
            self.t_back = time.time()
        except Exception as exc:  # noqa: BLE001 - reported by the run
            self.error = repr(exc)
