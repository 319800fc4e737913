"""The MQTT channel over a real Mosquitto: JSON, TLV and sealed payloads, bad input, Last Will, TLS,
downlink commands and key rotation, and a consumer killed with SIGKILL mid-stream."""

import base64
import threading
import time

import orjson
import pytest

from apps.catalog.models import DataItem
from apps.ingestion.channels.mqtt import MqttIngest
from apps.ingestion.models import Reading, Rejection
from apps.protocols.codecs import envelope, tlv
from apps.quality.models import Alarm
from apps.sources.models import Command, DeviceState, SourceKey, StateChange
from apps.sources.services import keys as key_services
from apps.sources.services import rotation
from apps.sources.services.commands import create_command
from tests.brokers import Mosquitto, TestClient, make_ca
from tests.conftest import add_source

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PARK = "TP01"
SID = "TP01-EM-0001"


def topic(kind, source=SID, park=PARK):
    return f"carbonpark/{park}/{source}/{kind}"


def reading(minute, value=1.0, **kw):
    return {"sourceId": SID, "dataCode": "CS010201", "timestamp": f"2026-11-23 10:{minute:02d}:00", "value": value,
            **kw}


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def broker(tmp_path):
    with Mosquitto(tmp_path / "mosquitto") as b:
        yield b


class RunningConsumer:
    def __init__(self, url, **kw):
        self.consumer = MqttIngest(url, batch_wait=0.02, **kw)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.consumer.connected.wait(10), "consumer did not connect"
        time.sleep(0.2)  # the SUBACK

    def _run(self):
        from django.db import connection

        try:
            self.consumer.run()
        finally:
            connection.close()

    def stop(self):
        self.consumer.stop()
        self.thread.join(10)


@pytest.fixture
def consumer(broker, meter):
    running = RunningConsumer(broker.url, client_id="test-consumer")
    yield running
    running.stop()


def device(broker, name="dev", **kw):
    return TestClient.connect(broker.url, name, protocol=5, **kw)


def test_json_record_and_array_are_stored(broker, consumer):
    with device(broker) as dev:
        dev.publish(topic("data"), orjson.dumps(reading(0, 5.0)))
        dev.publish(topic("data"), orjson.dumps([reading(5, 6.0), reading(10, 7.5, unit="MWh")]))
    wait_for(lambda: Reading.objects.count() == 3, what="3 readings")
    assert sorted(Reading.objects.values_list("value", flat=True)) == [5.0, 6.0, 7500.0]
    assert set(Reading.objects.values_list("channel", flat=True)) == {"mqtt"}


def test_source_id_may_be_left_to_the_topic(broker, consumer):
    with device(broker) as dev:
        rec = reading(0)
        del rec["sourceId"]
        dev.publish(topic("data"), orjson.dumps(rec))
    wait_for(lambda: Reading.objects.count() == 1, what="the reading")


def test_tlv_frame_is_stored(broker, consumer):
    frame = tlv.encode_frame([
        tlv.TlvRecord(SID, "CS010201", 1763863500000 + i * 60000, value=float(i), unit="kWh", status="N")
        for i in range(3)])
    with device(broker) as dev:
        dev.publish(topic("tlv"), frame)
    wait_for(lambda: Reading.objects.count() == 3, what="3 TLV readings")
    assert sorted(Reading.objects.values_list("value", flat=True)) == [0.0, 1.0, 2.0]


def test_sealed_json_and_tlv_are_opened_and_stored(broker, consumer, meter):
    key, material_b64 = key_services.provision_key(actor="t", source=meter)
    material = base64.b64decode(material_b64)
    sealed_json = envelope.seal(orjson.dumps([reading(0, 1.0)]), key=material, key_id=key.key_id,
                                content_type=envelope.CONTENT_JSON, source_id=SID)
    sealed_tlv = envelope.seal(tlv.encode_frame([tlv.TlvRecord(SID, "CS010201", 1763863800000, value=2.0)]),
                               key=material, key_id=key.key_id, content_type=envelope.CONTENT_TLV, source_id=SID)
    with device(broker) as dev:
        dev.publish(topic("data"), sealed_json)
        dev.publish(topic("tlv"), sealed_tlv)
    wait_for(lambda: Reading.objects.count() == 2, what="2 sealed readings")


