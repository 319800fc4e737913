"""Pollers on a serial line, over a pseudo-terminal pair: the poller opens the slave's path with pyserial
(as it would /dev/ttyUSB0); a fake device thread on the master side reads the requests and answers.
DL/T 645 meters (FE preamble, replies written in pieces, an absent address timed out and backed off) and
Modbus RTU with pymodbus's AsyncModbusSerialClient (request CRC checked, a silent unit backed off)."""

import asyncio
import os
import select
import threading
import time
import tty

import pytest

from apps.protocols.codecs import dlt645
from apps.protocols.codecs import modbus as codec
from apps.protocols.pollers.dlt645 import Dlt645Meter, Dlt645Poller, MeterPoint
from apps.protocols.pollers.modbus import ModbusDevice, ModbusPoller
from apps.protocols.pollers.serial import SerialLine
from apps.protocols.simulators.dlt645_meter import Dlt645MeterSimulator


def pty_parity() -> str:
    """"E" (the DL/T 645-2007 line's 8E1) when this kernel's ptys accept a parity setting; some (gVisor)
    reject PARENB with EINVAL, and a pty carries bytes, not bits, so 8N1 tests the same poller code."""
    master, slave = os.openpty()
    try:
        SerialLine(os.ttyname(slave), parity="E")._open().close()  # opened the way the poller opens it
        return "E"
    except OSError:
        return "N"
    finally:
        os.close(master)
        os.close(slave)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


class FakeDevice(threading.Thread):
    """The far end of the line: ``handle(data)`` gets every chunk read from the master fd and returns the
    pieces to write back (with a short pause between pieces)."""

    def __init__(self, handle):
        super().__init__(daemon=True)
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.handle = handle
        self.stopping = threading.Event()
        self.errors: list[str] = []

    def run(self):
        while not self.stopping.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 1024)
            except OSError:  # the slave side was closed and reopened
                time.sleep(0.01)
                continue
            try:
                for piece in self.handle(data):
                    os.write(self.master, piece)
                    time.sleep(0.005)
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(exc))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.join(2)
        os.close(self.master)
        os.close(self.slave)


def dlt645_line(addresses, received):
    """DL/T 645 meters on an RS-485 line: the simulator's reply logic, FE preamble, replies in 5-byte pieces."""
    sim = Dlt645MeterSimulator(addresses=addresses, preamble=4)
    scanner = dlt645.FrameScanner()

    def handle(data):
        pieces = []
        for item in scanner.feed(data):
            received.append(item)
            if isinstance(item, dlt645.Dlt645Frame) and (reply := sim.answer(item)):
                pieces += [reply[i:i + 5] for i in range(0, len(reply), 5)]
        return pieces

    return handle


def test_dlt645_poller_on_a_serial_line_reads_energy_and_backs_off_an_absent_meter():
    received = []
    meters = [Dlt645Meter(a, f"TP01-DL-{a[-2:]}", [MeterPoint("00010000", "CS010201", "kWh"),
                                                   MeterPoint("02010100", "CS010301")])
              for a in ("000102030425", "000102030426", "000102030499")]

    async def main(path):
        poller = Dlt645Poller(meters, serial=path, baudrate=2400, parity=pty_parity(), timeout=0.4)
        try:
            first = await poller.poll()
            t = time.perf_counter()
            second = await poller.poll()
            return first, second, time.perf_counter() - t
        finally:
            await poller.close()

    with FakeDevice(dlt645_line(["000102030425", "000102030426"], received)) as line:
        first, second, second_took = run(main(line.path))
    assert line.errors == []
    energy = [r for r in first.records if r["dataCode"] == "CS010201"]
    assert sorted(r["sourceId"] for r in energy) == ["TP01-DL-25", "TP01-DL-26"]
    assert all(r["value"] > 1000 and r["unit"] == "kWh" for r in energy)
    volts = [r for r in first.records if r["dataCode"] == "CS010301"]
    assert len(volts) == 2 and all(210 < r["value"] < 230 and r["unit"] == "V" for r in volts)
    assert len({r["timestamp"] for r in first.records}) == 1
    assert [(e[0], e[1]) for e in first.errors] == [("TP01-DL-99", "E7102")]
    assert "did not answer" in first.errors[0][2]
    assert second.skipped == ["TP01-DL-99"] and second.errors == [] and len(second.records) == 4
    assert second_took < 0.4  # the absent meter does not stall the bus
    # every request reached the line whole (FE preamble included), one at a time
    frames = [f for f in received if isinstance(f, dlt645.Dlt645Frame)]
    assert len(frames) == 4 + 1 + 4 and all(not f.is_reply for f in frames)


