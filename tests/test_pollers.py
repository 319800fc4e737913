"""Modbus TCP and DL/T 645 pollers against their simulators over real sockets: coalesced reads, a dead
device backed off without stalling the bus, poll-start timestamps, and platform-side polls stored."""

import asyncio
import time

import pytest

from apps.protocols.codecs import modbus as codec
from apps.protocols.pollers.dlt645 import Dlt645Meter, Dlt645Poller, MeterPoint
from apps.protocols.pollers.modbus import ModbusDevice, ModbusPoller
from apps.protocols.simulators import dlt645_meter, modbus_meter
from tests.asyncio_helpers import closing


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def sdm630(code_of=None):
    from dataclasses import replace

    code_of = code_of or {"import_energy": "CS010201"}
    return [replace(p, data_code=code_of.get(p.name)) for p in codec.load_map(codec.SDM630)]


def test_modbus_poller_reads_coalesced_blocks_and_backs_off_a_dead_unit():
    async def main():
        sim = await modbus_meter.start(units=3, silent_units={2})
        devices = [ModbusDevice(u, f"TP01-MB-{u}", sdm630()) for u in (1, 2, 3)]
        poller = ModbusPoller(devices, host="127.0.0.1", port=sim.port, timeout=0.5)
        try:
            first = await poller.poll()
            t = time.perf_counter()
            second = await poller.poll()
            second_took = time.perf_counter() - t
            return first, second, second_took, devices
        finally:
            await poller.close()
            await sim.stop()

    first, second, second_took, devices = run(main())
    assert {r["sourceId"] for r in first.records} == {"TP01-MB-1", "TP01-MB-3"}
    assert all(r["dataCode"] == "CS010201" and r["unit"] == "kWh" for r in first.records)
    assert len({r["timestamp"] for r in first.records}) == 1  # the poll's start time
    assert [e[0] for e in first.errors] == ["TP01-MB-2"] and first.errors[0][1] == "E7201"
    assert second.skipped == ["TP01-MB-2"] and second.errors == []  # backed off: the bus is not stalled
    assert second_took < 0.5
    assert len(devices[0].plan) < len(sdm630())  # neighbouring registers read together


