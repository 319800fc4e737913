"""An edge gateway against the production broker configuration and a real consumer (issue 7, items 12-13).

Mosquitto runs deploy/mosquitto/mosquitto.conf (TLS, password file) with the ACL that ``manage.py
mosquitto_acl`` generates from the registry; the platform's MqttIngest consumer logs in as
carbonpark-platform and stores into PostgreSQL; the agent (apps.edge) logs in with the gateway's own
credentials, from a 0600 password file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.edge.agent import Agent
from apps.edge.clock import ManualClock
from apps.edge.config import parse
from apps.edge.publisher import ReconnectPolicy
from apps.ingestion.models import Reading
from apps.quality.models import Alarm
from apps.sources import acl
from apps.sources.models import DataSource, DeviceState
from apps.sources.services.health import apply_status_report
from apps.sources.services.state import flag_silent_sources, touch
from tests.brokers import Mosquitto, free_port, make_ca, production_conf_text
from tests.conftest import add_source
from tests.test_edge_agent import InThread, toml_text, wait_until
from tests.test_mqtt_channel import RunningConsumer

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

REPO = Path(__file__).resolve().parent.parent
PARK = "TP01"
GATEWAY = "TP01-GW-01"
TZ = ZoneInfo("Asia/Shanghai")
T0 = int(dt.datetime(2026, 11, 23, 0, 0, tzinfo=TZ).timestamp() * 1000)
FIVE_MIN = 300_000
USERS = {"carbonpark-platform": "platform-secret", GATEWAY: "gateway-secret"}


@pytest.fixture
def registry(park):
    gateway = add_source(park, GATEWAY, [], kind="gateway", protocol="mqtt_json")
    em1 = add_source(park, "TP01-EM-0001", ["CS010201"], protocol="mqtt_json", gateway=gateway)
    em2 = add_source(park, "TP01-EM-0002", ["CS010201"], protocol="mqtt_json", gateway=gateway)
    loose = add_source(park, "TP01-EM-0099", ["CS010201"], protocol="mqtt_json")  # behind no gateway
    return gateway, em1, em2, loose


class ProductionBroker:
    """deploy/mosquitto/mosquitto.conf on free ports, with the ACL generated from the registry."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "broker"
        self.acl_path = tmp_path / "acl"
        self.ca = make_ca(tmp_path / "ca")
        self.write_acl()
        text = production_conf_text(self.dir, self.ca, USERS, acl_path=self.acl_path)
        self.mosquitto = Mosquitto(self.dir, conf_text=text, tls_port=True)
        self.mosquitto.log_path = self.dir / "mosquitto.log"

    def write_acl(self) -> None:
        call_command("mosquitto_acl", "--write", str(self.acl_path))
        # production_conf_text copies the ACL into the broker's folder; later copies follow reloads
        if (self.dir / "acl").exists():
            (self.dir / "acl").write_text(self.acl_path.read_text())

    @property
    def url(self) -> str:
        return self.mosquitto.tls_url

    def consumer_url(self) -> str:
        return f"mqtts://carbonpark-platform:{USERS['carbonpark-platform']}@127.0.0.1:{self.mosquitto.tls_port}"


@pytest.fixture
def production(tmp_path, registry):
    broker = ProductionBroker(tmp_path)
    with broker.mosquitto:
        consumer = RunningConsumer(broker.consumer_url(), client_id="ingest-1", ca_file=str(broker.ca.cert_file))
        try:
            yield broker
        finally:
            consumer.stop()


def agent_config(tmp_path: Path, broker: ProductionBroker, devices: list[dict]) -> Path:
    secret = tmp_path / "mqtt-password"
    secret.write_text(USERS[GATEWAY] + "\n")
    secret.chmod(0o600)
    data = {"platform": {"mqtt_url": broker.url, "park": PARK, "client_id": GATEWAY, "keepalive": 60,
                         "ca_file": str(broker.ca.cert_file), "password_file": str(secret)},
            "buffer": {"path": str(tmp_path / "buffer.sqlite3")},
            "device": devices}
    path = tmp_path / "edge.toml"
    path.write_text(toml_text(data))
    return path


