"""One poison message never stops the MQTT stream (issue #7 item 1, house rule 8): through a real Mosquitto
to a real consumer, a payload with a NUL byte, one nested 5 000 levels deep, a command ack PostgreSQL
refuses and a record that breaks normalisation each become a rejection with their exact bytes, are
acknowledged, and the good messages before and after them are stored."""

import time

import orjson
import pytest

from apps.ingestion.channels.payloads import MAX_JSON_DEPTH, TooDeep, loads_json
from apps.ingestion.models import IngestBatch, Reading, Rejection
from apps.quality.models import Alarm
from tests.brokers import Mosquitto
from tests.conftest import add_source
from tests.test_mqtt_channel import SID, RunningConsumer, device, reading, topic, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def broker(tmp_path):
    with Mosquitto(tmp_path / "mosquitto") as b:
        yield b


@pytest.fixture
def consumer(broker, meter):
    running = RunningConsumer(broker.url, client_id="poison-consumer")
    yield running
    running.stop()

NUL = b"x\x00y"
DEEP = b"[" * 5000 + b"]" * 5000


def values():
    return sorted(Reading.objects.values_list("value", flat=True))


def settled(count_fn, quiet=1.5, timeout=10.0):
    """The value of ``count_fn`` once it stopped changing for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = count_fn(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = count_fn()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    raise AssertionError(f"{count_fn} still changing after {timeout} s")


def publish_then_time_to_store(dev, value, minute):
    """Publish one good reading; seconds until it is stored (the stream moved on)."""
    t0 = time.monotonic()
    dev.publish(topic("data"), orjson.dumps(reading(minute, value)))
    return wait_for(lambda: Reading.objects.filter(value=value).exists(), timeout=15,
                    what=f"the reading {value} published after the poison") - t0


def test_nul_and_deeply_nested_payloads_are_kept_exactly_and_the_stream_moves_on(broker, consumer):
    with device(broker, "dev-poison") as dev:
        dev.publish(topic("data"), orjson.dumps(reading(0, 1.0)), wait=False)
        dev.publish(topic("data"), NUL, wait=False)
        dev.publish(topic("data"), orjson.dumps(reading(1, 2.0)), wait=False)
        dev.publish(topic("data"), DEEP, wait=False)
        dev.publish(topic("data"), orjson.dumps(reading(2, 3.0)))
        wait_for(lambda: Reading.objects.count() == 3, what="the good readings around the poison")
        took = publish_then_time_to_store(dev, 4.0, 3)
    assert took < 5.0, f"a good message after the poison took {took:.1f} s"  # ~0.1 s; generous for a busy box
    assert values() == [1.0, 2.0, 3.0, 4.0]
    # Not redelivered: each poison message is one rejection, and stays one.
    assert settled(Rejection.objects.count) == 2
    nul = Rejection.objects.get(code="E1001")
    assert bytes(nul.raw_bytes) == NUL and nul.raw == "x\\u0000y"
    deep = Rejection.objects.get(code="E5205")
    assert bytes(deep.raw_bytes) == DEEP and str(MAX_JSON_DEPTH) in deep.message_en
    assert {nul.source_ref, deep.source_ref} == {SID}
    assert {"E1001", "E5205"} <= set(Alarm.objects.values_list("code", flat=True))


def test_messages_that_fail_inside_the_pipeline_are_isolated_as_e5204(broker, consumer, meter):
    """A command ack whose cmdId PostgreSQL refuses (NUL: DataError) makes its whole batch fail; the consumer
    finds it by splitting the batch, keeps it as E5204 and stores the rest. A record whose timestamp cannot be
    moved to UTC (year 1 in UTC+8, once an OverflowError in the same batch) is refused by normalisation (E2021)."""
    bad_ack = b'{"cmdId": "a\\u0000b", "result": "ok"}'
    year_one = orjson.dumps(reading(0, 99.0, timestamp="0001-01-01 00:00:00"))
    with device(broker, "dev-poison2") as dev:
        for i in range(5):
            dev.publish(topic("data"), orjson.dumps(reading(10 + i, 10.0 + i)), wait=False)
        dev.publish(topic("cmd/ack"), bad_ack, wait=False)
        dev.publish(topic("data"), year_one, wait=False)
        for i in range(5):
            dev.publish(topic("data"), orjson.dumps(reading(20 + i, 20.0 + i)), wait=False)
        dev.publish(topic("data"), orjson.dumps(reading(30, 30.0)))
        wait_for(lambda: Reading.objects.count() == 11, timeout=15, what="the 11 good readings")
        took = publish_then_time_to_store(dev, 40.0, 40)
    assert took < 5.0
    assert values() == [*(10.0 + i for i in range(5)), *(20.0 + i for i in range(5)), 30.0, 40.0]
    assert settled(Rejection.objects.count) == 2
    ack = Rejection.objects.get(code="E5204", raw__contains="cmdId")
    assert ack.raw.encode() == bad_ack and ack.raw_bytes is None  # the text is exact: no bytes needed
    assert "DataError" in ack.message_en and ack.source_ref == SID
    year = Rejection.objects.exclude(pk=ack.pk).get()
    assert year.code == "E2021" and "0001-01-01 00:00:00" in year.raw  # out of the storable range
    assert Alarm.objects.filter(code="E5204", source=meter).exists()


def test_mismatched_source_is_filed_under_the_topics_source(broker, consumer, park, meter):
    """E5202: the rejection and its alarm belong to the sender (the topic's source), not to the source
    the record names, which did nothing wrong (issue #7 item 11)."""
    other = add_source(park, "TP01-EM-0002", ["CS010201"])
    with device(broker, "dev-e5202") as dev:
        dev.publish(topic("data"), orjson.dumps(reading(3, sourceId=other.source_id)))
    wait_for(lambda: Rejection.objects.filter(code="E5202").exists(), what="E5202")
    rej = Rejection.objects.get(code="E5202")
    assert rej.source_ref == SID and rej.park_id == meter.park_id
    alarm = Alarm.objects.get(code="E5202")
    assert alarm.source_id == meter.pk
    assert other.source_id in alarm.message_en  # the message still names the source the record claimed
    assert not Alarm.objects.filter(source=other).exists()
    assert IngestBatch.objects.filter(channel="mqtt").exists()


def test_json_nesting_is_bounded_without_recursion():
    flat = orjson.dumps([reading(i % 60) for i in range(2000)])
    assert len(loads_json(flat)) == 2000
    deep_value = orjson.dumps({"value": 1}).replace(b"1", b"[" * 900 + b"1" + b"]" * 900)
    for body in (DEEP, deep_value, b"[" * 100_000, b'{"a":' * 40 + b"1" + b"}" * 40):
        with pytest.raises(TooDeep):
            loads_json(body)
    nested_ok = b'{"a":' * (MAX_JSON_DEPTH - 1) + b"1" + b"}" * (MAX_JSON_DEPTH - 1)
    assert loads_json(nested_ok)
    with pytest.raises(ValueError):
        loads_json(b"x\x00y")