def test_bad_payloads_are_rejected_with_codes_and_alarm_and_the_rest_stands(broker, consumer, park, meter):
    other = add_source(park, "TP01-EM-0002", ["CS010201"])
    key, material_b64 = key_services.provision_key(actor="t", source=meter)
    wrong_key = envelope.seal(orjson.dumps(reading(1)), key=b"\x07" * 32, key_id=key.key_id,
                              content_type=envelope.CONTENT_JSON, source_id=SID)
    good = tlv.encode_record(tlv.TlvRecord(SID, "CS010201", 1763863500000, value=1.0))
    bad_crc = bytearray(tlv.encode_record(tlv.TlvRecord(SID, "CS010201", 1763863560000, value=9.0)))
    bad_crc[-1] ^= 0xFF
    truncated = tlv.encode_record(tlv.TlvRecord(SID, "CS010201", 1763863620000, value=3.0))[:-7]
    with device(broker) as dev:
        dev.publish(topic("data"), wrong_key)                                   # E5103
        dev.publish(topic("tlv"), good + bytes(bad_crc))                        # 1 stored, E5001
        dev.publish(topic("tlv"), truncated)                                    # E5002
        dev.publish(topic("data"), b"[" + b" " * (1024 * 1024 + 10) + b"]")    # E5201
        dev.publish(topic("data", source="NOPE-1"), orjson.dumps({**reading(2), "sourceId": "NOPE-1"}))  # E2003
        dev.publish(topic("data"), orjson.dumps(reading(3, sourceId=other.source_id)))  # E5202
        dev.publish(topic("data"), orjson.dumps(reading(30, 30.0)))             # stored
    wait_for(lambda: Rejection.objects.count() >= 6 and Reading.objects.count() >= 2, what="the rejections")
    time.sleep(0.3)
    assert sorted(Rejection.objects.values_list("code", flat=True)) == sorted(
        ["E5103", "E5001", "E5002", "E5201", "E2003", "E5202"])
    assert sorted(Reading.objects.values_list("value", flat=True)) == [1.0, 30.0]
    assert not Reading.objects.filter(source=other).exists()
    alarm_codes = set(Alarm.objects.values_list("code", flat=True))
    assert {"E5103", "E5001", "E5002", "E5201", "E2003", "E5202"} <= alarm_codes


def test_plaintext_refused_when_the_source_requires_encryption(broker, consumer, meter):
    from apps.sources.services import save_source

    save_source(actor="t", source=meter, encryption_required=True)
    with device(broker) as dev:
        dev.publish(topic("data"), orjson.dumps(reading(0)))
    wait_for(lambda: Rejection.objects.filter(code="E5104").exists(), what="E5104")
    assert Reading.objects.count() == 0


def test_last_will_marks_the_source_offline_and_alarms_within_10_s(broker, consumer, meter):
    dev = device(broker, "dev-lwt", keepalive=60, will=(topic("status"), b'{"state": "offline"}', 1, True))
    dev.publish(topic("status"), b'{"state": "online"}', retain=True)
    wait_for(lambda: DeviceState.objects.filter(source=meter, state="online").exists(), what="online")
    t0 = time.monotonic()
    dev.drop()  # vanish without DISCONNECT: the broker publishes the Will
    seen = wait_for(lambda: Alarm.objects.filter(source=meter, code="E6001", state="open").exists(), timeout=10,
                    what="the offline alarm")
    assert seen - t0 < 10
    assert DeviceState.objects.get(source=meter).state == "offline"
    assert list(StateChange.objects.filter(source=meter).order_by("at").values_list("state", flat=True)) == [
        "online", "offline"]
    with device(broker, "dev-back") as back:
        back.publish(topic("status"), b'{"state": "online"}', retain=True)
    wait_for(lambda: not Alarm.objects.filter(source=meter, code="E6001", state="open").exists(),
             what="the alarm closing")


def test_mqtt_over_tls_with_a_ca_made_in_the_test(tmp_path, meter):
    ca = make_ca(tmp_path / "ca")
    with Mosquitto(tmp_path / "tls", tls_ca=ca) as b:
        running = RunningConsumer(b.tls_url, client_id="tls-consumer", ca_file=str(b.ca_file))
        try:
            with TestClient.connect(b.tls_url, "tls-dev", ca_file=b.ca_file) as dev:
                dev.publish(topic("data"), orjson.dumps(reading(0, 42.0)))
            wait_for(lambda: Reading.objects.filter(value=42.0).exists(), what="the TLS reading")
        finally:
            running.stop()


