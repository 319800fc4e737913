"""Printing: every figure with its target beside it."""

from __future__ import annotations

from .common import CPU_TARGET, CYCLE_TARGET_S, DEAD, PERIOD_S, REPLAY_TARGET, fmt, say, source_id


def dead_name() -> str:
    return f"{source_id(*DEAD)} (endpoint {DEAD[0] + 1}, unit {DEAD[1]})"


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def polling(results: list[dict], served: dict) -> None:
    for r in results:
        say(f"\n  {r['label']} ({r['cycles']} cycles; x = the dead device was tried: {r['pattern']})")
        say(f"    cycle time, all 200 devices   median {r['median'] * 1000:8.0f} ms   max {r['max'] * 1000:8.0f} ms"
            f"   (target < {CYCLE_TARGET_S:.0f} s of the {PERIOD_S:.0f} s period: {_mark(r['max'] < CYCLE_TARGET_S)})")
        say(f"    first cycle (connects)        {r['first'] * 1000:8.0f} ms")
        say(f"    cycles without the dead one   median {r['median_no_dead'] * 1000:8.0f} ms;  with it: max "
            f"{r['max_with_dead'] * 1000:.0f} ms in {r['dead_attempts']} cycle(s)")
        if r["live_max"]:
            say(f"    slowest live device           {r['live_max'] * 1000:8.0f} ms")
        say(f"    requests per cycle            {r['requests']:8.0f}      readings per cycle {r['readings']:6.0f}"
            f"   (199 live devices x 10 = 1990)")
        share = r["cpu"] / PERIOD_S
        say(f"    CPU per cycle, poller process {r['cpu'] * 1000:8.1f} ms (max {r['cpu_max'] * 1000:.1f})"
            f" = {share:.3%} of a core at 1/min   (target < {CPU_TARGET:.0%}: {_mark(share < CPU_TARGET)})")
        say(f"    CPU per cycle, simulators     {r['sim_cpu'] * 1000:8.1f} ms")
        say(f"    headroom                      {r['headroom']:8.0f} x   (period / median cycle)")
        for e in r["other_errors"]:
            say(f"    ERROR on a live device: {e}")
    if served:
        say(f"\n  requests served by the simulators: {fmt(sum(served.values()))}")


def filled(f: dict) -> None:
    say(f"  buffered {fmt(f['readings'])} readings ({f['minutes']} minutes of 200 sources x 10 points, one"
        f" transaction per minute) in {f['fill_s']:.1f} s = {fmt(f['readings'] / f['fill_s'])} readings/s;"
        f" {f['bytes'] / 2**20:.0f} MiB in use")


def replayed(r: dict) -> None:
    c = r["check"]
    n = r["filled"]["readings"]
    rate = r["sent"] / r["total_s"] if r["total_s"] else 0.0
    say(f"\n  agent sender, batch_size {r['batch_size']}: {fmt(r['sent'])} of {fmt(n)} readings acknowledged")
    say(f"    start -> connected            {r['connect_s']:8.2f} s   (opens the buffer, marks pending backfill,"
        " connects)")
    say(f"    connected -> drained          {r['drain_s']:8.2f} s")
    say(f"    replay rate                   {fmt(rate):>8} readings/s over {r['total_s']:.1f} s"
        f"   (target >= {fmt(REPLAY_TARGET)}: {_mark(rate >= REPLAY_TARGET)})")
    say(f"    messages                      {fmt(c['messages']):>8}   ({c['readings'] / max(1, c['messages']):.1f}"
        " readings each)")
    cpu = r["cpu_other"]
    say(f"    CPU: agent {r['cpu']:.1f} s, Mosquitto {cpu['mosquitto']:.1f} s, subscriber {cpu['subscriber']:.1f} s"
        f" ({r['cpu'] / r['total_s']:.0%} of a core for the agent)")
    checks = {"received": c["readings"] == n, "missing": c["missing"] == 0, "duplicates": c["duplicates"] == 0,
              "unexpected": c["unexpected"] == 0, "not backfill": c["not_backfill"] == 0,
              "wrong value": c["bad_value"] == 0, "out of time order per source": c["out_of_order"] == 0,
              "pending in buffer after": r["pending_after"] == 0}
    say(f"    subscriber: received {fmt(c['readings'])}, missing {c['missing']}, duplicates {c['duplicates']},"
        f" unexpected {c['unexpected']}, not backfill {c['not_backfill']}, wrong value {c['bad_value']},"
        f" out of order {c['out_of_order']}; pending in buffer after: {r['pending_after']}")
    r["ok"] = all(checks.values()) and r["sent"] == n
    failed = ", ".join(k for k, v in checks.items() if not v)
    say("    verdict: " + ("every buffered reading arrived once, in time order, flagged backfill" if r["ok"]
                          else f"FAILED: {failed or 'not every reading acknowledged'}"))