def test_dlt645_poller_over_a_transparent_gateway_with_preamble_and_garbage():
    async def main():
        sim = await dlt645_meter.start(addresses=["000102030425", "000102030426"], preamble=4, garbage=b"\x00\xfe\x55")
        meters = [Dlt645Meter(a, f"TP01-DL-{a[-2:]}", [MeterPoint("00010000", "CS010201", "kWh")])
                  for a in ("000102030425", "000102030426", "000102030499")]
        poller = Dlt645Poller(meters, host="127.0.0.1", port=sim.port, timeout=0.5)
        try:
            return await poller.poll(), await poller.poll()
        finally:
            await poller.close()
            await sim.stop()

    first, second = run(main())
    assert sorted(r["sourceId"] for r in first.records) == ["TP01-DL-25", "TP01-DL-26"]
    assert all(r["value"] > 1000 and r["unit"] == "kWh" for r in first.records)
    assert [e[0] for e in first.errors] == ["TP01-DL-99"]
    assert second.skipped == ["TP01-DL-99"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_platform_polls_modbus_and_dlt645_sources_into_the_store(park):
    from apps.ingestion.models import Reading
    from apps.ingestion.polling import poll_source
    from tests.conftest import add_source

    async def main():
        mb = await modbus_meter.start(units=1)
        dl = await dlt645_meter.start(addresses=["000102030425"])
        try:
            s1 = await asyncio.to_thread(closing, add_source, park, "TP01-MB-0001", ["CS010201"], protocol="modbus_tcp",
                                         settings={"modbus": {"host": "127.0.0.1", "port": mb.port, "unit": 1,
                                                              "map": "eastron-sdm630",
                                                              "codes": {"import_energy": "CS010201"}}})
            s2 = await asyncio.to_thread(closing, add_source, park, "TP01-DL-0001", ["CS010201"], protocol="dlt645",
                                         settings={"dlt645": {"host": "127.0.0.1", "port": dl.port,
                                                              "address": "000102030425",
                                                              "points": [{"di": "00010000", "data_code": "CS010201"}]}})
            r1 = await asyncio.to_thread(closing, poll_source, s1.pk)
            r2 = await asyncio.to_thread(closing, poll_source, s2.pk)
            return r1, r2
        finally:
            await mb.stop()
            await dl.stop()

    r1, r2 = run(main())
    assert (r1.accepted, r2.accepted) == (1, 1)
    assert set(Reading.objects.values_list("channel", flat=True)) == {"poller"}


class ShortAnswerGateway:
    """A Modbus TCP gateway whose unit 2 answers every read with one register, whatever was asked
    (a device with a broken firmware); the other units answer zeros of the right length."""

    async def start(self):
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _client(self, reader, writer):
        import contextlib
        import struct

        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            while True:
                tid, _pid, length, unit = struct.unpack(">HHHB", await reader.readexactly(7))
                fc, _addr, count = struct.unpack(">BHH", (await reader.readexactly(length - 1))[:5])
                n = 1 if unit == 2 else count
                body = struct.pack(">BB", fc, 2 * n) + b"\x00\x00" * n
                writer.write(struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body)
                await writer.drain()
        writer.close()

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()


def test_one_modbus_device_answering_garbage_does_not_end_the_cycle():
    """A short register block made decoding raise out of poll(): the devices after it went unread."""
    async def main():
        gw = await ShortAnswerGateway().start()
        devices = [ModbusDevice(u, f"TP01-MB-{u}", sdm630()) for u in (1, 2, 3)]
        poller = ModbusPoller(devices, host="127.0.0.1", port=gw.port, timeout=0.5)
        try:
            return await poller.poll(), await poller.poll(), devices
        finally:
            await poller.close()
            await gw.stop()

    first, second, devices = run(main())
    assert {r["sourceId"] for r in first.records} == {"TP01-MB-1", "TP01-MB-3"}
    (error,) = first.errors
    assert error[:2] == ("TP01-MB-2", "E7202") and "ValueError" in error[2]
    assert second.skipped == ["TP01-MB-2"] and devices[1].backoff.failures == 1


def test_one_misconfigured_dlt645_meter_does_not_end_the_cycle():
    """A meter whose data identifier is not hex made the request builder raise out of poll()."""
    async def main():
        sim = await dlt645_meter.start(addresses=["000102030425", "000102030426"])
        meters = [Dlt645Meter("000102030425", "TP01-DL-25", [MeterPoint("00010000", "CS010201", "kWh")]),
                  Dlt645Meter("000102030426", "TP01-DL-BAD", [MeterPoint("zz01", "CS010201", "kWh")]),
                  Dlt645Meter("000102030426", "TP01-DL-26", [MeterPoint("00010000", "CS010201", "kWh")])]
        poller = Dlt645Poller(meters, host="127.0.0.1", port=sim.port, timeout=0.5)
        try:
            return await poller.poll()
        finally:
            await poller.close()
            await sim.stop()

    result = run(main())
    assert sorted(r["sourceId"] for r in result.records) == ["TP01-DL-25", "TP01-DL-26"]
    assert [e[:2] for e in result.errors] == [("TP01-DL-BAD", "E7202")]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_platform_poll_that_fails_unexpectedly_ends_the_task_cleanly(park, caplog):
    """A register map that does not exist (a settings error) used to raise out of the Celery task."""
    from apps.ingestion.models import Reading
    from apps.ingestion.polling import poll_source
    from tests.conftest import add_source

    source = add_source(park, "TP01-MB-0009", ["CS010201"], protocol="modbus_tcp",
                        settings={"modbus": {"host": "127.0.0.1", "port": 1, "map": "no-such-meter"}})
    result = poll_source(source.pk)
    assert result.accepted == 0 and not result.rejected and not Reading.objects.exists()
    assert any("E7202" in r.getMessage() and "TP01-MB-0009" in r.getMessage() for r in caplog.records)
