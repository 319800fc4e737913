"""Replay: fill the edge buffer as during an outage, then let the agent's sender drain it to Mosquitto."""

from __future__ import annotations

import asyncio
import time

from .common import CODES, PARK, POINTS, SERVERS, T0_MS, UNITS, source_id, value_of


def sources() -> list[str]:
    return [source_id(s, u) for s in range(SERVERS) for u in range(1, UNITS + 1)]


def fill(path, readings: int) -> dict:
    """Readings of 200 sources x 10 points per minute, taken offline (backfill), one transaction per minute
    (the agent commits one per poll). Returns the minutes covered and the fill time."""
    from apps.edge.buffer import Buffer, Reading
    from apps.edge.config import DEFAULT_MAX_BYTES

    srcs = sources()
    per_minute = len(srcs) * POINTS
    minutes = -(-readings // per_minute)
    buf = Buffer(path, DEFAULT_MAX_BYTES)
    t0 = time.perf_counter()
    stored = 0
    for m in range(minutes):
        ts = T0_MS + m * 60_000
        batch = [Reading(src, CODES[c], ts, value_of(i, c, m), "kW", "N", True)
                 for i, src in enumerate(srcs) for c in range(POINTS)]
        stored += buf.put(batch)
    secs = time.perf_counter() - t0
    size = buf.used_bytes()
    buf.close()
    return {"minutes": minutes, "readings": stored, "fill_s": secs, "bytes": size}


def agent_config(url: str, path: str, batch_size: int):
    from apps.edge.config import parse

    devices = [{"source_id": s, "driver": "fake", "interval_s": 60, "points": [{"data_code": c} for c in CODES]}
               for s in sources()]
    return parse({"platform": {"mqtt_url": url, "park": PARK, "client_id": f"{PARK}-GW-01", "keepalive": 60,
                               "batch_size": batch_size},
                  "buffer": {"path": path}, "device": devices})


async def drain(config, expected: int, end_ms: int, timeout: float) -> dict:
    """Run the agent (its poll loops wait on a manual clock that never moves) until every reading is acked."""
    from apps.edge.agent import Agent
    from apps.edge.clock import ManualClock

    agent = Agent(config, clock=ManualClock(end_ms))
    marks = {"start": time.perf_counter()}
    cpu0 = time.process_time()
    task = asyncio.create_task(agent.run())
    deadline = marks["start"] + timeout
    while agent.stats["sent"] < expected and time.perf_counter() < deadline and not task.done():
        if "online" not in marks and agent.loop is not None and hasattr(agent, "_online") and agent.online:
            marks["online"] = time.perf_counter()
        await asyncio.sleep(0.005)
    marks["drained"] = time.perf_counter()
    cpu = time.process_time() - cpu0
    sent = agent.stats["sent"]
    agent.stop()
    await asyncio.wait_for(task, 60)
    return {"sent": sent, "cpu": cpu, "total_s": marks["drained"] - marks["start"],
            "connect_s": marks.get("online", marks["drained"]) - marks["start"],
            "drain_s": marks["drained"] - marks.get("online", marks["start"])}
