"""Health tells the truth (issue 7 item 8): /healthz names each process that ingests or schedules and turns
503 when one is stalled, over real processes (a consumer on a real Mosquitto, a Celery worker and beat, the
HJ 212 listener); /metrics counts what the pipeline accepted and rejected, by channel and code."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
import redis
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from apps.core import heartbeat
from apps.ingestion.models import Reading
from tests.brokers import Mosquitto, TestClient

ROOT = Path(__file__).resolve().parent.parent
URL = "/api/v1/readings"
SID = "TP01-EM-0001"


def wait_for(predicate, timeout=20.0, what="condition", every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def sample(client, name, **labels):
    """The value of one sample of /metrics (0 when absent)."""
    r = client.get("/metrics")
    assert r.status_code == 200, r.content
    for family in text_string_to_metric_families(r.content.decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


@pytest.fixture
def clean_heartbeats():
    r = redis.Redis.from_url(settings.REDIS_URL)
    r.delete(*[heartbeat.KEY_PREFIX + c for c in heartbeat.COMPONENTS])
    yield r
    r.delete(*[heartbeat.KEY_PREFIX + c for c in heartbeat.COMPONENTS])


@pytest.fixture
def fast_health(settings, clean_heartbeats):
    settings.HEALTH_STALE_S = 2.0
    settings.HEALTH_MQTT_LAG_S = 2.0
    return settings


def child_env(tmp_path, **extra):
    from tests.test_mqtt_channel import _database_url_of_this_test

    return dict(os.environ, DATABASE_URL=_database_url_of_this_test(), REDIS_URL=settings.REDIS_URL,
                PYTHONUNBUFFERED="1", HEARTBEAT_INTERVAL_S="0.2", **extra)


def start(args, tmp_path, name, env):
    out = open(tmp_path / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def health(client):
    r = client.get("/healthz")
    return r.status_code, r.json()


# --- /healthz without processes -------------------------------------------------------------------

@pytest.mark.django_db
def test_every_expected_process_missing_is_503_and_named(client, fast_health):
    fast_health.HEALTH_EXPECT = ["mqtt", "hj212", "worker", "beat"]
    status, body = health(client)
    assert status == 503 and body["status"] == "degraded"
    assert body["checks"] == {"database": "ok", "redis": "ok"}
    assert {k: v["status"] for k, v in body["components"].items()} == {
        "mqtt": "missing", "hj212": "missing", "worker": "missing", "beat": "missing"}


def test_default_expects_every_process():
    env = {k: v for k, v in os.environ.items() if k != "HEALTH_EXPECT"}
    out = subprocess.run([sys.executable, "-c", "from django.conf import settings; import django; django.setup();"
                          "print(','.join(settings.HEALTH_EXPECT))"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(env, DJANGO_SETTINGS_MODULE="carbonpark.settings"), check=True)
    assert out.stdout.strip() == "mqtt,hj212,worker,beat"


@pytest.mark.django_db
def test_a_deployment_without_the_hj212_listener_is_healthy(client, fast_health):
    fast_health.HEALTH_EXPECT = ["mqtt", "worker", "beat"]
    beats = [heartbeat.Heartbeat("mqtt", "c1", state=lambda: {"pending": 0}), heartbeat.Heartbeat("worker", "w1"),
             heartbeat.Heartbeat("beat", "b1")]
    for hb in beats:
        hb.beat()
    status, body = health(client)
    assert status == 200, body
    assert body["status"] == "ok" and body["checks"] == {"database": "ok", "redis": "ok"}
    assert "hj212" not in body["components"]
    assert body["components"]["mqtt"]["instances"][0]["instance"] == "c1"
    for hb in beats:
        hb.stop()
    assert clean_heartbeats_empty()


@pytest.mark.django_db
def test_killed_instance_is_stalled_then_forgotten_and_unexpected_ones_never_fail(client, fast_health):
    fast_health.HEALTH_EXPECT = ["worker"]
    fast_health.HEALTH_FORGET_S = 50.0
    r = redis.Redis.from_url(settings.REDIS_URL)
    # What a SIGKILLed worker leaves behind: an entry nobody refreshes.
    r.hset(heartbeat.KEY_PREFIX + "worker", "celery@gone", json.dumps({"ts": time.time() - 10, "pid": 1}))
    r.hset(heartbeat.KEY_PREFIX + "beat", "old-host", json.dumps({"ts": time.time() - 10, "pid": 2}))
    status, body = health(client)
    assert status == 503
    assert body["components"]["worker"]["instances"][0]["status"] == "stalled"
    assert body["components"]["beat"] == {"status": "stalled", "expected": False, "instances": [
        {"instance": "old-host", "status": "stalled", "age": pytest.approx(10, abs=1), "pid": 2, "host": None,
         "reason": body["components"]["beat"]["instances"][0]["reason"]}]}
    heartbeat.Heartbeat("worker", "celery@alive").beat()
    assert health(client)[0] == 503  # one stalled instance makes the component stalled
    r.hset(heartbeat.KEY_PREFIX + "worker", "celery@gone", json.dumps({"ts": time.time() - 60, "pid": 1}))
    status, body = health(client)
    assert status == 200, body  # forgotten; the stalled beat is not expected here
    assert [i["instance"] for i in body["components"]["worker"]["instances"]] == ["celery@alive"]
    assert not r.hexists(heartbeat.KEY_PREFIX + "worker", "celery@gone")


def clean_heartbeats_empty():
    r = redis.Redis.from_url(settings.REDIS_URL)
    return all(not r.hgetall(heartbeat.KEY_PREFIX + c) for c in heartbeat.COMPONENTS)


# --- the MQTT consumer, a real process on a real Mosquitto ----------------------------------------

class TcpProxy:
    """A loopback TCP relay to PostgreSQL that can be cut (every connection dropped, new ones refused)."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.cut = threading.Event()
        self.pairs = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.cut.is_set():
                conn.close()
                continue
            host, port = self.target
            if host.startswith("/"):  # the embedded PostgreSQL listens on a Unix socket only
                upstream = socket.socket(socket.AF_UNIX)
                upstream.connect(f"{host}/.s.PGSQL.{port}")
            else:
                upstream = socket.create_connection(self.target)
            with self.lock:
                self.pairs.append((conn, upstream))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def set_cut(self, cut: bool):
        if cut:
            self.cut.set()
            with self.lock:
                pairs, self.pairs = self.pairs, []
            for a, b in pairs:
                for s in (a, b):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)
                    s.close()
        else:
            self.cut.clear()

    def close(self):
        self.set_cut(True)
        self.sock.close()


