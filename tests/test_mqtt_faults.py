"""Faults under a steady publish load, over real processes (issue #7, keep it fixed): a Mosquitto restart
and PostgreSQL unreachable for a few seconds, each with a real ``manage.py run_mqtt_ingest`` process.
Each ends with every reading the broker acknowledged to the publisher stored exactly once, and the
consumer serving again without a human (the same process, never restarted by the test)."""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from django.db import connection

from apps.ingestion.models import Reading
from tests.brokers import Mosquitto
from tests.tcp_proxy import TcpProxy
from tests.test_mqtt_channel import SID, topic, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

ROOT = Path(__file__).resolve().parent.parent
BASE = datetime(2026, 11, 1)


def database_url(host=None, port=None) -> str:
    s = connection.settings_dict
    host, port = host or s["HOST"] or "127.0.0.1", port or s["PORT"] or 5432
    return f"postgresql://{s['USER']}:{s['PASSWORD'] or ''}@{host}:{port}/{s['NAME']}"


class ConsumerProcess:
    """``manage.py run_mqtt_ingest`` as production runs it, its output in ``log``."""

    def __init__(self, url: str, log: Path, db_url: str, client_id: str):
        self.log = log
        out = open(log, "ab")  # noqa: SIM115 - handed to the child
        env = dict(os.environ, DATABASE_URL=db_url, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "manage.py", "run_mqtt_ingest", "--url", url, "--client-id",
                                      client_id, "--batch-wait", "0.02"], cwd=ROOT, env=env, stdout=out,
                                     stderr=subprocess.STDOUT)
        out.close()
        self.wait_connected(1)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_connected(self, times: int, timeout: float = 60) -> None:
        wait_for(lambda: self.text().count("MQTT connected") >= times or self.proc.poll() is not None,
                 timeout=timeout, what=f"the consumer to connect ({times})")
        assert self.proc.poll() is None, self.text()[-3000:]
        time.sleep(0.5)  # the SUBACK

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class SteadyPublisher(threading.Thread):
    """A device publishing ``per_message`` new readings (values 0, 1, 2 …, one second apart) ``rate``
    times a second at QoS 1, reconnecting by itself. ``acknowledged()``: the values of messages whose
    PUBACK came from the broker; only those must be stored."""

    def __init__(self, url: str, rate: float = 50, per_message: int = 4):
        super().__init__(daemon=True)
        host, port = url.removeprefix("mqtt://").split(":")
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="fault-device",
                                  protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_publish = self._on_publish
        self.puback: set[int] = set()  # message ids the broker acknowledged (PUBACK, reason < 0x80)
        self.client.connect(host, int(port), 60)
        self.client.loop_start()
        self.rate, self.per_message = rate, per_message
        self.sent: list[tuple[range, mqtt.MQTTMessageInfo]] = []
        self._halt = threading.Event()
        self.start()

    def _on_publish(self, _client, _userdata, mid, reason_code, _properties):
        if not reason_code.is_failure:
            self.puback.add(mid)

    def run(self):
        n = 0
        while not self._halt.wait(1 / self.rate):
            values = range(n, n + self.per_message)
            n += self.per_message
            payload = orjson.dumps([{"sourceId": SID, "timestamp": f"{BASE + timedelta(seconds=v):%Y-%m-%d %H:%M:%S}",
                                     "value": float(v)} for v in values])
            self.sent.append((values, self.client.publish(topic("data"), payload, qos=1)))

    def halt(self, settle: float = 30) -> None:
        """Stop publishing new readings; give what is in flight ``settle`` seconds to be acknowledged."""
        self._halt.set()
        self.join(10)
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline and len(self.puback) < len(self.sent):
            time.sleep(0.1)
        self.client.disconnect()
        self.client.loop_stop()

    def acknowledged(self) -> set[float]:
        acked = set(self.puback)
        return {float(v) for values, info in list(self.sent) if info.mid in acked for v in values}

    def published(self) -> set[float]:
        return {float(v) for values, _info in self.sent for v in values}


def stored_values() -> list[float]:
    return list(Reading.objects.filter(source__source_id=SID).values_list("value", flat=True))


def assert_every_acknowledged_reading_stored_once(pub: SteadyPublisher, consumer, timeout: float = 90) -> set[float]:
    acked = pub.acknowledged()
    try:
        wait_for(lambda: acked <= set(stored_values()), timeout=timeout,
                 what=f"the {len(acked)} acknowledged readings to be stored")
    except AssertionError:
        missing = sorted(acked - set(stored_values()))
        raise AssertionError(f"{len(missing)} of {len(acked)} acknowledged readings not stored: {missing[:40]}\n"
                             f"consumer log:\n{consumer.text()[-4000:]}") from None
    time.sleep(1.0)  # anything still redelivered would show up as a second row, or an error, now
    values = stored_values()
    assert len(values) == len(set(values)), "a reading was stored twice"
    assert acked <= set(values) <= pub.published()
    return acked


@pytest.fixture
def broker(tmp_path):
    with Mosquitto(tmp_path / "mosquitto") as b:
        yield b


def test_broker_restart_under_load_loses_no_acknowledged_reading(broker, meter, tmp_path):
    consumer = ConsumerProcess(broker.url, tmp_path / "consumer.log", database_url(), "fault-broker")
    pub = SteadyPublisher(broker.url)
    try:
        wait_for(lambda: len(stored_values()) >= 40, timeout=30, what="the first readings")
        before = len(pub.acknowledged())
        broker.restart()  # SIGTERM (sessions and queued messages persisted), the same port
        consumer.wait_connected(2, timeout=60)  # reconnected by itself
        wait_for(lambda: len(pub.acknowledged()) > before + 100, timeout=60, what="publishing to resume")
        pub.halt()
        acked = assert_every_acknowledged_reading_stored_once(pub, consumer)
        assert consumer.proc.poll() is None and len(acked) > before
        assert "MQTT connection lost" in consumer.text()
    finally:
        pub.halt(settle=0)
        consumer.stop()


def test_database_unreachable_under_load_retries_then_catches_up(broker, meter, tmp_path):
    s = connection.settings_dict
    with TcpProxy(s["HOST"] or "127.0.0.1", int(s["PORT"] or 5432)) as proxy:
        consumer = ConsumerProcess(broker.url, tmp_path / "consumer.log", database_url("127.0.0.1", proxy.port),
                                   "fault-db")
        pub = SteadyPublisher(broker.url)
        try:
            wait_for(lambda: len(stored_values()) >= 40, timeout=30, what="the first readings")
            proxy.cut()  # every connection of the consumer reset, new ones refused; PostgreSQL itself runs on
            time.sleep(0.5)  # a commit on its way may still land
            during = len(stored_values())
            time.sleep(4)
            assert len(stored_values()) == during  # nothing can be stored, so nothing may be acknowledged
            acked_during_outage = len(pub.acknowledged())
            proxy.restore()
            wait_for(lambda: len(stored_values()) > during, timeout=30, what="the consumer to catch up")
            pub.halt()
            acked = assert_every_acknowledged_reading_stored_once(pub, consumer)
            assert len(acked) >= acked_during_outage > during
            assert consumer.proc.poll() is None
            assert "the database is unavailable" in consumer.text()
        finally:
            pub.halt(settle=0)
            consumer.stop()
