"""The Modbus TCP simulators, in a child process so that their CPU is not the poller's."""

from __future__ import annotations

import asyncio
import multiprocessing as mp

from .common import DEAD, POINTS, SERVERS, UNITS


def sim_points():
    """Input registers 0-19: 10 float32 (contiguous map); 40-49: 5 more float32 (the map with a gap)."""
    from apps.protocols.codecs import modbus as codec

    names = [f"power_{i}" for i in range(POINTS)] + [f"current_{i}" for i in range(POINTS // 2)]
    addrs = [2 * i for i in range(POINTS)] + [40 + 2 * i for i in range(POINTS // 2)]
    return [codec.Point(n, 4, a, "float32") for n, a in zip(names, addrs)]


def _child(conn, servers: int, units: int) -> None:
    async def main():
        from apps.protocols.simulators import modbus_meter

        sims = []
        for s in range(servers):
            silent = {DEAD[1]} if s == DEAD[0] else set()
            sims.append(await modbus_meter.start("127.0.0.1", 0, units=units, points=sim_points(),
                                                 silent_units=silent))
        conn.send([sim.port for sim in sims])
        while not conn.poll():
            await asyncio.sleep(0.2)
        conn.recv()
        conn.send({i: sum(sim.requests.values()) for i, sim in enumerate(sims)})
        for sim in sims:
            await sim.stop()

    asyncio.run(main())


class Simulators:
    def __init__(self, servers: int = SERVERS, units: int = UNITS) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_child, args=(child, servers, units), daemon=True, name="modbus-sims")
        self.proc.start()
        if not self.conn.poll(60):
            raise RuntimeError("simulators did not start")
        self.ports: list[int] = self.conn.recv()

    def stop(self) -> dict:
        """Stop them; returns requests served per server."""
        counts = {}
        try:
            self.conn.send("stop")
            if self.conn.poll(10):
                counts = self.conn.recv()
        except (OSError, EOFError):
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
        return counts
