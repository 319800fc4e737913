"""Device drivers: ``read()`` returns {data_code: value} for the device's points (raises on failure).

The field drivers are thin adapters over the framework-free pollers (``apps.protocols.pollers``):

- ``modbus_tcp`` / ``modbus_rtu``: ``ModbusPoller`` (pymodbus, async) with coalesced block reads
  (``codecs.modbus.plan_reads``) and a per-device ``Backoff``;
- ``dlt645_tcp``: ``Dlt645Poller``, DL/T 645-2007/-1997 meters behind a serial-to-TCP transparent gateway.
- ``dlt645_serial``: the same meters on an RS-485 line (pyserial; 2400 8E1 by default).

Devices on the same bus (same host:port, or the same serial port) share ONE poller, whose lock allows one
transaction at a time on the bus; the agent staggers the devices' polls by 1 s. A device that does not
answer is backed off (skipped for 1, 2, 4 … 16 of its polls) so it does not hold the bus on every round;
while it is backed off ``read()`` raises ``BackedOff`` at once, without touching the bus.

Every driver notes the ``perf_counter`` of its last request (``requested_at``) and answer (``answered_at``)
so the protocol-conversion latency (R-5.2.1.3: request to record buffered) can be measured.
"""
from __future__ import annotations

import asyncio
import struct
import time
import weakref

from .config import Device, modbus_point


class BackedOff(OSError):  # noqa: N818 - reads as "device backed off"
    """The device failed recently and is skipped this poll (the bus is left to the others)."""


class DeviceReadError(OSError):
    """A read that failed with the poller's error code (E7201 Modbus, E7102/E7103 DL/T 645 …)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code} {detail}")
        self.code, self.detail = code, detail


class FakeDriver:
    """Deterministic values for tests and demos: ``values`` cycled, else start + step * n (n = poll number)."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.n = 0

    async def read(self) -> dict[str, float]:
        out = {}
        for p in self.device.points:
            out[p.data_code] = p.values[self.n % len(p.values)] if p.values else p.start + p.step * self.n
        self.n += 1
        return out

    async def close(self) -> None:
        pass


_FORMATS = {"float32": (">f", 2), "int32": (">i", 2), "uint32": (">I", 2), "int16": (">h", 1), "uint16": (">H", 1)}


def decode_registers(registers: list[int], kind: str, word_order: str = "big") -> float:
    """Minimal decode of 16-bit registers (big-endian bytes within a register; ``word_order`` little = CDAB)."""
    fmt, n = _FORMATS[kind]
    words = list(registers[:n])
    if len(words) != n:
        raise ValueError(f"{kind} needs {n} registers, got {len(registers)}")
    if word_order == "little":
        words.reverse()
    return struct.unpack(fmt, b"".join(w.to_bytes(2, "big") for w in words))[0]


# --- buses shared by the drivers of one event loop --------------------------------------------------------------

class _Bus:
    def __init__(self, poller) -> None:
        self.poller = poller
        self.users = 0


_buses: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> {bus key: _Bus}


def _loop_buses() -> dict:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # built outside a loop: no sharing
        return {}
    return _buses.setdefault(loop, {})


def _attach(key: tuple, make_poller, shared: bool) -> tuple[dict, _Bus]:
    buses = _loop_buses() if shared else {}
    bus = buses.get(key)
    if bus is None:
        bus = buses[key] = _Bus(make_poller())
    bus.users += 1
    return buses, bus


class _PollerDriver:
    """One device on a (possibly shared) bus: ``read()`` polls just this device through the bus's poller."""

    def __init__(self, device: Device, buses: dict, key: tuple, bus: _Bus, member) -> None:
        self.device = device
        self._buses, self._key, self.bus, self.member = buses, key, bus, member
        self.requested_at: float | None = None
        self.answered_at: float | None = None
        self.last_seconds: float | None = None

    @property
    def poller(self):
        return self.bus.poller

    async def read(self) -> dict[str, float]:
        self.requested_at = time.perf_counter()
        result = await self.poller.poll([self.member])
        self.answered_at = time.perf_counter()
        self.last_seconds = result.seconds
        if self.device.source_id in result.skipped:
            backoff = self.member.backoff
            raise BackedOff(f"backed off after {backoff.failures} failure(s): {backoff.skip} more poll(s) skipped")
        values = {r["dataCode"]: r["value"] for r in result.records if r["sourceId"] == self.device.source_id}
        errors = [(code, detail) for source, code, detail in result.errors if source == self.device.source_id]
        if errors and not values:
            raise DeviceReadError(errors[0][0], "; ".join(f"{code} {detail}" for code, detail in errors))
        return values  # a point missing here is dropped (and counted) by the agent

    async def close(self) -> None:
        self.bus.users -= 1
        if self.bus.users <= 0:
            if self._buses.get(self._key) is self.bus:
                del self._buses[self._key]
            await self.poller.close()


class ModbusDriver(_PollerDriver):
    """Modbus TCP (``host``/``port``) or RTU (``serial``/``baudrate``) on a ``ModbusPoller`` shared per bus."""

    def __init__(self, device: Device, *, shared: bool = True) -> None:
        from apps.protocols.pollers.modbus import ModbusDevice, ModbusPoller

        key = device.bus

        def make():
            if device.driver == "modbus_rtu":
                return ModbusPoller([], serial=device.serial, baudrate=device.baudrate,
                                    parity=device.parity or "N", timeout=device.timeout_s)
            return ModbusPoller([], host=device.host, port=device.port, timeout=device.timeout_s)

        buses, bus = _attach(key, make, shared)
        points = [modbus_point(p, device.register_map) for p in device.points]
        member = ModbusDevice(device.unit_id, device.source_id, points)
        bus.poller.devices.append(member)
        super().__init__(device, buses, key, bus, member)


ModbusTcpDriver = ModbusDriver  # the name of the former standalone driver


class Dlt645TcpDriver(_PollerDriver):
    """A DL/T 645 meter (``address``) behind a serial-to-TCP gateway (``dlt645_tcp``) or on an RS-485 line
    (``dlt645_serial``), on a ``Dlt645Poller`` shared per gateway or line."""

    def __init__(self, device: Device, *, shared: bool = True) -> None:
        from apps.protocols.pollers.dlt645 import Dlt645Meter, Dlt645Poller, MeterPoint

        key = device.bus
        if device.driver == "dlt645_serial":
            def make():
                return Dlt645Poller([], serial=device.serial, baudrate=device.baudrate,
                                    parity=device.parity or "E", timeout=device.timeout_s)
        else:
            def make():
                return Dlt645Poller([], host=device.host, port=device.port, timeout=device.timeout_s)
        buses, bus = _attach(key, make, shared)
        member = Dlt645Meter(device.address, device.source_id,
                             [MeterPoint(p.di, p.data_code, p.unit or None) for p in device.points])
        bus.poller.meters.append(member)
        super().__init__(device, buses, key, bus, member)


def make_driver(device: Device):
    return {"fake": FakeDriver, "modbus_tcp": ModbusDriver, "modbus_rtu": ModbusDriver,
            "dlt645_tcp": Dlt645TcpDriver, "dlt645_serial": Dlt645TcpDriver}[device.driver](device)