def fake(source: str) -> dict:
    return {"source_id": source, "driver": "fake", "interval_s": 300,
            "points": [{"data_code": "CS010201", "unit": "kWh", "start": 100.0, "step": 1.0}]}


def stored(source: str) -> int:
    return Reading.objects.filter(source__source_id=source).count()


def open_alarm(code: str, source: str) -> Alarm | None:
    return Alarm.objects.filter(code=code, source__source_id=source, state=Alarm.State.OPEN).first()


# --- the ACL -----------------------------------------------------------------------------------------------------

def test_acl_grants_each_gateway_the_topics_of_its_registered_sources(registry, tmp_path, park):
    gateway, em1, em2, loose = registry
    add_source(park, "TP01-EM-0003", ["CS010201"], gateway=gateway, enabled=False)
    path = tmp_path / "acl"
    path.write_text("old")
    path.chmod(0o640)
    call_command("mosquitto_acl", "--write", str(path))
    text = path.read_text()
    assert path.stat().st_mode & 0o777 == 0o640  # the existing file's mode is kept
    base = (REPO / "deploy" / "mosquitto" / "acl").read_text()
    assert text.startswith(base.rstrip("\n"))  # the hand-written part is kept as it is
    generated = text.split(acl.MARK, 1)[1]
    assert f"user {GATEWAY}\n" in generated
    for source in ("TP01-EM-0001", "TP01-EM-0002"):
        for leaf in ("data", "tlv", "status", "cmd/ack"):
            assert f"topic write carbonpark/TP01/{source}/{leaf}\n" in generated
        assert f"topic read carbonpark/TP01/{source}/cmd\n" in generated
    assert "TP01-EM-0099" not in generated and "TP01-EM-0003" not in generated  # not behind it; disabled
    call_command("mosquitto_acl", "--write", str(path), "--base", str(path))  # regenerating replaces, not appends
    assert path.read_text() == text


def test_a_gateway_must_be_a_gateway_of_the_same_park(registry, other_park):
    from django.core.exceptions import ValidationError

    gateway, em1, _em2, _loose = registry
    with pytest.raises(ValidationError) as not_gateway:
        add_source(em1.park, "TP01-EM-0010", ["CS010201"], gateway=em1)
    assert "gateway" in not_gateway.value.message_dict  # only sources of kind gateway may be chosen
    with pytest.raises(ValidationError) as elsewhere:
        add_source(other_park, "TP02-EM-0001", ["CS010201"], gateway=gateway)
    assert GATEWAY in elsewhere.value.message_dict["gateway"][0]
    with pytest.raises(ValidationError) as nested:
        add_source(em1.park, "TP01-GW-02", [], kind="gateway", gateway=gateway)
    assert "gateway" in nested.value.message_dict


# --- item 12: end to end under the production broker configuration ----------------------------------------------

