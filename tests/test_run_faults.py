"""Fault tests over the real run command (issue #7 items 2 and 11; "keep it fixed").

One start of ``python -m carbonpark.embedded run`` on the embedded default (as scripts/smoke.py does: a temp
CARBONPARK_VAR, free ports), under a steady load of HTTP pushes and MQTT (QoS 1) publishes of readings with
known identities. Each process is SIGKILLed in turn (a gunicorn worker, the Celery worker, beat, the MQTT
consumer, the HJ 212 listener, the embedded PostgreSQL): each is back within 5 s, the others keep serving,
the product serves again within seconds. In the end every acknowledged reading (HTTP 200 / PUBACK) is
stored exactly once, and Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil
import psycopg

from carbonpark.embedded import free_port, remembered_ports
from carbonpark.supervise import console, expand, read_procfile, rpc

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Shanghai")
HTTP_SOURCE, MQTT_SOURCE, CODE = "JSTZ01-EM-0001", "JSTZ01-EM-0002", "CS010201"


class Run:
    """The run command in a temp var/, its console output in var.log."""

    def __init__(self, tmp: Path):
        self.var = tmp / "var"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "run.log"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MQTT_URL")}
        env.update(CARBONPARK_VAR=str(self.var), CARBONPARK_PORT=str(self.port), WEB_CONCURRENCY="2",
                   CARBONPARK_DEMO_INTERVAL="5")
        with open(self.log, "ab") as out:  # append: supervisord's children write to the same file
            self.proc = subprocess.Popen([sys.executable, "-m", "carbonpark.embedded", "run"], cwd=ROOT, env=env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.token = None

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, n=80) -> str:
        return "\n".join(self.text().splitlines()[-n:])

    def wait_banner(self, timeout=240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the run command exited with {self.proc.returncode}:\n{self.tail()}"
            if "CarbonPark is up" in self.text():
                return self.text()
            time.sleep(0.2)
        raise AssertionError(f"no banner within {timeout} s:\n{self.tail()}")

    def http(self, method, path, body=None, timeout=5):
        req = urllib.request.Request(self.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Token {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, None

    def info(self, name):
        return rpc(self.var).supervisor.getProcessInfo(name)

    def db(self):
        return psycopg.connect(host=str(self.var / "pgdata"), dbname="carbonpark", user="postgres", connect_timeout=3)

    def stop(self, sig=signal.SIGINT, timeout=90) -> int:
        """What Ctrl-C in a terminal does: SIGINT to the foreground process group (the run command and
        supervisord; supervisord's children are in groups of their own)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise AssertionError(f"the run command did not stop within {timeout} s:\n{self.tail()}") from None

    def leftovers(self) -> list[str]:
        return [f"{p.pid} {' '.join(p.info['cmdline'] or [])}" for p in psutil.process_iter(["cmdline"])
                if str(self.var) in " ".join(p.info["cmdline"] or [])]


def stamp(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


class Load:
    """HTTP pushes and MQTT publishes, one reading each, identities remembered when acknowledged."""

    def __init__(self, run: Run, mqtt_url: str):
        import paho.mqtt.client as mqtt

        self.run, self.stop = run, threading.Event()
        now = datetime.now(TZ).replace(microsecond=0)
        self.http_base, self.mqtt_base = now - timedelta(hours=6), now - timedelta(hours=5)
        self.http_acked, self.mqtt_acked, self.http_failed, self.mqtt_failed = [], [], 0, 0
        host, port = mqtt_url.split("://", 1)[1].rsplit(":", 1)
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="fault-load",
                                  protocol=mqtt.MQTTv311)
        self.client.connect(host, int(port), 30)
        self.client.loop_start()
        self.threads = [threading.Thread(target=self._http, daemon=True),
                        threading.Thread(target=self._mqtt, daemon=True)]
        for t in self.threads:
            t.start()

    def _http(self):
        i = 0
        while not self.stop.is_set():
            ts = self.http_base + timedelta(milliseconds=i)
            record = {"sourceId": HTTP_SOURCE, "dataCode": CODE, "timestamp": stamp(ts), "value": float(i),
                      "unit": "kWh"}
            try:
                status, body = self.run.http("POST", "/api/v1/readings", record)
            except OSError:
                status, body = None, None
            if status == 200 and body == {"accepted": 1, "duplicates": 0, "rejected": []}:
                self.http_acked.append(ts)
            else:
                self.http_failed += 1
                time.sleep(0.2)
            i += 1
            time.sleep(0.05)

    def _mqtt(self):
        i = 0
        while not self.stop.is_set():
            ts = self.mqtt_base + timedelta(milliseconds=i)
            payload = json.dumps({"sourceId": MQTT_SOURCE, "dataCode": CODE, "timestamp": stamp(ts),
                                  "value": float(i), "unit": "kWh"})
            info = self.client.publish(f"carbonpark/JSTZ01/{MQTT_SOURCE}/data", payload, qos=1)
            try:
                info.wait_for_publish(5)
                acked = info.is_published()  # the broker's PUBACK
            except (RuntimeError, ValueError):  # not connected (paho reconnects by itself)
                acked = False
            if acked:
                self.mqtt_acked.append(ts)
            else:
                self.mqtt_failed += 1
                time.sleep(0.2)
            i += 1
            time.sleep(0.05)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(15)
        self.client.disconnect()
        self.client.loop_stop()


def stored(run: Run, source_id: str, start: datetime, end: datetime) -> list[datetime]:
    with run.db() as conn:
        rows = conn.execute(
            "SELECT r.ts FROM ingestion_reading r JOIN sources_datasource s ON s.id = r.source_id "
            "JOIN catalog_dataitem d ON d.id = r.data_item_id WHERE s.source_id = %s AND d.code = %s "
            "AND r.ts >= %s AND r.ts < %s", [source_id, CODE, start, end]).fetchall()
    return [r[0] for r in rows]


def until(predicate, timeout, what, run):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return time.monotonic() - (deadline - timeout)
        except (OSError, psycopg.Error):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout} s:\n{run.tail()}")


