"""A Modbus TCP server simulating N energy meters (unit ids 1..N) with an SDM630-like map (protocols.md §3.1).

Built on pymodbus 3.16's SimDevice/SimData datastore (ModbusDeviceContext is deprecated there). Each unit
exposes FC04 input registers (float32 ABCD by default, or any map of ``codecs.modbus`` points) whose values
are recomputed on every access from the time since start: import energy grows, voltages and currents wobble.
``silent_units`` never answer (the client times out — for back-off tests); ``slow_units`` answer after a
delay. Binds 127.0.0.1 on the given port, or a free one when port is 0.

    sim = await start(port=0, units=3, silent_units={3})
    ... AsyncModbusTcpClient("127.0.0.1", port=sim.port) ...
    await sim.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections.abc import Iterable

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from apps.protocols.codecs import modbus as codec

# Demand period (minutes) at holding 40003, as on Eastron meters (protocols.md §3.2).
_HOLDING = [codec.Point("demand_period", 3, 0x0002, "float32", unit="min")]


class ModbusMeterSimulator:
    """N simulated meters on one Modbus TCP listener (like an RS-485 line behind a gateway)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, units: int = 1, *,
                 points: Iterable[codec.Point] | None = None, silent_units: Iterable[int] = (),
                 slow_units: dict[int, float] | None = None, start_energy: float = 1000.0,
                 energy_per_second: float = 0.5) -> None:
        self.host = host
        self.port = port
        self.units = units
        self.points = list(points) if points is not None else codec.load_map(codec.SDM630)
        self.silent_units = set(silent_units)
        self.slow_units = dict(slow_units or {})
        self.start_energy = start_energy
        self.energy_per_second = energy_per_second
        self.requests: dict[int, int] = {}
        self._t0 = time.monotonic()
        self._server: ModbusTcpServer | None = None

    # values ---------------------------------------------------------------------------------------

    def value(self, unit: int, name: str, elapsed: float | None = None) -> float:
        """The simulated value of a point at ``elapsed`` seconds since start (now by default)."""
        t = time.monotonic() - self._t0 if elapsed is None else elapsed
        wobble = math.sin(t / 5 + unit)
        energy = self.start_energy * unit + self.energy_per_second * t
        if name.startswith("voltage"):
            return 230.0 + 2.0 * wobble
        if name.startswith("current"):
            return 10.0 + unit + wobble
        if name.startswith("power_factor"):
            return 0.95
        if name.startswith("power"):
            return (230.0 + 2.0 * wobble) * (10.0 + unit + wobble)
        if name == "total_power":
            return 3 * (230.0 + 2.0 * wobble) * (10.0 + unit + wobble)
        if name == "frequency":
            return 50.0 + 0.02 * wobble
        if name in ("import_energy", "total_energy"):
            return energy
        return 0.0  # export energy and anything else the map adds

    def _fill(self, unit: int, registers: list[int], start_address: int) -> None:
        for p in self.points:
            if p.function != 4:
                continue
            off = p.address - start_address
            registers[off:off + p.count] = codec.encode(p, self.value(unit, p.name))

    async def _action(self, unit: int, function_code: int, start_address: int, address: int, count: int,
                      current_registers: list[int], set_values) -> None:
        self.requests[unit] = self.requests.get(unit, 0) + 1
        delay = self.slow_units.get(unit)
        if delay:
            await asyncio.sleep(delay)
        if function_code == 4:
            self._fill(unit, current_registers, start_address)
        return None

    def _device(self, unit: int) -> SimDevice:
        inputs = [p for p in self.points if p.function == 4]
        holding = [p for p in self.points if p.function == 3] or _HOLDING
        ir_end = max((p.address + p.count for p in inputs), default=2)
        hr_end = max(p.address + p.count for p in holding)
        ir = [0] * ir_end
        self._fill(unit, ir, 0)
        hr = [0] * hr_end
        for p in holding:
            hr[p.address:p.address + p.count] = codec.encode(p, 60.0 if p.name == "demand_period" else 0.0)
        return SimDevice(
            id=unit,
            simdata=([SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                     [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                     [SimData(0, values=hr, datatype=DataType.REGISTERS)],
                     [SimData(0, values=ir, datatype=DataType.REGISTERS)]),
            action=functools.partial(self._action, unit),
        )

    def _trace(self, sending: bool, packet: bytes) -> bytes:
        # A silent unit's answer is dropped on the way out (MBAP byte 6 is the unit id), so the client
        # times out exactly as with a dead meter behind a gateway; the set may change while running.
        if sending and len(packet) > 6 and packet[6] in self.silent_units:
            return b""
        return packet

    # lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> int:
        """Start listening; returns the port."""
        if not self.port:
            self.port = _free_port(self.host)
        devices = [self._device(u) for u in range(1, self.units + 1)]
        self._t0 = time.monotonic()
        self._server = ModbusTcpServer(devices, address=(self.host, self.port), trace_packet=self._trace)
        await self._server.serve_forever(background=True)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.shutdown()
            self._server = None

    async def __aenter__(self) -> ModbusMeterSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


async def start(host: str = "127.0.0.1", port: int = 0, units: int = 1, **options) -> ModbusMeterSimulator:
    """Start a simulator (options: points, silent_units, slow_units, start_energy, energy_per_second)."""
    sim = ModbusMeterSimulator(host, port, units, **options)
    await sim.start()
    return sim
