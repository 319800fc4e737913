"""Modbus TCP and DL/T 645 pollers against their simulators over real sockets: coalesced reads, a dead
device backed off without stalling the bus, poll-start timestamps, and platform-side polls stored."""

import asyncio
import time

import pytest

from apps.ingestion.codecs import modbus as codec
from apps.ingestion.pollers.dlt645 import Dlt645Meter, Dlt645Poller, MeterPoint
from apps.ingestion.pollers.modbus import ModbusDevice, ModbusPoller
from apps.ingestion.simulators import dlt645_meter, modbus_meter
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