def reading(minute, value=1.0):
    return {"sourceId": SID, "dataCode": "CS010201", "timestamp": f"2026-11-23 10:{minute:02d}:00", "value": value}


@pytest.fixture
def broker(tmp_path):
    with Mosquitto(tmp_path / "mosquitto") as b:
        yield b


def start_consumer(broker, tmp_path, client_id, env):
    proc = start([sys.executable, "manage.py", "run_mqtt_ingest", "--url", broker.url, "--client-id", client_id,
                  "--batch-wait", "0.02"], tmp_path, "consumer", env)
    wait_for(lambda: "MQTT connected" in (tmp_path / "consumer.log").read_text(errors="replace"), 30,
             "the consumer to connect")
    time.sleep(0.5)
    return proc


def mqtt_component(client):
    status, body = health(client)
    return status, body.get("components", {}).get("mqtt", {})


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_consumer_frozen_with_messages_pending_turns_503_and_recovers(client, broker, meter, fast_health, tmp_path):
    fast_health.HEALTH_EXPECT = ["mqtt"]
    metrics_dir = tmp_path / "metrics"
    fast_health.PROMETHEUS_MULTIPROC_DIR = str(metrics_dir)
    proc = start_consumer(broker, tmp_path, "health-consumer",
                          child_env(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)))
    try:
        status, mqtt = wait_for(lambda: (s := mqtt_component(client))[0] == 200 and s, what="healthy consumer")
        assert mqtt["status"] == "ok" and mqtt["expected"] is True
        (inst,) = mqtt["instances"]
        assert inst["instance"] == "health-consumer" and inst["pid"] == proc.pid and inst["pending"] == 0
        with TestClient.connect(broker.url, "dev", protocol=5) as dev:
            dev.publish(f"carbonpark/TP01/{SID}/data", orjson.dumps(reading(0)))
            wait_for(lambda: Reading.objects.count() == 1, what="the first reading")
            # The consumer's own counters, written by its process, added up by /metrics (multiprocess mode).
            assert wait_for(lambda: sample(client, "carbonpark_readings_accepted_total", channel="mqtt") == 1.0,
                            what="mqtt accepted counter")
            # The next heartbeat (every 0.2 s here) reports the commit.
            wait_for(lambda: mqtt_component(client)[1]["instances"][0]["lastCommitAge"] is not None,
                     what="the commit in the heartbeat")
            assert sample(client, "carbonpark_mqtt_consumer_pending_messages", instance="health-consumer") == 0
            assert sample(client, "carbonpark_mqtt_consumer_last_commit_age_seconds", instance="health-consumer") < 5

            proc.send_signal(signal.SIGSTOP)
            dev.publish(f"carbonpark/TP01/{SID}/data", orjson.dumps(reading(1)))
            status, mqtt = wait_for(lambda: (s := mqtt_component(client))[0] == 503 and s, what="503")
            assert mqtt["status"] == "stalled"
            assert mqtt["instances"][0]["instance"] == "health-consumer"
            assert "no heartbeat" in mqtt["instances"][0]["reason"]
            assert sample(client, "carbonpark_component_up", component="mqtt") == 0
            assert Reading.objects.count() == 1

            proc.send_signal(signal.SIGCONT)
            wait_for(lambda: Reading.objects.count() == 2, what="the held message stored after SIGCONT")
            wait_for(lambda: (s := mqtt_component(client))[0] == 200 and s[1]["instances"][0]["pending"] == 0,
                     what="recovery, nothing pending")
    finally:
        stop(proc)
    # A clean stop removes the consumer's entry: nothing stalled is left behind.
    status, body = health(client)
    assert status == 503 and body["components"]["mqtt"] == {"status": "missing", "expected": True, "instances": []}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_consumer_holding_messages_or_without_its_broker_is_named(
        client, broker, meter, fast_health, tmp_path):
    from django.db import connection

    fast_health.HEALTH_EXPECT = ["mqtt"]
    s = connection.settings_dict
    proxy = TcpProxy(s["HOST"] or "127.0.0.1", int(s["PORT"] or 5432))
    env = child_env(tmp_path)
    env["DATABASE_URL"] = f"postgresql://{s['USER']}:{s['PASSWORD'] or ''}@127.0.0.1:{proxy.port}/{s['NAME']}"
    proc = start_consumer(broker, tmp_path, "lag-consumer", env)
    try:
        with TestClient.connect(broker.url, "dev", protocol=5) as dev:
            dev.publish(f"carbonpark/TP01/{SID}/data", orjson.dumps(reading(0)))
            wait_for(lambda: Reading.objects.count() == 1, what="the first reading")
            assert mqtt_component(client)[0] == 200
            proxy.set_cut(True)
            dev.publish(f"carbonpark/TP01/{SID}/data", orjson.dumps(reading(1)))
            dev.publish(f"carbonpark/TP01/{SID}/data", orjson.dumps(reading(2)))
            status, mqtt = wait_for(lambda: (s := mqtt_component(client))[0] == 503 and s, what="503 on lag")
            (inst,) = mqtt["instances"]
            assert mqtt["status"] == "stalled" and inst["instance"] == "lag-consumer"
            # Alive (it beats) but holding messages it cannot commit: the lag names it.
            assert inst["age"] < 2.0 and inst["pending"] == 2 and inst["oldestPendingAge"] > 2.0
            assert "not committed" in inst["reason"]
            assert sample(client, "carbonpark_mqtt_consumer_pending_messages", instance="lag-consumer") == 2
            proxy.set_cut(False)
            wait_for(lambda: Reading.objects.count() == 3, timeout=30, what="the held messages stored")
            wait_for(lambda: mqtt_component(client)[0] == 200, what="recovery")
        # A consumer that cannot reach its broker ingests nothing: named too, until it reconnects.
        broker.stop()
        status, mqtt = wait_for(lambda: (s := mqtt_component(client))[0] == 503 and s, what="503 on broker down")
        assert "not connected to the MQTT broker" in mqtt["instances"][0]["reason"]
        broker.start()
        wait_for(lambda: mqtt_component(client)[0] == 200, timeout=30, what="reconnected")
    finally:
        stop(proc)
        proxy.close()


