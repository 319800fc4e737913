"""Printing: the data line, each phase's figures with its CPU shares, and the final block."""

from __future__ import annotations

from .common import HTTP_TARGET, RATIO_TARGET, URL_PATH, fmt, say


def cpu_report(c: dict, extra: dict) -> str:
    cap = c["wall"] * c["cores"]
    parts = [f"machine busy {c['machine'] / cap:.0%} of {c['cores']} cores"]
    for name, secs in extra.items():
        parts.append(f"{name} {secs / cap:.0%}")
    other = max(c["machine"] - sum(extra.values()), 0)
    foreign = ", ".join(f"{name} {secs / cap:.0%}" for name, secs in c.get("foreign", []) if secs / cap >= 0.01)
    parts.append(f"other {other / cap:.0%}" + (f" ({foreign})" if foreign and other / cap >= 0.03 else ""))
    return ", ".join(parts)


def report_data(args, bodies: list[bytes], seconds: float) -> None:
    mb = sum(map(len, bodies)) / 1e6
    say(f"data: {args.readings:,} readings in {len(bodies):,} bodies of {args.batch:,} "
        f"({mb:,.0f} MB JSON, {mb * 1e6 / args.readings:.0f} B/reading), prepared in {seconds:.1f} s")


def report_http(args, h: dict) -> None:
    c = h["cpu"]
    say(f"  {h['requests']:,} requests in {h['wall']:.2f} s, accepted {h['accepted']:,}, duplicates "
        f"{h['duplicates']:,}, rejected {h['rejected']:,}; latency p50 {h['p50'] * 1000:.0f} ms, "
        f"p95 {h['p95'] * 1000:.0f} ms, max {h['max'] * 1000:.0f} ms")
    say("  CPU: " + cpu_report(c, {"clients": h["client_cpu"], "gunicorn workers": c["gunicorn"],
                                   "postgres": c["postgres"]}))
    per_batch = lambda secs: secs / max(h["requests"], 1) * 1000  # noqa: E731
    say(f"  CPU per {args.batch}-record request: gunicorn worker {per_batch(c['gunicorn']):.1f} ms, "
        f"postgres {per_batch(c['postgres']):.1f} ms, client {per_batch(h['client_cpu']):.1f} ms")
    for e in h["errors"][:5]:
        say(f"  ERROR {e}")


def report_raw(args, r: dict) -> None:
    rc = r["cpu"]
    say(f"  {r['txns']:,} transactions in {r['wall']:.2f} s = {fmt(r['rate'])} rows/s; stored "
        f"{r['stored']:,}" + ("" if r["stored"] == args.readings else "  MISMATCH"))
    say("  CPU: " + cpu_report(rc, {"loaders (psycopg)": r["client_cpu"], "postgres": rc["postgres"]}))
    say(f"  CPU per 1000 rows: postgres {rc['postgres'] / r['rows'] * 1e6:.1f} ms, "
        f"loader {r['client_cpu'] / r['rows'] * 1e6:.1f} ms")


def report_summary(args, h: dict, raws: list[dict]) -> bool:
    """The final block; True when nothing was lost or doubled (HTTP and every raw run)."""
    http_rate = h["accepted"] / h["wall"]
    c = h["cpu"]
    ok = h["stored"] == args.readings and h["accepted"] == args.readings and not h["errors"]
    say("\n" + "=" * 100)
    say(f"HTTP  POST {URL_PATH}: {args.readings:,} readings in {h['wall']:.2f} s = {fmt(http_rate)} readings/s "
        f"(target ≥ {fmt(HTTP_TARGET)}) {'OK' if http_rate >= HTTP_TARGET else 'MISSED'}")
    say(f"      {h['workers']} gunicorn {h['worker_class']} workers, {args.clients} clients, "
        f"{args.batch:,}-record batches; client CPU {h['client_cpu'] / (c['wall'] * c['cores']):.0%} of the machine")
    if raws:
        # The baseline: the best raw rate at the HTTP path's transaction size (1 or several connections).
        base = max((r for r in raws if r["per_txn"] == args.batch), key=lambda r: r["rate"])
        say(f"raw idempotent COPY:         {fmt(base['rate'])} readings/s ({base['per_txn']:,}-row transactions "
            f"like the HTTP path, {base['conns']} connection(s): the baseline)")
        for r in raws:
            if r is not base:
                say(f"                             {fmt(r['rate'])} readings/s ({r['per_txn']:,}-row transactions, "
                    f"{r['conns']} connection(s)); HTTP/this {http_rate / r['rate']:.2f}")
        ratio = http_rate / base["rate"]
        say(f"ratio HTTP/raw:              {ratio:.2f} (target ≥ {RATIO_TARGET}) "
            f"{'OK' if ratio >= RATIO_TARGET else 'MISSED'}  [vs the best raw rate of all: "
            f"{http_rate / max(r['rate'] for r in raws):.2f}]")
        ok = ok and all(r["stored"] == args.readings for r in raws)
    say(f"verified stored: {h['stored']:,} (expected {args.readings:,}) {'OK' if ok else 'MISMATCH'}")
    return ok
