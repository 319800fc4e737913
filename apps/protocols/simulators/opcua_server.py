"""An OPC UA server simulating park meters (asyncua), for tests and the demo.

Each meter is an object ``Meter<n>`` under Objects with variables ``Energy`` (kWh, rising) and
``Power`` (kW); their NodeIds are ``ns=<ns>;s=Meter<n>.Energy`` / ``.Power``."""

from __future__ import annotations

import asyncio
import logging
import random

from asyncua import Server, ua

NAMESPACE = "urn:carbonpark:simulator"


class OpcuaMeterServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 4840, meters: int = 2, period: float = 0.5):
        self.endpoint = f"opc.tcp://{host}:{port}/carbonpark/"
        self.meters, self.period = meters, period
        self.server = Server()
        self.ns = None
        self.vars: dict[str, object] = {}
        self._task = None

    async def start(self) -> None:
        logging.getLogger("asyncua").setLevel(logging.WARNING)
        await self.server.init()
        self.server.set_endpoint(self.endpoint)
        self.server.set_server_name("CarbonPark OPC UA meter simulator")
        self.ns = await self.server.register_namespace(NAMESPACE)
        objects = self.server.nodes.objects
        for n in range(1, self.meters + 1):
            meter = await objects.add_object(ua.NodeId(f"Meter{n}", self.ns), f"Meter{n}")
            for name, start in (("Energy", 1000.0 * n), ("Power", 50.0 * n)):
                var = await meter.add_variable(ua.NodeId(f"Meter{n}.{name}", self.ns), name, start)
                self.vars[f"Meter{n}.{name}"] = var
        await self.server.start()
        # Energy is historized, as a plant historian would: incremental pulls read what changed since.
        await self.server.historize_node_data_change(
            [v for k, v in self.vars.items() if k.endswith("Energy")], count=10_000)
        self._task = asyncio.create_task(self._tick())

    def node_id(self, name: str) -> str:
        return f"ns={self.ns};s={name}"

    async def _tick(self) -> None:
        rng = random.Random(7)
        while True:
            await asyncio.sleep(self.period)
            for key, var in self.vars.items():
                value = await var.read_value()
                if key.endswith("Energy"):
                    value += rng.uniform(0.1, 0.5)
                else:
                    value = max(0.0, value + rng.uniform(-2, 2))
                await var.write_value(value)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self.server.stop()