# --- Celery worker and beat, the HJ 212 listener --------------------------------------------------

@pytest.mark.django_db
def test_celery_worker_and_beat_heartbeats(client, fast_health, tmp_path):
    fast_health.HEALTH_EXPECT = ["worker", "beat"]
    env = child_env(tmp_path)
    worker = start([sys.executable, "-m", "celery", "-A", "carbonpark", "worker", "-Q", f"test-health-{os.getpid()}",
                    "--pool", "solo", "-n", f"health-{os.getpid()}@%h", "-l", "info"], tmp_path, "worker", env)
    beat = start([sys.executable, "-m", "celery", "-A", "carbonpark", "beat", "-l", "info",
                  "--scheduler", "celery.beat:PersistentScheduler", "-s", str(tmp_path / "beat-schedule")],
                 tmp_path, "beat", env)
    try:
        def healthy():
            status, body = health(client)
            return status == 200 and body

        body = wait_for(healthy, timeout=60, what="worker and beat heartbeats")
        node = f"health-{os.getpid()}@{socket.gethostname()}"
        assert body["components"]["worker"]["instances"][0]["instance"] == node
        assert body["components"]["worker"]["instances"][0]["pid"] == worker.pid
        assert body["components"]["beat"]["instances"][0]["pid"] == beat.pid
        for proc, name in ((worker, "worker"), (beat, "beat")):
            proc.send_signal(signal.SIGSTOP)
            status, body = wait_for(lambda n=name: (r := health(client))[0] == 503
                                    and r[1]["components"][n]["status"] == "stalled" and r, what=f"{name} stalled")
            others = {k: v["status"] for k, v in body["components"].items() if k != name}
            assert set(others.values()) == {"ok"}
            proc.send_signal(signal.SIGCONT)
            wait_for(lambda: health(client)[0] == 200, what=f"{name} recovered")
    finally:
        log = "".join((tmp_path / f"{n}.log").read_text(errors="replace")[-1500:] for n in ("worker", "beat"))
        stop(worker)
        stop(beat)
    # Both stopped cleanly (SIGTERM) and removed their entries.
    body = health(client)[1]
    assert body["components"]["worker"]["status"] == "missing", log
    assert body["components"]["beat"]["status"] == "missing", log


