"""Printing: each phase's figures with its CPU shares, and the final block with the targets."""

from __future__ import annotations

from bench.http_ingest.report import cpu_report

from .common import CONNECTIONS_TARGET, LATENCY_P99_TARGET, POISON_TARGET, SUSTAINED_TARGET, fmt, say


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def phase_cpu(r: dict) -> str:
    c = r["cpu"]
    extra = {"consumers": c["consumers"], "postgres": c["postgres"], "mosquitto": c["mosquitto"],
             "publishers": r["publisher_cpu"]}
    if "connection holder" in c:
        extra["connection holder"] = c["connection holder"]
    return cpu_report(c, extra)


def report_phase(r: dict) -> None:
    unacked = f", {r['unacked']:,} messages never acknowledged" if r["unacked"] else ""
    say(f"  published {r['published']:,} readings in {r['messages']:,} messages "
        f"({r['t_published'] - r['t_first']:.2f} s of publishing = {fmt(r['offered'])} readings/s offered{unacked})")
    say(f"  stored {r['stored']:,} in {r['batches']:,} consumer batches; first publish -> last commit "
        f"{r['t_end'] - r['t_first']:.2f} s = {fmt(r['sustained'])} readings/s (10-90 %: {fmt(r['steady'])}/s); "
        f"lost {r['lost']:,}, duplicates {r['duplicates']:,}, rejected {r['rejected']:,}, "
        f"flagged/warned {r['flagged']:,}" + ("" if r["drained"] else "  (NOT DRAINED: gave up waiting)"))
    say(f"  latency publish -> commit over {r['lat_n']:,} messages: p50 {ms(r['p50'])}, p99 {ms(r['p99'])}, "
        f"max {ms(r['lat_max'])} (publish -> batch start p50 {ms(r['to_batch_p50'])}, p99 {ms(r['to_batch_p99'])}; "
        f"batch start -> commit p50 {ms(r['in_batch_p50'])}, p99 {ms(r['in_batch_p99'])})"
        + (f"; {r['lat_unseen']:,} not timed" if r["lat_unseen"] else ""))
    say("  CPU: " + phase_cpu(r))
    n = max(r["stored"], 1) / 1000
    c = r["cpu"]
    say(f"  CPU per 1 000 readings: consumers {c['consumers'] / n * 1000:.1f} ms, postgres "
        f"{c['postgres'] / n * 1000:.1f} ms, mosquitto {c['mosquitto'] / n * 1000:.1f} ms, publishers "
        f"{r['publisher_cpu'] / n * 1000:.1f} ms")
    for e in r["errors"][:5] + ([r["monitor_error"]] if r["monitor_error"] else []):
        say(f"  ERROR {e}")