def test_set_interval_command_published_and_acknowledged(broker, consumer, meter):
    with device(broker, "dev-cmd") as dev:
        dev.subscribe(topic("cmd"))
        cmd = create_command(actor="t", source=meter, type="set_interval", params={"seconds": 900})
        msg = dev.expect(timeout=5)
        body = orjson.loads(msg.payload)
        assert body["cmdId"] == cmd.cmd_id and body["type"] == "set_interval" and body["params"] == {"seconds": 900}
        wait_for(lambda: Command.objects.get(pk=cmd.pk).state == "delivered", what="delivered")
        dev.publish(topic("cmd/ack"), orjson.dumps({"cmdId": cmd.cmd_id, "result": "ok", "message": "done"}))
    wait_for(lambda: Command.objects.get(pk=cmd.pk).state == "acknowledged", what="acknowledged")
    meter.refresh_from_db()
    assert meter.expected_interval_s == 900


def test_key_rotation_switches_only_after_the_device_acknowledges(broker, consumer, meter):
    old, old_b64 = key_services.provision_key(actor="t", source=meter)
    with device(broker, "dev-key") as dev:
        dev.subscribe(topic("cmd"))
        cmd = rotation.rotate_key(actor="t", source=meter)
        body = orjson.loads(dev.expect(timeout=5).payload)
        assert body["type"] == "rotate_key"
        new_id, new_key = body["params"]["keyId"], base64.b64decode(body["params"]["key"])
        assert SourceKey.objects.get(key_id=old.key_id).state == "active"
        assert "key" not in Command.objects.get(pk=cmd.pk).params  # never stored in plain text
        dev.publish(topic("cmd/ack"), orjson.dumps({"cmdId": body["cmdId"], "result": "ok"}))
        wait_for(lambda: SourceKey.objects.get(key_id=new_id).state == "active", what="the new key active")
        retired = SourceKey.objects.get(key_id=old.key_id)
        assert retired.state == "retired"
        assert (retired.decrypt_until - retired.retired_at).total_seconds() == 96 * 3600
        for minute, (kid, material) in enumerate([(new_id, new_key), (old.key_id, base64.b64decode(old_b64))]):
            dev.publish(topic("data"), envelope.seal(orjson.dumps(reading(minute)), key=material, key_id=kid,
                                                     content_type=envelope.CONTENT_JSON, source_id=SID))
    wait_for(lambda: Reading.objects.count() == 2, what="readings under the new and the retired key")


def test_two_consumers_split_a_shared_subscription(broker, meter):
    a = RunningConsumer(broker.url, client_id="share-a", shared=True)
    b = RunningConsumer(broker.url, client_id="share-b", shared=True)
    try:
        with device(broker, "dev-share") as dev:
            for i in range(60):
                dev.publish(topic("data"), orjson.dumps(reading(0, float(i)) | {
                    "timestamp": f"2026-11-23 {i // 60 + 10:02d}:{i % 60:02d}:00"}))
        wait_for(lambda: Reading.objects.count() == 60, what="60 readings")
        from apps.ingestion.models import IngestBatch

        actors = set(IngestBatch.objects.values_list("actor_label", flat=True))
        assert actors == {"mqtt:share-a", "mqtt:share-b"}
    finally:
        a.stop()
        b.stop()


def test_mqtt_v311_consumer_on_the_embedded_amqtt_broker(meter):
    from tests.brokers import AmqttBroker

    with AmqttBroker() as b:
        running = RunningConsumer(b.url, client_id="v311", protocol=4)
        try:
            with TestClient.connect(b.url, "dev311", protocol=4) as dev:
                dev.publish(topic("data"), orjson.dumps(reading(0, 3.0)))
            wait_for(lambda: Reading.objects.filter(value=3.0).exists(), what="the reading via amqtt")
        finally:
            running.stop()