@pytest.mark.django_db
def test_hj212_listener_heartbeat(client, fast_health, tmp_path):
    fast_health.HEALTH_EXPECT = ["hj212"]
    proc = start([sys.executable, "manage.py", "run_hj212_listener", "--port", "0"], tmp_path, "hj212",
                 child_env(tmp_path))
    try:
        status, body = wait_for(lambda: (r := health(client))[0] == 200 and r, timeout=30, what="listener healthy")
        (inst,) = body["components"]["hj212"]["instances"]
        assert inst["pid"] == proc.pid and inst["instance"].startswith(socket.gethostname() + ":")
        proc.send_signal(signal.SIGSTOP)
        status, body = wait_for(lambda: (r := health(client))[0] == 503 and r, what="listener stalled")
        assert body["components"]["hj212"]["status"] == "stalled"
        proc.send_signal(signal.SIGCONT)
        wait_for(lambda: health(client)[0] == 200, what="listener recovered")
    finally:
        stop(proc)
    assert health(client)[1]["components"]["hj212"]["status"] == "missing"


# --- /metrics -------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_metrics_count_an_http_push_with_a_rejection(client, api, meter, clean_heartbeats, settings):
    queue = f"test-metrics-{os.getpid()}"
    settings.METRICS_CELERY_QUEUES = [queue]
    before = {
        "accepted": sample(client, "carbonpark_readings_accepted_total", channel="http"),
        "rejected": sample(client, "carbonpark_readings_rejected_total", channel="http", code="E2003"),
        "batches": sample(client, "carbonpark_ingest_batch_seconds_count", channel="http"),
    }
    body = [reading(0, 5.0), {**reading(1), "sourceId": "TP01-NO-SUCH"}]
    r = api.post(URL, data=json.dumps(body), content_type="application/json")
    assert r.status_code == 400 and r.json()["accepted"] == 1
    assert [x["code"] for x in r.json()["rejected"]] == ["E2003"]
    assert sample(client, "carbonpark_readings_accepted_total", channel="http") == before["accepted"] + 1
    assert sample(client, "carbonpark_readings_rejected_total", channel="http", code="E2003") == before["rejected"] + 1
    assert sample(client, "carbonpark_ingest_batch_seconds_count", channel="http") == before["batches"] + 1
    # The rejection raised an alarm: counted from the database at scrape time.
    assert sample(client, "carbonpark_alarms_open", kind="validation", severity="reject", state="open") == 1
    # Celery queue depth: the broker's list lengths, priority lists included.
    clean_heartbeats.rpush(queue, b"a", b"b")
    clean_heartbeats.rpush(queue + "\x06\x163", b"c")
    try:
        assert sample(client, "carbonpark_celery_queue_length", queue=queue) == 3
    finally:
        clean_heartbeats.delete(queue, queue + "\x06\x163")
    assert sample(client, "carbonpark_dependency_up", dependency="database") == 1
    assert sample(client, "carbonpark_dependency_up", dependency="redis") == 1


@pytest.mark.django_db
def test_metrics_only_for_loopback_or_the_token(client, settings):
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").json()["code"] == "E1008"
    # Relayed by the front on the same machine: the real client is elsewhere.
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    r = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/plain")
