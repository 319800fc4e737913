"""Polling cycles: ModbusPoller per endpoint (coalesced reads, back-off), and the edge agent's own driver."""

from __future__ import annotations

import asyncio
import time
from statistics import median

from .common import CODES, DEAD, PERIOD_S, POINTS, UNITS, source_id


def device_points(gap: bool):
    """The device map: 10 float32 at 0-19 (one read), or 5 at 0-9 and 5 at 40-49 (a 30-register gap: two)."""
    from apps.protocols.codecs import modbus as codec

    if gap:
        spots = [(f"power_{i}", 2 * i) for i in range(POINTS // 2)] + \
                [(f"current_{i}", 40 + 2 * i) for i in range(POINTS // 2)]
    else:
        spots = [(f"power_{i}", 2 * i) for i in range(POINTS)]
    return [codec.Point(n, 4, a, "float32", unit="kW", data_code=CODES[i]) for i, (n, a) in enumerate(spots)]


def _cpu() -> float:
    return time.process_time()  # this process, every thread


def _sim_cpu(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


async def poller_cycles(ports: list[int], sim_pid: int, cycles: int, *, gap: bool, timeout: float) -> dict:
    from apps.protocols.pollers.modbus import ModbusDevice, ModbusPoller

    pollers = []
    for s, port in enumerate(ports):
        devices = [ModbusDevice(u, source_id(s, u), device_points(gap)) for u in range(1, UNITS + 1)]
        pollers.append(ModbusPoller(devices, host="127.0.0.1", port=port, timeout=timeout))
    rows = []
    try:
        for n in range(cycles):
            c0, s0, t0 = _cpu(), _sim_cpu(sim_pid), time.perf_counter()
            results = await asyncio.gather(*(p.poll() for p in pollers))
            wall = time.perf_counter() - t0
            row = {"n": n + 1, "wall": wall, "cpu": _cpu() - c0, "sim_cpu": _sim_cpu(sim_pid) - s0,
                   "readings": sum(len(r.records) for r in results), "requests": 0,
                   "errors": [e for r in results for e in r.errors], "skipped": sum(len(r.skipped) for r in results),
                   "bus": [r.seconds for r in results]}
            for p, r in zip(pollers, results):
                skipped = set(r.skipped)
                row["requests"] += sum(len(d.plan) if d.source_id not in {e[0] for e in r.errors} else 1
                                       for d in p.devices if d.source_id not in skipped)
            rows.append(row)
    finally:
        for p in pollers:
            await p.close()
    return summarise(rows, f"ModbusPoller, {'gap: 2 reads' if gap else 'contiguous: 1 read'} per device")


async def agent_driver_cycles(ports: list[int], sim_pid: int, cycles: int, gap: bool = False) -> dict:
    """The edge agent's own modbus_tcp drivers (apps.edge.drivers: one ModbusPoller shared per bus, each
    device's read() polls just that device) built from a parsed config as Agent.run builds them, each read()
    under wait_for(timeout_s + 5) as Agent._poll does; all 200 due at once (the agent staggers them by 1 s)."""
    from apps.edge.config import parse
    from apps.edge.drivers import BackedOff, make_driver

    devices = [{"source_id": source_id(s, u), "driver": "modbus_tcp", "interval_s": 60, "host": "127.0.0.1",
                "port": port, "unit_id": u,
                "points": [{"data_code": p.data_code, "unit": "kW", "register": "input", "address": p.address,
                            "type": "float32"} for p in device_points(gap)]}
               for s, port in enumerate(ports) for u in range(1, UNITS + 1)]
    config = parse({"platform": {"mqtt_url": "mqtt://127.0.0.1:1", "park": "BE01", "client_id": "BE01-GW-01"},
                    "buffer": {"path": "unused.sqlite3"}, "device": devices})
    drivers = [(d, make_driver(d)) for d in config.devices]
    timeout = config.devices[0].timeout_s

    async def one(dev, drv):
        t0 = time.perf_counter()
        try:
            values = await asyncio.wait_for(drv.read(), dev.timeout_s + 5)
            return dev.source_id, time.perf_counter() - t0, len(values), None, len(drv.member.plan)
        except BackedOff:
            return dev.source_id, time.perf_counter() - t0, 0, "backed off", 0
        except Exception as exc:  # noqa: BLE001
            return dev.source_id, time.perf_counter() - t0, 0, f"{type(exc).__name__}: {exc}", 1

    rows = []
    try:
        for n in range(cycles):
            c0, s0, t0 = _cpu(), _sim_cpu(sim_pid), time.perf_counter()
            done = await asyncio.gather(*(one(d, drv) for d, drv in drivers))
            wall = time.perf_counter() - t0
            rows.append({"n": n + 1, "wall": wall, "cpu": _cpu() - c0, "sim_cpu": _sim_cpu(sim_pid) - s0,
                         "readings": sum(x[2] for x in done), "requests": sum(x[4] for x in done),
                         "live_max": max((x[1] for x in done if x[3] is None), default=0.0),
                         "errors": [(x[0], "", x[3]) for x in done if x[3] and x[3] != "backed off"],
                         "skipped": sum(1 for x in done if x[3] == "backed off"), "bus": []})
    finally:
        for _d, drv in drivers:
            await drv.close()
    return summarise(rows, f"edge agent's modbus_tcp drivers (shared ModbusPoller per bus, timeout_s {timeout:g},"
                           f" {'gap' if gap else 'contiguous'} map), all 200 read() at once")


def summarise(rows: list[dict], label: str) -> dict:
    walls = [r["wall"] for r in rows]
    dead = source_id(*DEAD)
    with_dead = [r["wall"] for r in rows if any(e[0] == dead for e in r["errors"])]
    without = [r["wall"] for r in rows if not any(e[0] == dead for e in r["errors"])]
    other_errors = sorted({e[2][:160] for r in rows for e in r["errors"] if e[0] != dead})
    return {
        "label": label, "cycles": len(rows), "first": walls[0], "median": median(walls), "max": max(walls),
        "median_no_dead": median(without) if without else float("nan"),
        "max_with_dead": max(with_dead) if with_dead else float("nan"),
        "dead_attempts": len(with_dead), "requests": median(r["requests"] for r in rows),
        "readings": median(r["readings"] for r in rows), "cpu": median(r["cpu"] for r in rows),
        "cpu_max": max(r["cpu"] for r in rows), "sim_cpu": median(r["sim_cpu"] for r in rows),
        "live_max": max((r.get("live_max", 0.0) for r in rows), default=0.0),
        "other_errors": other_errors, "headroom": PERIOD_S / median(walls),
        "pattern": "".join("x" if r["wall"] in with_dead else "." for r in rows),
    }