def test_gateway_data_stored_under_the_production_acl_and_a_refused_source_stays_buffered(
        production, tmp_path, caplog, park):
    conf = agent_config(tmp_path, production, [fake("TP01-EM-0001"), fake("TP01-EM-0099")])
    cfg = parse(tomllib.loads(conf.read_text()), tmp_path)
    clock = ManualClock(T0 - 2000)
    agent = Agent(cfg, clock=clock, policy=ReconnectPolicy(fast_delay_s=0.2, fast_attempts=10**6))
    agent.status_min_gap_s = 0.1
    with caplog.at_level(logging.INFO, logger="apps.edge"), InThread(agent) as run:
        wait_until(lambda: agent.online, 15, "the gateway logged in over TLS with its own credentials")
        run.advance(clock, 3000, 2)
        run.advance(clock, FIVE_MIN, 4)
        wait_until(lambda: stored("TP01-EM-0001") == 2, 20, "the registered meter's readings stored")
        wait_until(lambda: "TP01-EM-0099" in agent.refused, 20, "the refusal")
        assert agent.refused["TP01-EM-0099"]["reasonCode"] == 135  # PUBACK "Not authorized", not success
        wait_until(lambda: run.call(agent.buffer.pending_count, "TP01-EM-0099") == 2, 10, "both polls buffered")
        assert agent.refused["TP01-EM-0099"]["reasonCode"] == 135
        assert run.call(agent.buffer.pending_count, "TP01-EM-0001") == 0
        assert stored("TP01-EM-0099") == 0
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any("refused" in m and "of TP01-EM-0099" in m and "mosquitto_acl" in m for m in errors), errors
        # no flapping: Mosquitto drops a connection after a denied publish, so the agent stops publishing for
        # the refused source (status and data held back) and stays connected
        run.advance(clock, FIVE_MIN, 6)
        wait_until(lambda: run.call(agent.buffer.pending_count, "TP01-EM-0099") == 3, 10, "the third poll held")
        wait_until(lambda: stored("TP01-EM-0001") == 3, 20, "the registered meter keeps flowing")
        time.sleep(1.0)  # with a 0.2 s reconnect delay, a flapping agent would log several more logins here
        logins = sum("connected to" in r.getMessage() for r in caplog.records)
        assert agent.online and logins <= 2, f"{logins} logins: the connection flaps"
        # the gateway's status tells the platform, which alarms on the gateway
        wait_until(lambda: open_alarm("E6005", GATEWAY) is not None, 20, "the E6005 alarm")
        assert "TP01-EM-0099" in open_alarm("E6005", GATEWAY).message_en

        # the operator registers the meter behind the gateway, regenerates the ACL and reloads both
        loose = DataSource.objects.get(source_id="TP01-EM-0099")
        loose.gateway = DataSource.objects.get(source_id=GATEWAY)
        loose.save()
        production.write_acl()
        production.mosquitto.reload()
        agent.reload()
        wait_until(lambda: stored("TP01-EM-0099") == 3, 20, "the held readings stored after the ACL fix")
        wait_until(lambda: run.call(agent.buffer.pending_count) == 0, 10, "everything acknowledged")
        assert agent.refused == {}
        assert agent.stats["refused"] == 0  # so far only the status was refused; the data was held back
        wait_until(lambda: DeviceState.objects.filter(source__source_id="TP01-EM-0099", state="online").exists(),
                   10, "its status published once accepted")
        wait_until(lambda: open_alarm("E6005", GATEWAY) is None, 20, "the E6005 alarm closing")

        # taken off the gateway while connected: now the data publish itself is refused (PUBACK 135)
        loose.gateway = None
        loose.save()
        production.write_acl()
        production.mosquitto.reload()
        time.sleep(0.5)  # Mosquitto handles SIGHUP between network events
        refused_before = agent.stats["refused"]
        run.advance(clock, FIVE_MIN, 8)
        wait_until(lambda: agent.stats["refused"] > refused_before, 20, "the refused data PUBACK")
        assert agent.refused["TP01-EM-0099"]["reasonCode"] == 135
        assert run.call(agent.buffer.pending_count, "TP01-EM-0099") == 1 and stored("TP01-EM-0099") == 3
        wait_until(lambda: stored("TP01-EM-0001") == 4, 20, "the registered meter keeps flowing")
        wait_until(lambda: open_alarm("E6005", GATEWAY) is not None, 20, "the E6005 alarm again")

    # the status command reads the buffer the agent left
    out = subprocess.run([sys.executable, "-m", "apps.edge", "status", "--config", str(conf), "--json"], cwd=REPO,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["pending"] == 1 and list(report["refused"]) == ["TP01-EM-0099"]
    assert report["refused"]["TP01-EM-0099"]["reasonCode"] == 135
    assert report["devices"]["TP01-EM-0099"]["lastAcked"].startswith("2026-11-23T00:10:01")
    assert report["devices"]["TP01-EM-0099"]["pending"] == 1
    assert report["devices"]["TP01-EM-0001"]["failures"] == 0
    text = subprocess.run([sys.executable, "-m", "apps.edge", "status", "--config", str(conf)], cwd=REPO,
                          capture_output=True, text=True, timeout=30).stdout
    assert "pending     1 readings" in text and "REFUSED by the broker: TP01-EM-0099 (reason code 135" in text
    assert any(line.startswith("TP01-EM-0001 ") for line in text.splitlines())


# --- item 13: device health upstream, alarms ---------------------------------------------------------------------

def test_device_failures_reach_the_platform_and_alarm(production, tmp_path, caplog):
    dead_port = free_port()  # nothing listens: every read of this Modbus device fails
    dead = {"source_id": "TP01-EM-0002", "driver": "modbus_tcp", "interval_s": 300, "host": "127.0.0.1",
            "port": dead_port, "unit_id": 7, "timeout_s": 0.3,
            "points": [{"data_code": "CS010201", "unit": "kWh", "address": 0, "type": "float32"}]}
    conf = agent_config(tmp_path, production, [fake("TP01-EM-0001"), dead])
    cfg = parse(tomllib.loads(conf.read_text()), tmp_path)
    clock = ManualClock(T0 - 2000)
    agent = Agent(cfg, clock=clock, policy=ReconnectPolicy(fast_delay_s=0.2, fast_attempts=10**6))
    agent.status_min_gap_s = 0.1
    with caplog.at_level(logging.INFO, logger="apps.edge"), InThread(agent) as run:
        wait_until(lambda: agent.online, 15, "online")
        polls = 0
        for _ in range(3):
            polls += 2
            run.advance(clock, FIVE_MIN if polls > 2 else 3000, polls)
        health = agent.health["TP01-EM-0002"]
        assert health.failures == 3 and health.last_error == "E7201"
        assert f"127.0.0.1:{dead_port} unit 7" in health.message  # names the device, its bus and unit id
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("poll ")]  # one per poll
        assert sum(m.startswith("poll TP01-EM-0001 at ") and "1 readings buffered" in m for m in lines) == 3
        assert sum(m.startswith("poll TP01-EM-0002 failed (") for m in lines) == 3
        assert f"failed (3 in a row, E7201): TP01-EM-0002 (modbus_tcp 127.0.0.1:{dead_port} unit 7)" in lines[-1]

        def platform_state():
            return DeviceState.objects.filter(source__source_id="TP01-EM-0002", consecutive_failures=3).first()
        wait_until(lambda: platform_state() is not None, 20, "the device's health stored")
        st = platform_state()
        assert st.last_error_code == "E7201" and "unit 7" in st.last_error and st.last_good_poll_at is None
        alarm = open_alarm("E6003", "TP01-EM-0002")
        assert alarm is not None and alarm.kind == Alarm.Kind.DEVICE and GATEWAY in alarm.message_en
        good = DeviceState.objects.get(source__source_id="TP01-EM-0001")
        assert good.consecutive_failures == 0
        assert good.last_good_poll_at == dt.datetime.fromtimestamp((T0 + 2 * FIVE_MIN) / 1000, dt.UTC)
        assert open_alarm("E6003", "TP01-EM-0001") is None


