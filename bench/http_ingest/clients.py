"""The HTTP run: gunicorn plus --clients client processes posting the prepared bodies."""

from __future__ import annotations

import multiprocessing as mp
import queue
import signal
import time

from .common import URL_PATH, say
from .cpu import CpuProbe, postgres_processes
from .database import reset_tables, stored_count
from .server import Gunicorn, expected_workers, free_port, worker_class


def client_main(cid, port, token, bodies, counter, start_evt, warmup, results):
    import http.client

    import orjson

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (terminate())
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    headers = {"Content-Type": "application/json", "Authorization": f"Token {token}", "Accept-Language": "en"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(body):
        conn.request("POST", URL_PATH, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()

    errors = []
    for _ in range(warmup):
        status, data = post(b"[]")
        if status != 200:
            errors.append(f"warm-up: {status} {data[:300]!r}")
    results.put(("ready", cid, errors))
    start_evt.wait()
    cpu0 = time.process_time()
    sent = accepted = duplicates = rejected = 0
    latencies = []
    while True:
        with counter.get_lock():
            k = counter.value
            counter.value += 1
        if k >= len(bodies):
            break
        t = time.perf_counter()
        try:
            status, data = post(bodies[k])
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"batch {k}: {exc!r}")
            conn.close()
            continue
        latencies.append(time.perf_counter() - t)
        answer = orjson.loads(data) if data[:1] == b"{" else {}
        n = answer.get("accepted", 0)
        sent += 1
        accepted += n
        duplicates += answer.get("duplicates", 0)
        rejected += len(answer.get("rejected", []))
        if status != 200 and len(errors) < 20:
            errors.append(f"batch {k}: HTTP {status} {data[:300]!r}")
    results.put(("done", cid, {"requests": sent, "accepted": accepted, "duplicates": duplicates,
                               "rejected": rejected, "cpu": time.process_time() - cpu0,
                               "latencies": latencies, "errors": errors, "end": time.perf_counter()}))


def run_http(args, url: str, fx: dict, bodies: list[bytes]) -> dict:
    port = args.port or free_port()
    nworkers = expected_workers(args)
    reset_tables(url)
    server = Gunicorn(url, port, args.workers, args.gunicorn_config)
    procs = []
    try:
        server.wait_ready(nworkers)
        say(f"gunicorn: {nworkers} {worker_class(args.gunicorn_config)} workers on 127.0.0.1:{port} "
            f"(log {server.log.name})")
        ctx = mp.get_context("fork")  # the bodies are shared copy-on-write, not pickled
        counter, start_evt, results = ctx.Value("q", 0), ctx.Event(), ctx.Queue()
        warmup = max(2, (3 * nworkers) // args.clients + 1)
        for cid in range(args.clients):
            p = ctx.Process(target=client_main, args=(cid, port, fx["token"], bodies, counter, start_evt,
                                                      warmup, results), daemon=True)
            p.start()
            procs.append(p)
        for _ in procs:
            kind, cid, errors = results.get(timeout=120)
            if errors:
                raise RuntimeError(f"client {cid} warm-up failed: {errors[0]}")
        probe = CpuProbe({"gunicorn": server.workers, "postgres": postgres_processes})
        probe.start()
        t0 = time.perf_counter()
        start_evt.set()
        done = []
        while len(done) < len(procs):
            try:
                kind, cid, payload = results.get(timeout=1)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError("a client process died; see its traceback above") from None
                continue
            done.append(payload)
        wall = max(d["end"] for d in done) - t0
        cpu = probe.stop()
        cpu["wall"] = wall
        for p in procs:
            p.join(timeout=10)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        server.stop()
    lat = sorted(x for d in done for x in d["latencies"])
    out = {
        "wall": wall, "requests": sum(d["requests"] for d in done), "accepted": sum(d["accepted"] for d in done),
        "duplicates": sum(d["duplicates"] for d in done), "rejected": sum(d["rejected"] for d in done),
        "client_cpu": sum(d["cpu"] for d in done), "errors": [e for d in done for e in d["errors"]],
        "cpu": cpu, "p50": lat[len(lat) // 2] if lat else 0, "p95": lat[int(len(lat) * 0.95)] if lat else 0,
        "max": lat[-1] if lat else 0, "workers": nworkers,
        "worker_class": worker_class(args.gunicorn_config),
    }
    out["stored"] = stored_count(url)
    return out
