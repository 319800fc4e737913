"""Options and the run: ``python -m bench.edge_poll [--quick]`` (see the package docstring)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import __doc__ as PACKAGE_DOC
from .common import ROOT, SERVERS, UNITS, fmt, say


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.edge_poll", description=PACKAGE_DOC.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 cycles per variant, 100 000 readings replayed")
    ap.add_argument("--cycles", type=int, default=20, help="polling cycles per ModbusPoller variant")
    ap.add_argument("--driver-cycles", type=int, default=5, help="cycles of the agent's own driver")
    ap.add_argument("--timeout", type=float, default=1.0, help="ModbusPoller response timeout, seconds")
    ap.add_argument("--readings", type=int, default=1_000_000, help="readings buffered for the replay")
    ap.add_argument("--batch-size", type=int, default=200, help="the agent's [platform] batch_size")
    ap.add_argument("--skip-polling", action="store_true")
    ap.add_argument("--skip-replay", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (buffer, broker log)")
    args = ap.parse_args()
    if args.quick:
        args.cycles, args.driver_cycles, args.readings = 5, 2, 100_000
    return args


async def run_polling(args, sims) -> list[dict]:
    from . import polling

    out = [await polling.poller_cycles(sims.ports, sims.proc.pid, args.cycles, gap=False, timeout=args.timeout),
           await polling.poller_cycles(sims.ports, sims.proc.pid, args.cycles, gap=True, timeout=args.timeout)]
    if args.driver_cycles:
        out.append(await polling.agent_driver_cycles(sims.ports, sims.proc.pid, args.driver_cycles))
    return out


def polling_phase(args) -> list[dict]:
    from . import report
    from .simulators import Simulators

    say(f"polling: {SERVERS} simulator endpoints x {UNITS} unit ids = {SERVERS * UNITS} devices, 10 float32 "
        f"points (20 registers) each; dead device: {report.dead_name()}")
    sims = Simulators()
    try:
        results = asyncio.run(run_polling(args, sims))
    finally:
        served = sims.stop()
    report.polling(results, served)
    return results


def replay_phase(args, tmp: Path) -> dict:
    import psutil

    from bench.mqtt_ingest.broker import start_broker

    from . import replay, report
    from .subscriber import Subscriber

    path = str(tmp / "buffer.sqlite3")
    say(f"replay: filling the edge buffer with {fmt(args.readings)} readings ...")
    filled = replay.fill(path, args.readings)
    report.filled(filled)
    broker = start_broker(tmp / "broker")
    try:
        sub = Subscriber(broker.url, SERVERS * UNITS, filled["minutes"])
        procs = {"mosquitto": psutil.Process(broker.proc.pid), "subscriber": psutil.Process(sub.proc.pid)}
        cpu0 = {k: sum(p.cpu_times()[:2]) for k, p in procs.items()}
        config = replay.agent_config(broker.url, path, args.batch_size)
        end_ms = replay.T0_MS + filled["minutes"] * 60_000 + 3_630_000  # not on a minute: no poll is ever due
        result = asyncio.run(replay.drain(config, filled["readings"], end_ms, timeout=3600))
        result["cpu_other"] = {k: sum(p.cpu_times()[:2]) - cpu0[k] for k, p in procs.items()}
        result["check"] = sub.finish()
    finally:
        broker.stop()
    from apps.edge.buffer import Buffer
    from apps.edge.config import DEFAULT_MAX_BYTES

    buf = Buffer(path, DEFAULT_MAX_BYTES)
    result["pending_after"] = buf.pending_count()
    buf.close()
    result.update(filled=filled, batch_size=args.batch_size)
    report.replayed(result)
    return result


def main() -> int:
    args = parse_args()
    os.chdir(ROOT)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # each timeout of the dead device dumps frames
    logging.getLogger("apps.edge").setLevel(logging.ERROR)
    from bench.http_ingest.cpu import machine_load

    load = machine_load()
    say(f"machine: {os.cpu_count()} cores, {load:.0%} busy before the run" +
        ("  (warning: not quiet, figures will be low)" if load > 0.15 else ""))
    tmp = Path(tempfile.mkdtemp(prefix="bench-edge-"))
    ok = True
    t0 = time.perf_counter()
    try:
        if not args.skip_polling:
            polling_phase(args)
        if not args.skip_replay:
            ok = replay_phase(args, tmp)["ok"]
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"total {time.perf_counter() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