def test_http_accepts_a_sealed_body(meter, api):
    key, material_b64 = key_services.provision_key(actor="t", source=meter)
    body = envelope.seal(orjson.dumps([reading(0, 8.0)]), key=base64.b64decode(material_b64), key_id=key.key_id,
                         content_type=envelope.CONTENT_JSON, source_id=SID)
    r = api.post("/api/v1/readings", data=body, content_type="application/octet-stream")
    assert r.status_code == 200, r.content
    assert r.json()["accepted"] == 1
    tampered = bytearray(body)
    tampered[-1] ^= 1
    r = api.post("/api/v1/readings", data=bytes(tampered), content_type="application/octet-stream")
    assert r.status_code == 400 and r.json()["rejected"][0]["code"] == "E5103"


def test_http_plaintext_refused_for_an_encryption_required_source(meter, api):
    from apps.sources.services import save_source

    save_source(actor="t", source=meter, encryption_required=True)
    r = api.post("/api/v1/readings", data=orjson.dumps(reading(0)), content_type="application/json")
    assert r.status_code == 400 and r.json()["rejected"][0]["code"] == "E5104"


def test_data_items_exist():
    assert DataItem.objects.filter(code="CS010201").exists()


def _database_url_of_this_test() -> str:
    from django.db import connection

    s = connection.settings_dict
    host = s["HOST"] or ""
    if host.startswith("/"):
        return f"postgresql://{s['USER']}@/{s['NAME']}?host={host}"
    return f"postgresql://{s['USER']}:{s['PASSWORD'] or ''}@{host}:{s['PORT'] or 5432}/{s['NAME']}"


def _start_consumer_process(broker, log_path, client_id):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, DATABASE_URL=_database_url_of_this_test(), PYTHONUNBUFFERED="1")
    root = Path(__file__).resolve().parent.parent
    out = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([sys.executable, "manage.py", "run_mqtt_ingest", "--url", broker.url, "--client-id",
                             client_id, "--batch-wait", "0.02"], cwd=root, env=env, stdout=out,
                            stderr=subprocess.STDOUT)
    wait_for(lambda: log_path.read_text(errors="replace").count("MQTT connected") >= 1 + _start_consumer_process
             .starts.get(str(log_path), 0), timeout=30, what="the consumer process to connect")
    _start_consumer_process.starts[str(log_path)] = _start_consumer_process.starts.get(str(log_path), 0) + 1
    time.sleep(0.5)
    return proc


_start_consumer_process.starts = {}


def test_consumer_killed_with_sigkill_mid_stream_stores_every_reading_exactly_once(broker, meter, tmp_path):
    """Acknowledged only after commit: what the kill interrupted is redelivered and de-duplicated."""
    import signal

    from apps.ingestion.models import IngestBatch

    log_path = tmp_path / "consumer.log"
    proc = _start_consumer_process(broker, log_path, "kill-test")
    total_messages, per_message = 400, 10
    try:
        with device(broker, "dev-stream") as dev:
            for m in range(total_messages):
                batch = [{"sourceId": SID, "timestamp": f"2026-11-{1 + (m * per_message + i) // 1440:02d} "
                                                        f"{(m * per_message + i) // 60 % 24:02d}:"
                                                        f"{(m * per_message + i) % 60:02d}:00",
                          "value": float(m * per_message + i)} for i in range(per_message)]
                dev.publish(topic("data"), orjson.dumps(batch), wait=False)
                if m == total_messages // 3:
                    wait_for(lambda: Reading.objects.count() > 0, what="the first readings")
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(10)
            dev.publish(topic("data"), orjson.dumps(reading(0, -1.0) | {"timestamp": "2026-10-31 00:00:00"}))
        stored_at_kill = Reading.objects.count()
        assert 0 < stored_at_kill < total_messages * per_message
        proc = _start_consumer_process(broker, log_path, "kill-test")
        expected = total_messages * per_message
        wait_for(lambda: Reading.objects.count() == expected, timeout=60, what=f"{expected} readings")
        time.sleep(1.0)
        assert Reading.objects.count() == expected
        assert Reading.objects.values("source", "data_item", "ts").distinct().count() == expected
        assert set(Reading.objects.values_list("value", flat=True)) == {float(v) for v in range(expected)}
        # The last message (value -1, rule E3001) proves the stream was consumed to its end.
        wait_for(lambda: Rejection.objects.filter(code="E3001").exists(), what="the last message")
        assert IngestBatch.objects.filter(channel="mqtt").count() >= 2
    finally:
        proc.kill()
        proc.wait(10)
