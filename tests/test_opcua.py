"""OPC UA against the asyncua simulator over a real socket: read, subscribe, conversion latency ≤ 1 s
(R-5.2.1.3), and the records stored through ingest_readings."""

import asyncio
import statistics

import pytest

from apps.protocols.pollers.opcua import OpcuaPoint, OpcuaSubscription, read_points
from apps.protocols.simulators.opcua_server import OpcuaMeterServer
from carbonpark.embedded import free_port
from tests.asyncio_helpers import closing


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


async def _with_server(fn):
    server = OpcuaMeterServer(port=free_port(), meters=2, period=0.2)
    await server.start()
    try:
        return await fn(server)
    finally:
        await server.stop()


def test_read_points_gives_records_with_device_time():
    async def body(server):
        points = [OpcuaPoint(server.node_id("Meter1.Energy"), "CS010201", "kWh"),
                  OpcuaPoint(server.node_id("Meter2.Power"), "CS010201", "kW")]
        return await read_points(server.endpoint, "TP01-UA-0001", points)

    records = run(_with_server(body))
    assert [r["dataCode"] for r in records] == ["CS010201", "CS010201"]
    assert records[0]["value"] >= 1000.0 and records[0]["unit"] == "kWh"
    assert records[0]["timestamp"].endswith("+00:00") and records[0]["status"] == "N"


def test_subscription_delivers_changes_within_a_second():
    async def body(server):
        got = []
        points = [OpcuaPoint(server.node_id("Meter1.Energy"), "CS010201", "kWh")]
        async with OpcuaSubscription(server.endpoint, "TP01-UA-0001", points, got.extend, period_ms=100) as sub:
            await asyncio.sleep(2.0)
        return got, sub.handler.latencies

    records, latencies = run(_with_server(body))
    assert len(records) >= 4
    values = [r["value"] for r in records]
    assert values == sorted(values)  # energy only rises
    assert latencies and max(latencies) <= 1.0, latencies
    assert statistics.median(latencies) < 0.5


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_polled_values_are_stored_through_the_pipeline(park):
    from apps.ingestion.models import Reading
    from apps.ingestion.services import ingest_readings
    from tests.conftest import add_source

    add_source(park, "TP01-UA-0001", ["CS010201"], protocol="opcua")

    async def body(server):
        return await read_points(server.endpoint, "TP01-UA-0001",
                                 [OpcuaPoint(server.node_id("Meter1.Energy"), "CS010201", "kWh")])

    records = run(_with_server(body))
    result = ingest_readings(records, channel="poller", actor="opcua-test")
    assert result.accepted == 1 and Reading.objects.get().value == records[0]["value"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_platform_polled_source_gets_a_periodic_task_and_polls(park):
    import json

    from django_celery_beat.models import PeriodicTask

    from apps.ingestion.models import Reading
    from apps.ingestion.polling import poll_source
    from apps.sources.services import save_source
    from tests.conftest import add_source

    async def body(server):
        source = await asyncio.to_thread(closing,
            add_source, park, "TP01-UA-0002", ["CS010201"], protocol="opcua", expected_interval_s=120,
            settings={"opcua": {"endpoint": server.endpoint, "nodes": [
                {"node": server.node_id("Meter2.Energy"), "data_code": "CS010201", "unit": "kWh"}]},
                "poll": {"platform": True}})
        result = await asyncio.to_thread(closing, poll_source, source.pk)
        return source, result



    source, result = run(_with_server(body))
    assert result.accepted == 1 and Reading.objects.filter(source=source).count() == 1
    task = PeriodicTask.objects.get(name="poll TP01-UA-0002")
    assert task.enabled and task.task == "apps.ingestion.tasks.poll_source"
    assert json.loads(task.args) == [source.pk] and task.interval.every == 120
    save_source(actor="t", source=source, enabled=False)
    assert not PeriodicTask.objects.get(name="poll TP01-UA-0002").enabled


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_incremental_pull_fetches_the_history_since_the_last_stored_reading(park):
    """R-7.1.1.2: after a first poll, an incremental pull brings every historized change since, a full
    pull the whole window; nothing is stored twice."""
    from apps.ingestion.models import Reading
    from apps.ingestion.polling import poll_source
    from tests.conftest import add_source

    async def body(server):
        source = await asyncio.to_thread(closing, add_source, park, "TP01-UA-0003", ["CS010201"], protocol="opcua",
                                         settings={"opcua": {"endpoint": server.endpoint, "nodes": [
                                             {"node": server.node_id("Meter1.Energy"), "data_code": "CS010201"}]}})
        first = await asyncio.to_thread(closing, poll_source, source.pk, "incremental")
        await asyncio.sleep(1.3)  # the simulator changes Energy every 0.2 s: about 6 historized values
        second = await asyncio.to_thread(closing, poll_source, source.pk, "incremental")
        full = await asyncio.to_thread(closing, poll_source, source.pk, "full")
        return first, second, full

    first, second, full = run(_with_server(body))
    assert first.accepted >= 1
    assert second.accepted >= 4  # the changes between the two polls, not only the current value
    assert full.duplicates >= second.accepted  # the full window repeats what is stored: kept once
    values = list(Reading.objects.order_by("ts").values_list("value", flat=True))
    assert values == sorted(values) and len(values) == len(set(values))
