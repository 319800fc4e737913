"""Device drivers: ``read()`` returns {data_code: value} for the device's points (raises on failure)."""
from __future__ import annotations

import struct

from .config import Device, Point


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


class ModbusTcpDriver:
    """Reads each point with pymodbus's async TCP client (function 3 holding / 4 input registers)."""

    def __init__(self, device: Device) -> None:
        from pymodbus.client import AsyncModbusTcpClient

        self.device = device
        self.client = AsyncModbusTcpClient(device.host, port=device.port, timeout=device.timeout_s, retries=1)

    async def _read_point(self, p: Point) -> float:
        count = _FORMATS[p.type][1]
        if p.register == "input":
            rr = await self.client.read_input_registers(p.address, count=count, device_id=self.device.unit_id)
        else:
            rr = await self.client.read_holding_registers(p.address, count=count, device_id=self.device.unit_id)
        if rr.isError():
            raise OSError(f"modbus error reading {p.data_code} at {p.address}: {rr}")
        return decode_registers(rr.registers, p.type, p.word_order) * p.scale

    async def read(self) -> dict[str, float]:
        if not self.client.connected:
            await self.client.connect()
            if not self.client.connected:
                raise OSError(f"cannot connect to modbus device {self.device.host}:{self.device.port}")
        return {p.data_code: await self._read_point(p) for p in self.device.points}

    async def close(self) -> None:
        self.client.close()


def make_driver(device: Device):
    return {"fake": FakeDriver, "modbus_tcp": ModbusTcpDriver}[device.driver](device)
