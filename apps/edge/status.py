"""``carbonpark-edge status``: what the agent holds and how its devices fare, read from its buffer.

Opens the SQLite buffer read-only (WAL: safe beside the running agent) and reports the pending count, each
source's last acknowledged reading, each device's health (last good poll, consecutive failures, last error),
the sources the broker refuses, the connection state and unpublished alarms.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from .config import Config
from .health import DeviceHealth, iso


def collect(config: Config) -> dict:
    path = Path(config.buffer.path)
    tz = config.platform.tz
    if not path.exists():
        return {"buffer": str(path), "exists": False, "pending": 0, "devices": {}, "refused": {}, "connection": None,
                "alarms": []}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        state = dict(db.execute("SELECT key, value FROM state").fetchall())
        pending = dict(db.execute("SELECT source_id, COUNT(*) FROM readings WHERE acked_ms IS NULL"
                                  " GROUP BY source_id").fetchall())
        alarms = db.execute("SELECT ts_ms, kind, count FROM alarms WHERE published = 0 ORDER BY id").fetchall()
    finally:
        db.close()
    devices = {}
    for device in config.devices:
        s = device.source_id
        last_acked = state.get(f"last_acked:{s}")
        health = DeviceHealth.loads(state.get(f"health:{s}")).report(tz, int(last_acked) if last_acked else None)
        health["pending"] = pending.get(s, 0)
        health["interval_s"] = int(state.get(f"interval:{s}") or device.interval_s)
        devices[s] = health
    refused = {}
    for key, value in state.items():
        if key.startswith("refused:"):
            r = json.loads(value)
            refused[key[len("refused:"):]] = {"reasonCode": r["reasonCode"], "reason": r["reason"],
                                              "since": iso(r["since"], tz)}
    connection = json.loads(state["connection"]) if "connection" in state else None
    if connection:
        connection["since"] = iso(connection.get("since"), tz)
    return {"buffer": str(path), "exists": True, "pending": sum(pending.values()), "devices": devices,
            "refused": refused, "connection": connection,
            "alarms": [{"at": iso(ts, tz), "kind": kind, "count": count} for ts, kind, count in alarms]}


def render(report: dict) -> str:
    if not report["exists"]:
        return f"buffer {report['buffer']} does not exist yet (the agent has not run)\n"
    conn = report["connection"]
    lines = [f"buffer      {report['buffer']}",
             f"connection  {'online' if conn and conn['online'] else 'offline'}"
             + (f" since {conn['since']}" if conn else " (never connected)"),
             f"pending     {report['pending']} readings not yet acknowledged by the broker", ""]
    lines.append(f"{'source':<24} {'pending':>7} {'last acknowledged':<29} {'last good poll':<29} "
                 f"{'fails':>5}  last error")
    for source, d in report["devices"].items():
        error = f"{d['lastError']} {d['message']}" if d["lastError"] else "-"
        lines.append(f"{source:<24} {d['pending']:>7} {d['lastAcked'] or '-':<29} {d['lastGoodPoll'] or '-':<29} "
                     f"{d['failures']:>5}  {error}")
    for source, r in report["refused"].items():
        lines.append(f"REFUSED by the broker: {source} (reason code {r['reasonCode']} {r['reason']}) since "
                     f"{r['since']}: its readings stay in the buffer; fix the broker's ACL")
    for alarm in report["alarms"]:
        lines.append(f"alarm not yet published: {alarm['kind']} ×{alarm['count']} at {alarm['at']}")
    return "\n".join(lines) + "\n"
