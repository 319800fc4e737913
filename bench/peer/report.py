"""Printing: each phase in a line or two, the side-by-side table (Markdown, as in bench/README.md and
issue #9) and the SIGKILL runs."""

from __future__ import annotations

from bench.http_ingest.report import cpu_report
from bench.mqtt_ingest.common import fmt, percentile, say


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def per_k(r: dict, group: str) -> float:
    """CPU milliseconds of a process group per 1 000 readings stored."""
    return r["cpu"][group] / max(r["stored"], 1) * 1e6


def report_phase(r: dict) -> None:
    say(f"    published {r['published']:,} (PUBACKed) in {r['messages']:,} messages, {fmt(r['offered'])}/s offered; "
        f"stored {r['stored']:,} in {r['batches']:,} transactions, first publish -> last commit "
        f"{r['t_end'] - r['t_first']:.2f} s = {fmt(r['sustained'])}/s (10-90 %: {fmt(r['steady'])}/s); "
        f"lost {r['lost']:,}" + ("" if r["drained"] else " (gave up draining)"))
    say(f"    publish -> commit over {r['lat_n']:,} messages: p50 {ms(r['p50'])}, p99 {ms(r['p99'])}, "
        f"max {ms(r['lat_max'])}" + (f"; {r['lat_unseen']:,} not timed" if r["lat_unseen"] else ""))
    c = r["cpu"]
    say("    CPU: " + cpu_report(c, {"consumers": c["consumers"], "postgres": c["postgres"],
                                    "mosquitto": c["mosquitto"], "publishers": r["publisher_cpu"]}))
    say(f"    CPU per 1 000 readings: consumers {per_k(r, 'consumers'):.1f} ms, postgres {per_k(r, 'postgres'):.1f} ms")
    for e in r["errors"][:3] + ([r["monitor_error"]] if r.get("monitor_error") else []) + (
            [r["kill_error"]] if r.get("kill_error") else []):
        say(f"    ERROR {e}")


def _pooled(rs: list[dict], group: str) -> float:
    return sum(r["cpu"][group] for r in rs) / max(sum(r["stored"] for r in rs), 1) * 1e6


def _p99(rs: list[dict]) -> float:
    """p99 over the messages of all of a side's runs at one rate."""
    if rs and "latencies" not in rs[0]:
        return max(r["p99"] for r in rs) if len(rs) == 1 else sum(r["p99"] for r in rs) / len(rs)
    return percentile(sorted(x for r in rs for x in r["latencies"]), 0.99)