def test_dlt645_poller_serial_settings_and_a_missing_port():
    import serial

    line = Dlt645Poller([], serial="/dev/ttyUSB9").line
    assert (line.baudrate, line.bytesize, line.parity, line.stopbits) == (2400, 8, serial.PARITY_EVEN, 1)
    with pytest.raises(ValueError):
        Dlt645Poller([])
    with pytest.raises(ValueError):
        Dlt645Poller([], serial="/dev/ttyUSB9", parity="X")
    meter = Dlt645Meter("000102030425", "TP01-DL-25", [MeterPoint("00010000", "CS010201")])
    poller = Dlt645Poller([meter], serial="/nonexistent/ttyUSB9", timeout=0.2)
    result = run(poller.poll())
    assert [(e[0], e[1]) for e in result.errors] == [("TP01-DL-25", "E7102")] and meter.backoff.failures == 1


POINTS = [codec.Point("voltage", 4, 0, "float32", unit="V", data_code="CS010301"),
          codec.Point("frequency", 4, 2, "float32", unit="Hz"),
          codec.Point("import_energy", 4, 6, "uint32", scale=0.01, unit="kWh", data_code="CS010201")]
VALUES = {"voltage": 230.5, "frequency": 50.0, "import_energy": 1234.56}


def rtu_line(registers_of, silent, requests):
    """Modbus RTU devices: FC03/FC04 answered from ``registers_of[unit]``; units in ``silent`` never answer."""
    buffer = bytearray()

    def handle(data):
        buffer.extend(data)
        pieces = []
        while len(buffer) >= 8:
            frame = bytes(buffer[:8])
            del buffer[:8]
            assert codec.crc16(frame[:6]) == int.from_bytes(frame[6:], "little"), f"bad CRC in {frame.hex()}"
            unit, function = frame[0], frame[1]
            address, count = int.from_bytes(frame[2:4], "big"), int.from_bytes(frame[4:6], "big")
            requests.append((unit, function, address, count))
            assert function == 4
            if unit in silent or unit not in registers_of:
                continue
            pieces.append(codec.build_rtu_read_reply(unit, function, registers_of[unit][address:address + count]))
        return pieces

    return handle


def registers(values):
    regs = [0] * 16
    for point in POINTS:
        regs[point.address:point.address + point.count] = codec.encode(point, values[point.name])
    return regs


def test_modbus_rtu_poller_on_a_serial_line_decodes_values_and_backs_off_a_silent_unit():
    requests = []
    devices = [ModbusDevice(u, f"TP01-MB-{u}", POINTS) for u in (1, 2, 3)]
    other = dict(VALUES, voltage=229.0, import_energy=99.5)

    async def main(path):
        poller = ModbusPoller(devices, serial=path, baudrate=9600, timeout=0.4)
        try:
            first = await poller.poll()
            t = time.perf_counter()
            second = await poller.poll()
            return first, second, time.perf_counter() - t
        finally:
            await poller.close()

    with FakeDevice(rtu_line({1: registers(VALUES), 3: registers(other)}, {2}, requests)) as line:
        first, second, second_took = run(main(line.path))
    assert line.errors == []
    got = {(r["sourceId"], r["dataCode"]): (r["value"], r.get("unit")) for r in first.records}
    assert got[("TP01-MB-1", "CS010301")] == (pytest.approx(230.5), "V")
    assert got[("TP01-MB-1", "CS010201")] == (pytest.approx(1234.56), "kWh")
    assert got[("TP01-MB-3", "CS010301")] == (pytest.approx(229.0), "V")
    assert got[("TP01-MB-3", "CS010201")] == (pytest.approx(99.5), "kWh")
    assert len(got) == 4  # frequency has no data_code
    assert [(e[0], e[1]) for e in first.errors] == [("TP01-MB-2", "E7201")]
    assert second.skipped == ["TP01-MB-2"] and second.errors == [] and len(second.records) == 4
    assert second_took < 0.4
    assert requests == [(u, 4, 0, 8) for u in (1, 2, 3, 1, 3)]  # one coalesced read per device; 2 skipped
