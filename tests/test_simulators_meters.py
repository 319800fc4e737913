"""Meter simulators over real loopback sockets: pymodbus client ↔ Modbus simulator, raw asyncio ↔ DL/T 645."""

import asyncio
import time

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from apps.protocols.codecs import dlt645 as d
from apps.protocols.codecs import modbus as m
from apps.protocols.simulators import dlt645_meter, modbus_meter


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


# --- Modbus --------------------------------------------------------------------------------------

async def _read_all(client, unit, points):
    out = {}
    for req in m.plan_reads(points):
        rr = await client.read_input_registers(req.address, count=req.count, device_id=unit)
        assert not rr.isError(), rr
        out.update({p.name: v for p, v in m.decode_block(req, rr.registers).items()})
    return out


def test_modbus_simulator_read_and_decode():
    async def main():
        sim = await modbus_meter.start(units=2, energy_per_second=5.0)
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=2, retries=0)
        try:
            assert await client.connect()
            points = m.load_map(m.SDM630)
            first = await _read_all(client, 1, points)
            second_unit = await _read_all(client, 2, points)
            await asyncio.sleep(0.3)
            later = await _read_all(client, 1, points)
            # the codec agrees with pymodbus' own float conversion
            rr = await client.read_input_registers(0x48, count=2, device_id=1)
            own = client.convert_from_registers(rr.registers, data_type=client.DATATYPE.FLOAT32, word_order="big")
            return first, second_unit, later, own, m.decode(next(p for p in points if p.name == "import_energy"),
                                                            rr.registers)
        finally:
            client.close()
            await sim.stop()

    first, second_unit, later, own, ours = run(main())
    assert 225 < first["voltage_l1"] < 235 and 49.9 < first["frequency"] < 50.1
    assert first["current_l1"] > 0 and first["power_factor_l1"] == pytest.approx(0.95)
    assert later["import_energy"] > first["import_energy"] >= 1000
    assert second_unit["import_energy"] >= 2000
    assert own == pytest.approx(ours)


def test_modbus_simulator_silent_and_slow_units():
    async def main():
        sim = await modbus_meter.start(units=3, silent_units={3}, slow_units={2: 0.4})
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=1, retries=0)
        try:
            await client.connect()
            t = time.monotonic()
            with pytest.raises(ModbusIOException):
                await client.read_input_registers(0, count=2, device_id=3)
            silent_wait = time.monotonic() - t
            t = time.monotonic()
            rr = await client.read_input_registers(0, count=2, device_id=2)
            slow_wait = time.monotonic() - t
            rr1 = await client.read_input_registers(0, count=2, device_id=1)
            return silent_wait, slow_wait, rr, rr1
        finally:
            client.close()
            await sim.stop()

    silent_wait, slow_wait, rr, rr1 = run(main())
    assert silent_wait >= 0.9
    assert slow_wait >= 0.35 and not rr.isError() and not rr1.isError()


# --- DL/T 645 ------------------------------------------------------------------------------------

async def _ask(reader, writer, request: bytes, timeout: float = 3.0):
    writer.write(request)
    await writer.drain()
    scanner = d.FrameScanner()
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        data = await asyncio.wait_for(reader.read(256), deadline - asyncio.get_running_loop().time())
        assert data, "connection closed"
        frames = [f for f in scanner.feed(data) if isinstance(f, d.Dlt645Frame)]
        if frames:
            return frames[0]


def test_dlt645_simulator_reads():
    address = "000102030425"

    async def main():
        sim = await dlt645_meter.start(addresses=[address, "000000000002"], garbage=b"\x00\x16\x68",
                                       chunk=5, kwh_per_second=1.0)
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        try:
            energy = await _ask(reader, writer, d.build_read_request(address, "00010000"))
            voltage = await _ask(reader, writer, d.build_read_request(address, "02010100"))
            block = await _ask(reader, writer, d.build_read_request(address, "0201FF00"))
            freq = await _ask(reader, writer, d.build_read_request(address, "02800002"))
            unknown = await _ask(reader, writer, d.build_read_request(address, "04A00101"))
            old = await _ask(reader, writer, d.build_read_request(address, "9010"))
            addr = await _ask(reader, writer, d.build_read_address_request())
            await asyncio.sleep(0.2)
            energy2 = await _ask(reader, writer, d.build_read_request(address, "00010000"))
            other = await _ask(reader, writer, d.build_read_request("000000000002", "00010000"))
            return energy, voltage, block, freq, unknown, old, addr, energy2, other
        finally:
            writer.close()
            await sim.stop()

    energy, voltage, block, freq, unknown, old, addr, energy2, other = run(main())
    e = d.parse_reply(energy)
    assert isinstance(e, d.Dlt645Reading) and e.unit == "kWh" and e.address == address and e.value >= 1206.42
    assert energy.preamble == 4
    assert d.parse_reply(energy2).value > e.value
    v = d.parse_reply(voltage)
    assert v.unit == "V" and 210 < v.value < 230
    assert len(d.parse_reply(block).value) == 3
    assert d.parse_reply(freq).value == pytest.approx(50, abs=0.1)
    err = d.parse_reply(unknown)
    assert isinstance(err, d.Dlt645Error) and err.code == "E7103" and err.error_bits == ("no requested data",)
    assert old.version == "1997" and d.parse_reply(old).di == "9010"
    assert d.parse_address_reply(addr) == address
    assert d.parse_reply(other).address == "000000000002"


def test_dlt645_simulator_ignores_other_addresses_and_answers_slowly():
    async def main():
        sim = await dlt645_meter.start(addresses=["000000000001"], delay=0.3, preamble=0)
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        try:
            with pytest.raises(asyncio.TimeoutError):
                await _ask(reader, writer, d.build_read_request("000000000009", "00010000"), timeout=0.6)
            t = time.monotonic()
            frame = await _ask(reader, writer, d.build_read_request("000000000001", "02020100"))
            return frame, time.monotonic() - t
        finally:
            writer.close()
            await sim.stop()

    frame, waited = run(main())
    assert waited >= 0.25 and frame.preamble == 0
    reading = d.parse_reply(frame)
    assert reading.unit == "A" and reading.value > 0