def test_a_good_poll_closes_the_device_alarm_and_only_members_count(registry):
    gateway, em1, em2, loose = registry
    bad = {"failures": 4, "lastError": "E7102", "message": "TP01-EM-0002 (dlt645_tcp 10.0.0.5:8899 meter "
           "000102030425): timeout", "lastGoodPoll": None}
    report = {"state": "online", "devices": {"TP01-EM-0002": bad, "TP01-EM-0099": bad}}
    assert apply_status_report(source_id=GATEWAY, payload=json.dumps(report).encode())
    assert open_alarm("E6003", "TP01-EM-0002") is not None
    assert open_alarm("E6003", "TP01-EM-0099") is None  # not behind this gateway: ignored
    assert "000102030425" in open_alarm("E6003", "TP01-EM-0002").message_zh
    report["devices"] = {"TP01-EM-0002": {"failures": 0, "lastGoodPoll": "2026-11-23T00:10:00.000+08:00"}}
    apply_status_report(source_id=GATEWAY, payload=json.dumps(report).encode())
    assert open_alarm("E6003", "TP01-EM-0002") is None
    assert DeviceState.objects.get(source=em2).last_good_poll_at == dt.datetime(2026, 11, 22, 16, 10, tzinfo=dt.UTC)
    # hostile payloads are ignored or stored harmlessly, never raised
    for junk in (b"\xff\x00", b"[1, 2]", b'{"state": "online", "devices": [1], "refused": "x"}',
                 b'{"state": "online", "devices": {"TP01-EM-0002": {"failures": "many"}}}',
                 b'{"state": "online", "devices": {"TP01-EM-0002": {"failures": 99999999999, '
                 b'"lastGoodPoll": "9999-12-31T23:59:59-14:00", "lastError": "E\\u0000\\u0000", '
                 b'"message": "x\\u0000y"}}}',
                 b'{"state": "online", "alarm": "buffer_evicted", "evicted": "\\u0000"}'):
        apply_status_report(source_id=GATEWAY, payload=junk)
    st = DeviceState.objects.get(source=em2)
    assert st.consecutive_failures == 2**31 - 1 and st.last_error == "x\\u0000y"
    assert st.last_good_poll_at == dt.datetime(2026, 11, 22, 16, 10, tzinfo=dt.UTC)  # the implausible one ignored
    # alarm events: a full buffer (E6006) and a refused publish (E6005) open alarms on the gateway
    assert open_alarm("E6006", GATEWAY) is not None
    apply_status_report(source_id=GATEWAY, payload=json.dumps(
        {"state": "online", "alarm": "publish_refused", "sourceId": "TP01-EM-0099", "reasonCode": 135,
         "reason": "Not authorized", "readings": 3}).encode())
    assert "TP01-EM-0099" in open_alarm("E6005", GATEWAY).message_en
    apply_status_report(source_id=GATEWAY, payload=b'{"state": "online", "refused": {}}')
    assert open_alarm("E6005", GATEWAY) is None