def report_table(args, results: list[dict], kills: dict) -> None:
    def pick(side, name):
        return [r for r in results if r["side"] == side and r["name"] == name]

    say("=" * 100)
    say(f"Side by side, one run: slots {', '.join(args.order)} on one Mosquitto; {args.publishers} publisher "
        f"processes x {args.connections} connections, QoS 1, {args.per_message[0]}-{args.per_message[1]} readings "
        f"per message, {args.sources} sources, {args.readings:,} readings per saturation run")
    say("")
    say("| | CarbonPark (2 x run_mqtt_ingest) | Node-RED 5.0.7 (2 instances, one shared subscription) | ours/peer |")
    say("|---|---|---|---|")
    sat = {s: pick(s, "saturation") for s in ("ours", "peer")}
    mean = {s: sum(r["sustained"] for r in v) / len(v) if v else 0.0 for s, v in sat.items()}
    each = {s: " / ".join(fmt(r["sustained"]) for r in v) for s, v in sat.items()}
    ratio = mean["ours"] / mean["peer"] if mean["peer"] else float("nan")
    say(f"| saturation, readings/s (mean of slots: each) | {fmt(mean['ours'])} ({each['ours']}) | "
        f"{fmt(mean['peer'])} ({each['peer']}) | **{ratio:.2f}** |")
    for rate in args.rates:
        lat = {s: pick(s, f"rate{rate:.0f}") for s in ("ours", "peer")}
        p99 = {s: _p99(v) if v else float("nan") for s, v in lat.items()}
        p50 = {s: percentile(sorted(x for r in v for x in r.get("latencies", [])), 0.5) if v and "latencies" in v[0]
               else (sum(r["p50"] for r in v) / len(v) if v else float("nan")) for s, v in lat.items()}
        say(f"| p99 publish -> commit at {fmt(rate)}/s (p50) | {ms(p99['ours'])} ({ms(p50['ours'])}) | "
            f"{ms(p99['peer'])} ({ms(p50['peer'])}) | {p99['ours'] / p99['peer']:.2f} |")
    for group, label in (("consumers", "consumer CPU per 1 000 readings at saturation"),
                         ("postgres", "PostgreSQL CPU per 1 000 readings at saturation")):
        o, p = _pooled(sat["ours"], group), _pooled(sat["peer"], group)
        say(f"| {label} | {o:.1f} ms | {p:.1f} ms | {o / p if p else float('nan'):.2f} |")
    o = 1e6 / max(_pooled(sat["ours"], "consumers") + _pooled(sat["ours"], "postgres"), 1e-9)
    p = 1e6 / max(_pooled(sat["peer"], "consumers") + _pooled(sat["peer"], "postgres"), 1e-9)
    say(f"| readings per CPU second of consumers + PostgreSQL at saturation (what other load bends least) | "
        f"{fmt(o)} | {fmt(p)} | {o / p:.2f} |")
    last = args.rates[-1]
    for group, label in (("consumers", f"consumer CPU per 1 000 readings at {fmt(last)}/s"),
                         ("postgres", f"PostgreSQL CPU per 1 000 readings at {fmt(last)}/s")):
        o, p = _pooled(pick("ours", f"rate{last:.0f}"), group), _pooled(pick("peer", f"rate{last:.0f}"), group)
        say(f"| {label} | {o:.1f} ms | {p:.1f} ms | {o / p if p else float('nan'):.2f} |")
    if kills:
        cells = {s: (f"{k['lost']:,} of {k['published']:,} lost" if s in kills and (k := kills[s]) else "—")
                 for s in ("ours", "peer")}
        say(f"| one consumer killed with SIGKILL mid-run (lost of PUBACKed) | {cells['ours']} | {cells['peer']} | |")
    say("")
    busy = [r["cpu"]["machine"] / (r["cpu"]["wall"] * r["cpu"]["cores"]) for r in results]
    ours_share = [(r["cpu"]["consumers"] + r["cpu"]["postgres"] + r["cpu"]["mosquitto"] + r["publisher_cpu"])
                  / max(r["cpu"]["machine"], 1e-9) for r in results]
    say(f"The machine was {min(busy):.0%}-{max(busy):.0%} busy during the runs, {min(ours_share):.0%}-"
        f"{max(ours_share):.0%} of it this bench's processes: other load (CI, other sessions) lowers both sides' "
        "rates; compare the ratios.")


def report_targets(results: list[dict], kills: dict) -> bool:
    """Issue #9's targets for ours beside the peer; True when ours lost nothing (the exit status)."""
    sat = {s: [r for r in results if r["side"] == s and r["name"] == "saturation"] for s in ("ours", "peer")}
    ours_lost = sum(r["lost"] for r in results if r["side"] == "ours")
    ours_lost += kills["ours"]["lost"] if "ours" in kills else 0
    say("")
    if sat["ours"] and sat["peer"]:
        ratio = (sum(r["sustained"] for r in sat["ours"]) / len(sat["ours"])) / (
            sum(r["sustained"] for r in sat["peer"]) / len(sat["peer"]))
        say(f"target: saturation >= 1.0 x the peer's in the same run: {ratio:.2f} {'OK' if ratio >= 1 else 'MISSED'}")
    if sat["ours"]:
        pg = _pooled(sat["ours"], "postgres")
        say(f"target: PostgreSQL CPU per 1 000 readings <= 9 ms: {pg:.1f} ms {'OK' if pg <= 9 else 'MISSED'}")
    say(f"target: ours loses nothing (every run, the SIGKILL run included): lost {ours_lost:,} "
        f"{'OK' if ours_lost == 0 else 'MISSED'}")
    return ours_lost == 0


def report_kill(kills: dict) -> None:
    say("")
    for side, r in kills.items():
        who = "run_mqtt_ingest" if side == "ours" else "Node-RED"
        down = (r["t_back"] - r["t_kill"]) if r.get("t_back") and r.get("t_kill") else float("nan")
        say(f"SIGKILL, {who}: one of two processes killed {r['t_kill'] - r['t_first']:.2f} s into the run "
            f"(restarted and connected again {down:.1f} s later); publishers got PUBACKs for {r['published']:,} "
            f"readings, {r['stored']:,} stored, lost {r['lost']:,}"
            + ("" if r["lost"] else " (redelivered from the persistent session, nothing acknowledged before commit)"))
