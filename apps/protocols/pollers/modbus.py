"""Modbus TCP and RTU polling with pymodbus (async): coalesced block reads (codecs.modbus.plan_reads),
one transaction at a time per bus, a back-off for devices that do not answer (R-5.2.1.3)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from apps.protocols.codecs import modbus as codec
from apps.protocols.pollers import Backoff, PollResult, poll_started, stamp


@dataclass
class ModbusDevice:
    unit: int
    source_id: str
    points: list[codec.Point]   # the points with a data_code become readings
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self):
        self.plan = codec.plan_reads(self.points)


class ModbusPoller:
    """One bus: ``host``/``port`` for Modbus TCP, or ``serial`` (e.g. /dev/ttyUSB0) for RTU with
    ``baudrate``/``parity`` ("N", "E", "O")/``bytesize``/``stopbits`` (default 9600 8N1)."""

    def __init__(self, devices: list[ModbusDevice], *, host: str | None = None, port: int = 502,
                 serial: str | None = None, baudrate: int = 9600, timeout: float = 1.0, parity: str = "N",
                 bytesize: int = 8, stopbits: int = 1):
        if serial:
            self.client = AsyncModbusSerialClient(serial, baudrate=baudrate, parity=parity.upper()[:1],
                                                  bytesize=bytesize, stopbits=stopbits, timeout=timeout, retries=0)
        else:
            self.client = AsyncModbusTcpClient(host, port=port, timeout=timeout, retries=0)
        self.devices = devices
        self.lock = asyncio.Lock()  # one transaction at a time on the bus

    async def close(self) -> None:
        self.client.close()

    async def _read(self, device: ModbusDevice, request) -> list[int]:
        read = self.client.read_input_registers if request.function == 4 else self.client.read_holding_registers
        rr = await read(request.address, count=request.count, device_id=device.unit)
        if rr.isError():
            raise ModbusException(f"exception response {rr}")
        return rr.registers

    async def poll(self, devices: list[ModbusDevice] | None = None) -> PollResult:
        """Read every due device once (or only ``devices``, a subset of this bus's: the edge agent polls
        each device on its own schedule); readings carry this poll's start time."""
        started, t0 = poll_started()
        result = PollResult()
        async with self.lock:
            if not self.client.connected:
                await self.client.connect()
            for device in self.devices if devices is None else devices:
                if not device.backoff.due():
                    result.skipped.append(device.source_id)
                    continue
                values = {}
                try:
                    for request in device.plan:
                        values.update(codec.decode_block(request, await self._read(device, request)))
                except (TimeoutError, ModbusException, OSError) as exc:
                    device.backoff.failed()
                    result.errors.append((device.source_id, "E7201", f"unit {device.unit}: {exc}"))
                    continue
                except Exception as exc:  # noqa: BLE001 - one device's surprise never ends the cycle
                    device.backoff.failed()
                    result.errors.append((device.source_id, "E7202",
                                          f"unit {device.unit}: {type(exc).__name__}: {exc}"[:500]))
                    continue
                device.backoff.ok()
                for point, value in values.items():
                    if point.data_code:
                        rec = {"sourceId": device.source_id, "dataCode": point.data_code, "timestamp": stamp(started),
                               "value": value, "status": "N"}
                        if point.unit:
                            rec["unit"] = point.unit
                        result.records.append(rec)
        result.seconds = time.perf_counter() - t0
        return result