def kill_supervised(run: Run, name: str) -> float:
    """SIGKILL one supervised process; seconds until supervisord has it running again under a new pid
    (and it stays up: not dying again at once)."""
    old = run.info(name)["pid"]
    assert old, f"{name} is not running"
    os.kill(old, signal.SIGKILL)
    t0 = time.monotonic()
    until(lambda: run.info(name)["pid"] not in (0, old), 5, f"{name} back after SIGKILL", run)
    back = time.monotonic() - t0
    until(lambda: run.info(name)["statename"] == "RUNNING", 10, f"{name} RUNNING", run)
    new = run.info(name)["pid"]
    time.sleep(2)
    assert run.info(name)["pid"] == new and run.info(name)["statename"] == "RUNNING", f"{name} is crash-looping"
    return back


def serving(run: Run, timeout=20):
    """The product serves again: a push answers 200 (the load's pushes go on around it)."""
    ts = datetime.now(TZ) - timedelta(hours=7) + timedelta(milliseconds=time.monotonic_ns() // 1_000_000 % 3_600_000)

    def push():
        return run.http("POST", "/api/v1/readings", {"sourceId": HTTP_SOURCE, "dataCode": CODE,
                                                     "timestamp": stamp(ts), "value": 1.0, "unit": "kWh"})[0] == 200

    until(push, timeout, "a push answered 200", run)


def hj212_upload(run: Run, port: int, at: datetime) -> bool:
    from apps.demo.management.commands.simulate import DEMO_HJ212_MN
    from apps.protocols.simulators.hj212_station import Hj212Station

    async def main():
        async with Hj212Station("127.0.0.1", port, DEMO_HJ212_MN) as station:
            return await station.send_realtime({"w01018": 38.5}, at=at)  # COD: a level, stored from Rtd

    try:
        return asyncio.run(asyncio.wait_for(main(), 10))
    except (OSError, TimeoutError):
        return False


def test_each_process_killed_comes_back_and_nothing_acknowledged_is_lost(tmp_path):
    started = time.monotonic()
    run = Run(tmp_path)
    try:
        text = run.wait_banner()
        # Item 11: the banner only once gunicorn answers, with the MQTT broker and HJ 212 ports in it.
        assert run.http("GET", "/healthz")[0] in (200, 503), "the banner came before gunicorn answered"
        ports = json.loads((run.var / "ports.json").read_text())
        assert f"MQTT broker: mqtt://127.0.0.1:{ports['MQTT']}" in text
        assert f"HJ 212 listener: 127.0.0.1:{ports['CARBONPARK_HJ212_PORT']}" in text
        # Item 11: this instance's own gunicorn control socket, under its var/.
        until(lambda: (run.var / "run" / "gunicorn.ctl").exists(), 10, "gunicorn's control socket in var/run", run)
        run.token = (run.var / "demo_token").read_text().strip()
        startup = time.monotonic() - started
        # Item 11: one process created and migrated the database; nobody raced: no FATAL/ERROR on a first start.
        first_start_pg = (run.var / "log" / "postgres.log").read_text()
        assert not re.search(r"\b(FATAL|ERROR|PANIC):", first_start_pg), first_start_pg[-3000:]

        # Item 11: the release step (migrations, the demo devices pointed at this start's simulator ports) ran
        # alone, before any poller (beat, worker) started.
        assert text.index("release    | demo park JSTZ01 ready") < min(
            text.index(f"spawned: '{name}'") for name in ("web", "worker", "beat", "ingest", "hj212"))
        with run.db() as conn:
            dlt645 = conn.execute("SELECT settings FROM sources_datasource WHERE source_id = 'JSTZ01-EM-0001'"
                                  ).fetchone()[0]
        assert dlt645["dlt645"]["port"] == ports["CARBONPARK_SIM_DLT645_PORT"]

        load = Load(run, f"mqtt://127.0.0.1:{ports['MQTT']}")
        until(lambda: len(load.http_acked) > 10 and len(load.mqtt_acked) > 10, 30, "the load flowing", run)
        times = {}

        # A gunicorn worker: its master replaces it.
        master = psutil.Process(run.info("product:web")["pid"])
        victim = master.children()[0].pid
        os.kill(victim, signal.SIGKILL)
        times["web worker"] = until(lambda: len(master.children()) == 2 and victim not in
                                    [c.pid for c in master.children()], 5, "a new gunicorn worker", run)
        serving(run)

        for name in ("worker", "beat", "ingest", "hj212"):
            times[name] = kill_supervised(run, f"product:{name}")
            serving(run)
        # The HJ 212 listener takes uploads again: answered (9014) and stored.
        at = datetime.now(TZ).replace(microsecond=0, tzinfo=None) - timedelta(hours=4)
        until(lambda: hj212_upload(run, ports["CARBONPARK_HJ212_PORT"], at), 60, "an HJ 212 upload answered", run)
        until(lambda: stored_hj212(run, at), 15, "the HJ 212 upload stored", run)

        # The embedded PostgreSQL: killed outright, restarted (crash recovery), its clients reconnect.
        times["postgres"] = kill_supervised(run, "infra:postgres")
        until(lambda: run.http("GET", "/healthz")[0] == 200, 30, "/healthz 200 after PostgreSQL's restart", run)
        serving(run, 30)

        time.sleep(3)  # some load after the last fault
        load.finish()
        assert len(load.http_acked) > 50 and len(load.mqtt_acked) > 50, (len(load.http_acked), len(load.mqtt_acked))
        end = timedelta(hours=1)
        got_http = stored(run, HTTP_SOURCE, load.http_base, load.http_base + end)
        assert sorted(got_http) == sorted(set(got_http)), "a reading stored twice"
        missing = set(load.http_acked) - set(got_http)
        assert not missing, f"{len(missing)} of {len(load.http_acked)} acknowledged HTTP readings not stored"

        missing = set(load.mqtt_acked)

        def mqtt_all_stored():
            got = stored(run, MQTT_SOURCE, load.mqtt_base, load.mqtt_base + end)
            assert len(got) == len(set(got)), "a reading stored twice"
            missing.intersection_update(set(load.mqtt_acked) - set(got))
            return not missing

        try:
            until(mqtt_all_stored, 60, "every acknowledged MQTT reading stored", run)
        except AssertionError:
            lost = sorted(missing)
            raise AssertionError(f"{len(lost)} of {len(load.mqtt_acked)} acknowledged MQTT readings not stored, "
                                 f"from {lost[0]} to {lost[-1]}; times {times}") from None
        print(f"\nstartup {startup:.1f} s; back after SIGKILL: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
              + f"; acknowledged HTTP {len(load.http_acked)} (failed {load.http_failed}), MQTT {len(load.mqtt_acked)}"
              f" (failed {load.mqtt_failed}), all stored once")
        assert all(v < 5 for v in times.values()), times
    finally:
        beat_log = run.var / "log" / "beat.log"
        before_stop = beat_log.stat().st_size if beat_log.exists() else 0
        code = run.stop()
    assert code == 0, run.tail()
    assert not run.leftovers(), run.leftovers()
    assert not (run.var / "pgdata" / "postmaster.pid").exists(), "PostgreSQL did not shut down cleanly"
    # Item 11: beat stops without a traceback on Ctrl-C (the database it saves its schedule to stops after it).
    with open(beat_log, "rb") as f:
        f.seek(before_stop)
        assert b"Traceback" not in f.read()
    assert "stopped" in run.text().splitlines()[-1]
    assert time.monotonic() - started < 300


def stored_hj212(run: Run, at: datetime) -> bool:
    with run.db() as conn:
        return conn.execute(
            "SELECT count(*) FROM ingestion_reading r JOIN sources_datasource s ON s.id = r.source_id "
            "WHERE s.source_id = 'JSTZ01-WW-0001' AND r.ts = %s", [at.replace(tzinfo=TZ)]).fetchone()[0] > 0


# --- the pieces, without starting the product ------------------------------------------------------------


def test_ports_are_remembered_across_starts_and_replaced_only_when_taken(tmp_path):
    import socket

    first = remembered_ports(tmp_path)
    assert len(set(first.values())) == len(first) and all(p not in (1883, 5432, 6379, 8000) for p in first.values())
    assert remembered_ports(tmp_path) == first  # the next start: the same MQTT, HJ 212 and simulator ports
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", first["MQTT"]))
        busy.listen()
        again = remembered_ports(tmp_path)
    assert again["MQTT"] != first["MQTT"] and {k: v for k, v in again.items() if k != "MQTT"} == {
        k: v for k, v in first.items() if k != "MQTT"}
    assert json.loads((tmp_path / "ports.json").read_text()) == again


def test_procfile_is_the_one_list_and_expands_the_run_environment():
    procs = read_procfile(ROOT / "Procfile")
    assert list(procs)[:4] == ["postgres", "redis", "mqtt", "release"]
    assert {"web", "worker", "beat", "ingest", "hj212"} <= set(procs)
    assert expand(procs["hj212"], {"CARBONPARK_HJ212_PORT": "41234"}).endswith("--port 41234")
    # Each restartable process is one command exec'd by supervisord: no shell chain left to outlive it.
    assert not any("&&" in cmd or ";" in cmd for name, cmd in procs.items())


def test_console_listener_prefixes_each_line_with_the_process_name():
    import io

    def event(name, data):
        payload = f"processname:{name} groupname:product pid:1 channel:stdout\n".encode() + data
        return f"ver:3.0 server:supervisor serial:1 pool:console poolserial:1 eventname:PROCESS_LOG_STDOUT " \
               f"len:{len(payload)}\n".encode() + payload

    stdin = io.BytesIO(event("web", b"one\ntw") + event("web", b"o\n") + event("beat", b"three\n"))
    stdout, out = io.BytesIO(), io.BytesIO()
    console(stdin, stdout, out)
    assert out.getvalue().decode().splitlines() == ["web        | one", "web        | two", "beat       | three"]
    assert stdout.getvalue() == b"READY\n" + b"RESULT 2\nOKREADY\n" * 3


def test_embedded_broker_keeps_a_persistent_sessions_messages_while_its_consumer_is_away(tmp_path):
    """amqtt dropped the queued QoS 1 messages of anonymous persistent sessions (published while the MQTT
    consumer restarted), and forgot a message delivered to a consumer that died before acknowledging it
    (the consumer acknowledges after storing): both were acknowledged to the device and lost."""
    import paho.mqtt.client as mqtt

    port = free_port()
    env = {**os.environ, "MQTT_URL": f"mqtt://127.0.0.1:{port}"}
    broker = subprocess.Popen([sys.executable, "-m", "carbonpark.embedded", "mqtt"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def client(cid, clean, manual_ack=False):
        c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=cid,
                        protocol=mqtt.MQTTv311, clean_session=clean, manual_ack=manual_ack)
        got = []
        c.on_message = lambda cl, u, msg: got.append(msg.payload)
        c.connect("127.0.0.1", port, 30)
        c.loop_start()
        return c, got

    def publish(payload):
        info = device.publish("carbonpark/JSTZ01/JSTZ01-EM-0002/data", payload, qos=1)
        info.wait_for_publish(5)
        assert info.is_published()  # PUBACK: the device forgets it

    def wait_for(got, payloads, timeout=15):
        deadline = time.monotonic() + timeout
        while not set(payloads) <= set(got) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert set(payloads) <= set(got), got

    def die(c):  # gone without a DISCONNECT, as a SIGKILLed consumer
        c.loop_stop()
        c.socket().close()

    try:
        from carbonpark.embedded import mqtt_answers

        deadline = time.monotonic() + 30
        while not mqtt_answers(f"mqtt://127.0.0.1:{port}"):
            assert time.monotonic() < deadline and broker.poll() is None, "the embedded broker did not start"
            time.sleep(0.2)
        device, _ = client("device-1", True)
        consumer, _ = client("consumer-1", False, manual_ack=True)
        consumer.subscribe("carbonpark/+/+/data", qos=1)
        time.sleep(0.5)
        die(consumer)
        time.sleep(1)
        publish(b"while-away")
        # Back: the queued message arrives; the consumer dies again before acknowledging it.
        consumer, got = client("consumer-1", False, manual_ack=True)
        wait_for(got, [b"while-away"])
        publish(b"in-flight")
        wait_for(got, [b"in-flight"])
        die(consumer)
        time.sleep(1)
        # Back again: both unacknowledged messages are delivered again (DUP), and acknowledged this time.
        consumer, got = client("consumer-1", False)
        wait_for(got, [b"while-away", b"in-flight"])
        die(consumer)
        # A PUBACK later than amqtt's 5 s (a consumer waiting for its database) still settles the message.
        consumer, got = client("consumer-1", False, manual_ack=True)
        received = []
        consumer.on_message = lambda cl, u, msg: received.append(msg)
        publish(b"late")
        deadline = time.monotonic() + 10
        while not any(m.payload == b"late" for m in received) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(6)
        late = next(m for m in received if m.payload == b"late")
        consumer.ack(late.mid, late.qos)
        time.sleep(0.5)
        die(consumer)
        consumer, got = client("consumer-1", False)
        time.sleep(3)
        assert b"late" not in got  # acknowledged: not sent again
        for c in (device, consumer):
            c.disconnect()
            c.loop_stop()
    finally:
        broker.send_signal(signal.SIGTERM)
        assert broker.wait(30) == 0


def test_banner_names_the_broker_without_its_credentials(capsys):
    from carbonpark.supervise import Runner

    env = {"MQTT_URL": "mqtts://carbonpark:s3cret@broker.example:8883", "CARBONPARK_PORT": "8123",
           "CARBONPARK_HJ212_PORT": "9212"}
    Runner(env, {"web": "gunicorn", "hj212": "python manage.py run_hj212_listener"}, None).banner()
    out = capsys.readouterr().out
    assert "CarbonPark is up: http://127.0.0.1:8123/" in out and "HJ 212 listener: 127.0.0.1:9212" in out
    assert "MQTT broker: mqtts://broker.example:8883\n" in out and "s3cret" not in out