def report_summary(args, sat: dict | None, lat: dict | None, held: dict | None, consumer_warnings,
                   poisoned: dict | None = None) -> bool:
    """The final block; True when nothing was lost, every poison message became one rejection and every
    held connection answered."""
    ok = True
    say("\n" + "=" * 100)
    say(f"MQTT ingestion: {args.consumers} consumer processes (manage.py run_mqtt_ingest, shared subscription), "
        f"Mosquitto, {args.publishers} publisher processes x {args.connections} connections, "
        f"{args.per_message[0]}-{args.per_message[1]} readings per message, {args.sources} sources")
    if sat:
        say(f"sustained at saturation: {sat['stored']:,} readings stored, first publish -> last commit "
            f"{sat['t_end'] - sat['t_first']:.2f} s = {fmt(sat['sustained'])} readings/s "
            f"(target ≥ {fmt(SUSTAINED_TARGET)}) {verdict(sat['sustained'] >= SUSTAINED_TARGET)}  "
            f"[10-90 % of the commits: {fmt(sat['steady'])}/s; devices offered {fmt(sat['offered'])}/s]")
        lost_ok = sat["lost"] == 0 and sat["drained"]
        say(f"lost at saturation:      {sat['lost']:,} of {sat['published']:,} published (target 0) "
            f"{verdict(lost_ok)}; stored twice: none possible (identity), redelivered duplicates "
            f"{sat['duplicates']:,}")
        ok = ok and lost_ok
    if sat and poisoned:
        ok = report_poison(sat, poisoned, args.poison_every) and ok
    if lat:
        p99_ok = lat["p99"] <= LATENCY_P99_TARGET and lat["lost"] == 0
        say(f"latency at {fmt(lat['rate'])} readings/s: p50 {ms(lat['p50'])}, p99 {ms(lat['p99'])} "
            f"(target ≤ {ms(LATENCY_P99_TARGET)}) {verdict(p99_ok)}; max {ms(lat['lat_max'])}; "
            f"{lat['stored']:,} readings stored at {fmt(lat['sustained'])}/s, lost {lat['lost']:,}")
        say(f"                         publish() -> commit seen by a poller every {args.poll * 1000:.0f} ms "
            f"(so up to {args.poll * 1000:.0f} ms + one query late)")
        ok = ok and lat["lost"] == 0 and lat["drained"]
    if held:
        alive = held.get("alive", 0)
        conn_ok = alive >= CONNECTIONS_TARGET and (not lat or lat["lost"] == 0)
        say(f"device connections:      {held['opened']:,} opened (CONNACK accepted) in {held['seconds']:.1f} s; "
            f"{alive:,} answered a PINGREQ after the latency phase (target {fmt(CONNECTIONS_TARGET)} held while "
            f"the platform keeps up) {verdict(conn_ok)}; the broker counted {held['broker_count'] or 0:,} "
            f"clients connected (peak {held['broker_peak']:,})")
        if held.get("errors"):
            say(f"                         first errors: {held['errors'][:3]}")
        ok = ok and alive == held["opened"] == args.hold
    if sat:
        say(f"CPU at saturation:       {phase_cpu(sat)}")
    if lat:
        say(f"CPU at {fmt(lat['rate'])}/s:          {phase_cpu(lat)}")
    if consumer_warnings:
        say(f"consumer log warnings:   {len(consumer_warnings)}, e.g. {consumer_warnings[0][:200]}")
    say(f"verified: {'nothing lost' if ok else 'LOSS OR DROPPED CONNECTIONS (see above)'}")
    return ok


def report_poison(clean: dict, poisoned: dict, every: int) -> bool:
    """The clean and the poisoned saturation runs side by side (issue #7): nothing good lost, every poison
    message one rejection, throughput within POISON_TARGET of the clean run's."""
    rejected = poisoned.get("poison_rejected", {})
    kept = sum(rejected.values())
    lost_ok = poisoned["lost"] == 0 and poisoned["drained"] and kept == poisoned["poison_sent"]
    ratio = poisoned["sustained"] / clean["sustained"] if clean["sustained"] else 0.0
    say(f"poison every {every:,} messages: good readings lost {poisoned['lost']:,} of {poisoned['published']:,} "
        f"(target 0) {verdict(lost_ok)}; {poisoned['poison_sent']:,} poison messages sent, {kept:,} kept as "
        f"rejections ({', '.join(f'{c} {n:,}' for c, n in rejected.items()) or 'none'})")
    say(f"                         throughput clean {fmt(clean['sustained'])}/s, poisoned "
        f"{fmt(poisoned['sustained'])}/s, ratio {ratio:.2f} (target ≥ {1 - POISON_TARGET:.2f}) "
        f"{verdict(ratio >= 1 - POISON_TARGET)}  [10-90 %: {fmt(clean['steady'])}/s vs "
        f"{fmt(poisoned['steady'])}/s]")

    def cost(r):  # CPU of the consumers and PostgreSQL per 1 000 readings: what the other load cannot bend
        return (r["cpu"]["consumers"] + r["cpu"]["postgres"]) / max(r["stored"], 1) * 1e6

    say(f"                         consumers + PostgreSQL CPU per 1 000 readings: clean {cost(clean):.1f} ms, "
        f"poisoned {cost(poisoned):.1f} ms (ratio {cost(poisoned) / max(cost(clean), 1e-9):.2f}; on a busy machine "
        "this, not the throughput, is the poison's own cost)")
    return lost_ok