def test_a_source_that_never_reports_alarms_after_three_intervals(registry):
    gateway, em1, em2, loose = registry
    now = timezone.now()
    DataSource.objects.filter(pk__in=[gateway.pk, em1.pk, em2.pk]).update(created_at=now - dt.timedelta(hours=1))
    DataSource.objects.filter(pk=loose.pk).update(created_at=now - dt.timedelta(minutes=10))  # 2 intervals
    touch([em1.pk], now)  # em1 has reported
    DeviceState.objects.create(source=em2, state="online")  # "online" from its status, but never any data
    assert flag_silent_sources(now) == 1
    alarm = open_alarm("E6004", "TP01-EM-0002")
    assert alarm is not None and alarm.kind == Alarm.Kind.SILENT and "900 s" in alarm.message_en
    assert DeviceState.objects.get(source=em2).silent
    assert open_alarm("E6004", GATEWAY) is None and open_alarm("E6004", "TP01-EM-0099") is None
    assert flag_silent_sources(now) == 0  # one alarm, not one per run
    touch([em2.pk], now)  # data at last: the alarm closes on the next check
    flag_silent_sources(now)
    assert open_alarm("E6004", "TP01-EM-0002") is None
    later = now + dt.timedelta(minutes=6)  # the loose source passes three intervals too
    assert flag_silent_sources(later) == 1 and open_alarm("E6004", "TP01-EM-0099") is not None
