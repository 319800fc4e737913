"""Edge agent (apps/edge): buffer, reconnect policy, and end to end against a real Mosquitto.

No database needed. The agent runs either in a thread of this process (with a ManualClock the test advances)
or as ``python -m apps.edge --config ...`` in a subprocess (compressed time via [testing] time_scale).
"""
from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import datetime as dt
import json
import logging
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from apps.edge.agent import Agent, format_ts, parse_ts
from apps.edge.buffer import Buffer, Reading
from apps.edge.clock import ManualClock
from apps.edge.config import ConfigError, load, parse
from apps.edge.drivers import decode_registers
from apps.edge.publisher import Publisher, ReconnectPolicy
from tests.brokers import Mosquitto, TestClient, find_mosquitto, free_port, make_ca

REPO = Path(__file__).resolve().parent.parent
PARK = "EP01"
SOURCES = ("EP01-EM-0001", "EP01-EM-0002")
TZ = ZoneInfo("Asia/Shanghai")
T0 = int(dt.datetime(2026, 11, 23, 0, 0, tzinfo=TZ).timestamp() * 1000)  # aligned to 5 min
FIVE_MIN = 300_000

needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto not installed")


def config_dict(tmp_path: Path, url: str, *, ca_file=None, client_id="EP01-GW-01", max_bytes=None,
                time_scale=None, interval_s=300) -> dict:
    platform = {"mqtt_url": url, "park": PARK, "client_id": client_id, "keepalive": 60}
    if ca_file is not None:
        platform["ca_file"] = str(ca_file)
    buffer = {"path": str(tmp_path / "buffer.sqlite3")}
    if max_bytes is not None:
        buffer.update(max_bytes=max_bytes, allow_small_for_tests=True)
    devices = [
        {"source_id": SOURCES[0], "driver": "fake", "interval_s": interval_s,
         "points": [{"data_code": "CS010201", "unit": "kWh", "min": 0.0, "max": 1e9, "start": 1000.0, "step": 1.5}]},
        {"source_id": SOURCES[1], "driver": "fake", "interval_s": interval_s,
         "points": [{"data_code": "CS010202", "unit": "kW", "min": 0.0, "max": 100.0, "values": [10.0, 250.0, 20.0]}]},
    ]
    data = {"platform": platform, "buffer": buffer, "device": devices}
    if time_scale is not None:
        data["testing"] = {"time_scale": time_scale}
    return data


def toml_text(data: dict) -> str:
    """Just enough TOML for config_dict() output."""
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + "}"
        return repr(v)
    out = []
    for name in ("platform", "buffer", "testing"):
        if name in data:
            out.append(f"[{name}]")
            out += [f"{k} = {val(v)}" for k, v in data[name].items()]
    for device in data["device"]:
        out.append("[[device]]")
        out += [f"{k} = {val(v)}" for k, v in device.items()]
    return "\n".join(out) + "\n"


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


class InThread:
    """An Agent running on its own event loop in a thread; ``call`` runs a function on that loop."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        agent._ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(agent.run()), daemon=True)

    def __enter__(self):
        self.thread.start()
        assert self.agent._ready.wait(10), "agent did not start"
        return self

    def __exit__(self, *exc) -> None:
        self.agent.stop()
        self.thread.join(15)

    def call(self, fn, *args):
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def run():
            try:
                fut.set_result(fn(*args))
            except Exception as exc:  # noqa: BLE001
                fut.set_exception(exc)
        self.agent.loop.call_soon_threadsafe(run)
        return fut.result(10)

    def advance(self, clock: ManualClock, ms: int, polls_after: int) -> None:
        self.call(clock.advance, ms)
        wait_until(lambda: self.agent.stats["polls"] >= polls_after, 10, f"{polls_after} polls")


class Collector:
    """Drains a TestClient: data records (in arrival order) and the other messages by topic."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.other: list[tuple[str, dict]] = []

    def drain(self, client: TestClient, until, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out: {len(self.records)} records, last others {self.other[-3:]}")
            try:
                msg = client.expect(timeout=min(remaining, 0.5))
            except Exception:  # noqa: BLE001 - queue.Empty
                continue
            payload = json.loads(msg.payload)
            if msg.topic.endswith("/data"):
                assert msg.topic == f"carbonpark/{PARK}/{payload[0]['sourceId']}/data"
                self.records.extend(payload)
            else:
                self.other.append((msg.topic, payload))

    def drain_rest(self, client: TestClient) -> None:
        self.drain(client, client.messages.empty, timeout=5)

    def acks(self) -> dict:
        return {p["cmdId"]: p for t, p in self.other if t.endswith("/cmd/ack")}


def identity(record: dict) -> tuple:
    return record["sourceId"], record["dataCode"], record["timestamp"]


# --- static checks -----------------------------------------------------------------------------------------------

def test_no_django_imports_in_edge():
    files = sorted((REPO / "apps" / "edge").rglob("*.py"))
    assert files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "django" or n.startswith(("django.", "rest_framework"))
                           for n in names), f"{path} imports {names}"
        assert "django" not in path.read_text().lower().replace("no django imports", ""), path


def test_config_validation(tmp_path):
    good = config_dict(tmp_path, "mqtts://broker.example:8883", max_bytes=None)
    cfg = parse(good)
    assert cfg.platform.tls and cfg.platform.port == 8883 and cfg.buffer.max_bytes == 2 * 1024**3
    assert [d.interval_s for d in cfg.devices] == [300, 300]

    def broken(mutate, message):
        data = json.loads(json.dumps(good))
        mutate(data)
        with pytest.raises(ConfigError, match=message):
            parse(data)

    broken(lambda d: d["device"][0].update(interval_s=30), "interval_s must be 60-3600")
    broken(lambda d: d["device"][0].update(interval_s=3601), "interval_s must be 60-3600")
    broken(lambda d: d["platform"].update(keepalive=30), "keepalive must be 60-120")
    broken(lambda d: d["platform"].update(mqtt_url="http://x"), "mqtt_url")
    broken(lambda d: d["buffer"].update(max_bytes=10**9), "at least 2000000000")
    broken(lambda d: d["device"][0].update(driver="opcua"), "driver must be one of")
    broken(lambda d: d["device"][0].update(colour="red"), "unknown key")
    broken(lambda d: d["device"][0]["points"][0].update(data_code="X"), "8-character")
    broken(lambda d: d["device"][1].update(source_id=SOURCES[0]), "duplicate source_id")
    broken(lambda d: d["platform"].pop("park"), "park is required")
    # the CLI validates too
    path = tmp_path / "edge.toml"
    path.write_text(toml_text(good))
    assert load(path).devices[1].points[0].values == [10.0, 250.0, 20.0]
    ok = subprocess.run([sys.executable, "-m", "apps.edge", "--config", str(path), "--check"], cwd=REPO,
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    path.write_text(toml_text(config_dict(tmp_path, "mqtt://h:1", interval_s=10)))
    bad = subprocess.run([sys.executable, "-m", "apps.edge", "--config", str(path), "--check"], cwd=REPO,
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "interval_s must be 60-3600" in bad.stderr


def test_timestamps_and_modbus_decode():
    assert format_ts(T0 + 5, TZ) == "2026-11-23 00:00:00.005"
    assert parse_ts("2026-11-23 00:00:00.005", TZ) == T0 + 5
    assert parse_ts("2026-11-22T16:00:00+00:00", TZ) == T0
    assert decode_registers([0x4148, 0x0000], "float32") == 12.5
    assert decode_registers([0x0000, 0x4148], "float32", "little") == 12.5
    assert decode_registers([0xFFFF], "int16") == -1


# --- buffer ------------------------------------------------------------------------------------------------------

def test_buffer_order_ack_state_and_durability(tmp_path):
    path = tmp_path / "b.sqlite3"
    buf = Buffer(path, 10**9)
    assert buf.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert buf.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    rows = [Reading("S1", "CS010201", ts, float(ts), "kWh") for ts in (3000, 1000, 2000)]
    assert buf.put(rows) == 3
    assert buf.put([Reading("S1", "CS010201", 1000, 99.0, "kWh")]) == 0  # same identity: stored once
    assert buf.put([Reading("S2", "CS010201", 1500, 7.0, "kWh")]) == 1
    batch = buf.next_batch(10)
    assert [r.ts_ms for r in batch] == [1000, 1500, 2000, 3000] and batch[0].value == 1000.0
    buf.mark_acked([batch[0].id, batch[1].id])
    assert buf.pending_count() == 2 and buf.last_acked("S1") == 1000 and buf.last_acked("S2") == 1500
    assert buf.requeue("S1", 0, 1000) == 1
    assert [(r.ts_ms, r.backfill) for r in buf.next_batch(10)] == [(1000, True), (2000, False), (3000, False)]
    buf.mark_acked([r.id for r in buf.next_batch(10)])
    assert buf.last_acked("S1") == 3000 and buf.pending_count() == 0
    buf.close()

    # "accepted" = durable: a process that put() and then dies by SIGKILL loses nothing
    script = textwrap.dedent(f"""
        import os, signal
        from apps.edge.buffer import Buffer, Reading
        b = Buffer({str(path)!r}, 10**9)
        b.put([Reading("S3", "CS010201", ts, 1.0, "kWh") for ts in range(100)])
        print("accepted", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert proc.returncode == -signal.SIGKILL and "accepted" in proc.stdout
    again = Buffer(path, 10**9)
    assert again.pending_count() == 100
    assert [r.ts_ms for r in again.next_batch(200)] == list(range(100))
    again.close()


def test_buffer_eviction_with_alarm(tmp_path):
    cap = 64 * 1024
    buf = Buffer(tmp_path / "small.sqlite3", cap)
    buf.put([Reading("S1", "CS010201", ts, 1.0, "kWh") for ts in range(50)])
    buf.mark_acked([r.id for r in buf.next_batch(50)])  # acknowledged rows go first, without an alarm
    for start in range(50, 5050, 100):
        buf.put([Reading("S1", "CS010201", ts, float(ts), "kWh") for ts in range(start, start + 100)])
        assert buf.used_bytes() <= cap
    alarms = buf.unpublished_alarms()
    assert alarms and all(a.kind == "buffer_evicted" for a in alarms)
    remaining = [r.ts_ms for r in buf.all_rows()]
    assert remaining[-1] == 5049  # the newest kept
    assert remaining == list(range(remaining[0], 5050))  # the oldest evicted, nothing in between
    lost_pending = remaining[0] - 50
    assert sum(a.count for a in alarms) == lost_pending > 0
    buf.mark_alarm_published(alarms[0].id)
    assert len(buf.unpublished_alarms()) == len(alarms) - 1
    buf.close()


# --- reconnect policy --------------------------------------------------------------------------------------------

def test_reconnect_policy_every_5s_ten_times_then_exponential(tmp_path, caplog):
    policy = ReconnectPolicy()
    assert [policy.delay(n) for n in range(1, 18)] == [5] * 10 + [10, 20, 40, 80, 160, 300, 300]

    # the real connect loop against a closed port, with a fake sleep that records instead of waiting
    platform = parse(config_dict(tmp_path, f"mqtt://127.0.0.1:{free_port()}")).platform
    slept: list[float] = []
    pub = None

    def fake_sleep(seconds):
        slept.append(seconds)
        if len(slept) >= 16:
            pub._stop.set()

    pub = Publisher(platform, sources=list(SOURCES), on_connected=lambda: None, on_disconnected=lambda: None,
                    on_puback=lambda mid: None, on_message=lambda t, p: None, sleep=fake_sleep)
    with caplog.at_level(logging.WARNING, logger="apps.edge.publisher"):
        pub.run()
    assert slept == [5] * 10 + [10, 20, 40, 80, 160, 300]
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 16  # the first attempt and 15 retries, each logged


# --- end to end, in-process agent with a manual clock ------------------------------------------------------------

@needs_mosquitto
def test_end_to_end_tls_order_commands_and_72h_outage(tmp_path):
    ca = make_ca(tmp_path / "ca")
    with Mosquitto(tmp_path / "broker", tls_ca=ca) as broker:
        sub = TestClient.connect(broker.url, "platform-1", protocol=4)
        sub.subscribe(f"carbonpark/{PARK}/#")
        got = Collector()
        cfg = parse(config_dict(tmp_path, broker.tls_url, ca_file=ca.cert_file))
        clock = ManualClock(T0 - 2000)
        gate = threading.Event()
        gate.set()

        def gated_sleep(seconds):  # the real 5 s policy, but the test may hold reconnects back
            agent.publisher._stop.wait(seconds)
            while not gate.wait(0.05) and not agent.publisher.stopped:
                pass

        agent = Agent(cfg, clock=clock, sleep=gated_sleep)
        with InThread(agent) as run:
            wait_until(lambda: agent.online, 10, "agent online over TLS")
            # live: 3 polls per source, in time order, not backfill; the out-of-range value is flagged T
            run.advance(clock, 3000, 2)          # T0: both sources (source 2 is staggered by 1 s)
            run.advance(clock, FIVE_MIN, 4)
            run.advance(clock, FIVE_MIN, 6)
            got.drain(sub, lambda: len(got.records) == 6)
            for source in SOURCES:
                mine = [r for r in got.records if r["sourceId"] == source]
                assert [r["timestamp"] for r in mine] == sorted(r["timestamp"] for r in mine)
                assert not any(r["backfill"] for r in mine)
            em2 = [r for r in got.records if r["sourceId"] == SOURCES[1]]
            assert [(r["value"], r["status"]) for r in em2] == [(10.0, "N"), (250.0, "T"), (20.0, "N")]
            assert em2[0]["timestamp"] == "2026-11-23 00:00:01.000" and em2[0]["unit"] == "kW"
            assert agent.stats["out_of_range"] == 1
            statuses = {t: p for t, p in got.other if t.endswith("/status")}
            gateway = statuses[f"carbonpark/{PARK}/EP01-GW-01/status"]
            assert gateway["state"] == "online" and set(gateway["devices"]) == set(SOURCES)
            assert gateway["refused"] == {}
            assert statuses[f"carbonpark/{PARK}/{SOURCES[0]}/status"]["state"] == "online"
            wait_until(lambda: run.call(agent.buffer.pending_count) == 0, 5, "all acknowledged")
            assert run.call(agent.buffer.last_acked, SOURCES[0]) == T0 + 2 * FIVE_MIN

            # commands: set_interval ok / out of range, poll_now, resend, unknown
            cmd = f"carbonpark/{PARK}/{SOURCES[0]}/cmd"
            sub.publish(cmd, json.dumps({"cmdId": "c1", "type": "set_interval", "params": {"seconds": 600}}))
            sub.publish(cmd, json.dumps({"cmdId": "c2", "type": "set_interval", "params": {"seconds": 30}}))
            sub.publish(cmd, json.dumps({"cmdId": "c3", "type": "reboot"}))
            got.drain(sub, lambda: {"c1", "c2", "c3"} <= set(got.acks()))
            acks = got.acks()
            assert acks["c1"]["result"] == "ok" and acks["c2"]["result"] == "error" and acks["c3"]["result"] == "error"
            assert "60-3600" in acks["c2"]["message"]
            assert agent.intervals[SOURCES[0]] == 600
            assert run.call(agent.buffer.get_state, f"interval:{SOURCES[0]}") == "600"
            # 600 s: after 5 more minutes only source 2 polls; after 10, both
            run.advance(clock, FIVE_MIN, 7)
            run.advance(clock, FIVE_MIN, 9)
            got.drain(sub, lambda: len(got.records) == 9)
            assert [r["timestamp"][11:16] for r in got.records[6:] if r["sourceId"] == SOURCES[0]] == ["00:20"]
            sub.publish(cmd, json.dumps({"cmdId": "c4", "type": "set_interval", "params": {"seconds": 300}}))
            sub.publish(cmd, json.dumps({"cmdId": "c5", "type": "poll_now"}))
            got.drain(sub, lambda: "c5" in got.acks() and len(got.records) == 10)
            assert agent.stats["polls"] == 10
            sub.publish(cmd, json.dumps({"cmdId": "c6", "type": "resend",
                                         "params": {"from": "2026-11-23 00:00:00", "to": "2026-11-23 00:05:00"}}))
            got.drain(sub, lambda: "c6" in got.acks() and len(got.records) == 12)
            assert got.acks()["c6"] == {"cmdId": "c6", "result": "ok", "message": "2 readings queued for resend"}
            assert [(r["timestamp"][11:19], r["backfill"]) for r in got.records[10:]] == [
                ("00:00:00", True), ("00:05:00", True)]
            wait_until(lambda: run.call(agent.buffer.pending_count) == 0, 5, "all acknowledged")
            # bring polls back onto the 5-minute grid from here: the next due of source 1 is now + 300 s
            live = len(got.records)
            polls = agent.stats["polls"]

            # --- the broker crashes; 72 h of 5-minute polls are buffered ------------------------------------------
            gate.clear()
            broker.kill()
            wait_until(lambda: not agent.online, 10, "agent notices the outage")
            for _ in range(864):
                polls += 2
                run.advance(clock, FIVE_MIN, polls)
            assert run.call(agent.buffer.pending_count) == 1728
            broker.start()
            sub2 = TestClient.connect(broker.url, "platform-2", protocol=4)
            sub2.subscribe(f"carbonpark/{PARK}/+/data")
            got2 = Collector()
            gate.set()
            got2.drain(sub2, lambda: len(got2.records) >= 1728, timeout=30)
            assert sub2.nothing(0.5)  # nothing more arrives: exactly once
            assert len(got2.records) == 1728
            assert len({identity(r) for r in got2.records}) == 1728
            assert all(r["backfill"] for r in got2.records)
            stamps = [r["timestamp"] for r in got2.records]
            assert stamps == sorted(stamps)  # the cache first, in time order (R-8.4.2.1)
            for source in SOURCES:
                mine = [r for r in got2.records if r["sourceId"] == source]
                assert len(mine) == 864
                assert len({r["timestamp"] for r in mine}) == 864
            stored = {(r.source_id, r.data_code, format_ts(r.ts_ms, TZ)) for r in run.call(agent.buffer.all_rows)}
            assert {identity(r) for r in got.records[:live]} | {identity(r) for r in got2.records} == stored
            wait_until(lambda: run.call(agent.buffer.pending_count) == 0, 5, "all acknowledged")
            last = run.call(agent.buffer.last_acked, SOURCES[0])
            assert format_ts(last, TZ) == max(r["timestamp"] for r in got2.records if r["sourceId"] == SOURCES[0])
            sub2.close()
        sub.close()


@needs_mosquitto
def test_eviction_alarm_is_published(tmp_path):
    with Mosquitto(tmp_path / "broker") as broker:
        port = broker.port
        # The platform's subscription as a persistent session (QoS 1), made while the broker runs: the alarm is
        # queued for it whenever the agent publishes it after the restart, however fast the agent reconnects (a
        # subscription made after the restart can come too late: the retained status is overwritten by then).
        sub = TestClient.connect(broker.url, "platform-evictions", protocol=4, clean_start=False)
        sub.subscribe(f"carbonpark/{PARK}/EP01-GW-01/status")
        sub.close()
        broker.stop()
        cfg = parse(config_dict(tmp_path, f"mqtt://127.0.0.1:{port}", max_bytes=48 * 1024))
        clock = ManualClock(T0 - 2000)
        agent = Agent(cfg, clock=clock, policy=ReconnectPolicy(fast_delay_s=0.2, fast_attempts=10**6))
        with InThread(agent) as run:
            polls = 0
            for _ in range(600):
                polls += 2
                run.advance(clock, FIVE_MIN, polls)
            assert run.call(agent.buffer.unpublished_alarms)
            broker.start()
            sub = TestClient.connect(broker.url, "platform-evictions", protocol=4, clean_start=False)
            got = Collector()
            got.drain(sub, lambda: any("alarm" in p for _, p in got.other), timeout=15)
            alarm = next(p for _, p in got.other if "alarm" in p)
            assert alarm["alarm"] == "buffer_evicted" and alarm["evicted"] > 0 and alarm["state"] == "online"
            sub.close()


# --- the real process, killed with SIGKILL -----------------------------------------------------------------------

def read_accepted(db_path: Path) -> set[tuple]:
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute("SELECT source_id, data_code, ts_ms FROM readings").fetchall()
    finally:
        db.close()
    return {(s, c, format_ts(ts, TZ)) for s, c, ts in rows}


def read_pending(db_path: Path) -> int:
    db = sqlite3.connect(db_path)
    try:
        return db.execute("SELECT COUNT(*) FROM readings WHERE acked_ms IS NULL").fetchone()[0]
    finally:
        db.close()


@needs_mosquitto
def test_sigkill_loses_nothing_and_last_will(tmp_path):
    with Mosquitto(tmp_path / "broker") as broker:
        conf = tmp_path / "edge.toml"
        # one poll per device every 60 virtual seconds = every 0.1 s of real time
        conf.write_text(toml_text(config_dict(tmp_path, broker.url, interval_s=60, time_scale=600)))
        db_path = tmp_path / "buffer.sqlite3"
        sub = TestClient.connect(broker.url, "platform", protocol=4, clean_start=False)
        sub.subscribe(f"carbonpark/{PARK}/#")
        got = Collector()
        args = [sys.executable, "-m", "apps.edge", "--config", str(conf)]
        log1 = open(tmp_path / "agent1.log", "wb")  # noqa: SIM115
        agent1 = subprocess.Popen(args, cwd=REPO, stdout=log1, stderr=subprocess.STDOUT)
        try:
            got.drain(sub, lambda: len(got.records) >= 6)  # live
            sub.disconnect()  # the persistent session keeps queueing for us
            got.drain_rest(sub)
            broker.stop()  # SIGTERM: Mosquitto saves the sessions
            time.sleep(1.0)  # the agent buffers while the broker is away
            agent1.send_signal(signal.SIGKILL)
            agent1.wait(10)
        finally:
            if agent1.poll() is None:
                agent1.kill()
            log1.close()
        accepted_at_kill = read_accepted(db_path)
        assert read_pending(db_path) > 0
        broker.start()
        sub = TestClient.connect(broker.url, "platform", protocol=4, clean_start=False)
        agent2 = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            received = lambda: {identity(r) for r in got.records}  # noqa: E731
            got.drain(sub, lambda: accepted_at_kill <= received(), timeout=20)
            agent2.send_signal(signal.SIGTERM)
            assert agent2.wait(30) == 0  # a clean exit on SIGTERM; 15 s was seen too short on a loaded machine
        finally:
            if agent2.poll() is None:
                agent2.kill()
        assert read_pending(db_path) == 0  # everything acknowledged before the graceful stop
        got.drain(sub, lambda: read_accepted(db_path) <= received(), timeout=10)
        assert read_accepted(db_path) == received()  # nothing lost, nothing invented
        # the graceful stop said offline for each source
        got.drain(sub, lambda: (f"carbonpark/{PARK}/{SOURCES[0]}/status", {"state": "offline"}) in got.other)

        # Last Will: a third run is killed while connected; the broker announces the gateway offline
        gateway = f"carbonpark/{PARK}/EP01-GW-01/status"
        got.other.clear()
        agent3 = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            got.drain(sub, lambda: any(t == gateway and p["state"] == "online" for t, p in got.other))
            got.other.clear()
            agent3.send_signal(signal.SIGKILL)
            agent3.wait(10)
        finally:
            if agent3.poll() is None:
                agent3.kill()
        got.drain(sub, lambda: (gateway, {"state": "offline"}) in got.other, timeout=10)
        sub.close()


def test_readme_example_config_is_valid():
    readme = (REPO / "apps" / "edge" / "README.md").read_text()
    example = readme.split("```toml", 1)[1].split("```", 1)[0]
    data = tomllib.loads(example)
    data["platform"].pop("ca_file")  # the example's CA path does not exist here
    cfg = parse(data)
    assert cfg.platform.tls and cfg.buffer.max_bytes >= 2 * 10**9 and cfg.devices


@pytest.mark.filterwarnings("ignore")
def test_modbus_tcp_driver_reads_a_real_server(tmp_path):
    import struct

    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
    from pymodbus.server import ModbusTcpServer

    from apps.edge.drivers import ModbusTcpDriver

    async def scenario():
        port = free_port()
        regs = [*struct.unpack(">HH", struct.pack(">f", 12.5)), 0xFFFF, 0, 1234]
        block = lambda: ModbusSequentialDataBlock(1, list(regs))  # noqa: E731 - pymodbus: request address 0 = 1
        context = ModbusServerContext(devices=ModbusDeviceContext(hr=block(), ir=block()), single=True)
        server = ModbusTcpServer(context, address=("127.0.0.1", port))
        serving = asyncio.create_task(server.serve_forever())
        try:
            await asyncio.sleep(0.2)
            data = config_dict(tmp_path, "mqtt://127.0.0.1:1")
            data["device"] = [{"source_id": "EP01-PLC-01", "driver": "modbus_tcp", "port": port, "points": [
                {"data_code": "CS010201", "address": 0, "type": "float32"},
                {"data_code": "CS010202", "address": 2, "type": "int16", "register": "input"},
                {"data_code": "CS010203", "address": 3, "type": "uint32", "scale": 0.5}]}]
            driver = ModbusTcpDriver(parse(data).devices[0])
            try:
                return await driver.read()
            finally:
                await driver.close()
        finally:
            await server.shutdown()
            serving.cancel()

    assert asyncio.run(scenario()) == {"CS010201": 12.5, "CS010202": -1.0, "CS010203": 617.0}


# --- field drivers on the platform's pollers (issue #4) ------------------------------------------------------------

def field_config(tmp_path: Path, url: str, devices: list[dict]) -> dict:
    data = config_dict(tmp_path, url)
    data["device"] = devices
    return data


class LatencyProbe:
    """Wraps the running agent's ``buffer.put``: for each record stored, the time from its driver's request
    to the record being in the buffer (R-5.2.1.3: protocol conversion within 1 s), per source."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.seconds: dict[str, list[float]] = {}
        put = agent.buffer.put

        def timed_put(readings):
            stored = put(readings)
            done = time.perf_counter()
            for source in {r.source_id for r in readings}:
                self.seconds.setdefault(source, []).append(done - agent.drivers[source].requested_at)
            return stored
        agent.buffer.put = timed_put


def test_field_driver_config(tmp_path):
    from apps.edge.drivers import Dlt645TcpDriver, ModbusDriver, make_driver

    devices = [
        {"source_id": "EP01-EM-0001", "driver": "modbus_tcp", "host": "10.0.0.5", "port": 5020, "unit_id": 1,
         "map": "eastron-sdm630", "codes": {"import_energy": "CS010201"},
         "points": [{"name": "total_power", "data_code": "CS010202", "max": 1e6}]},
        {"source_id": "EP01-EM-0002", "driver": "modbus_tcp", "host": "10.0.0.5", "port": 5020, "unit_id": 2,
         "points": [{"data_code": "CS010201", "function": 4, "address": 0x48, "type": "float32", "unit": "kWh"},
                    {"data_code": "CS010203", "address": 0, "type": "uint32", "scale": 0.01, "word_order": "little"}]},
        {"source_id": "EP01-EM-0003", "driver": "modbus_rtu", "serial": "/dev/ttyUSB7", "baudrate": 9600,
         "unit_id": 3, "map": "acrel-ddsy1352", "codes": {"total_energy": "CS010201"}},
        {"source_id": "EP01-DL-0001", "driver": "dlt645_tcp", "host": "10.0.0.6", "port": 8899,
         "address": "000102030425", "points": [{"di": "00010000", "data_code": "CS010201", "unit": "kWh"}]},
    ]
    cfg = parse(field_config(tmp_path, "mqtt://127.0.0.1:1", devices))
    em1, em2, em3, dl1 = cfg.devices
    assert [(p.name, p.data_code, p.unit) for p in em1.points] == [
        ("total_power", "CS010202", "W"), ("import_energy", "CS010201", "kWh")]  # units from the map
    assert [p.function for p in em2.points] == [4, 3] and em3.points[0].unit == "kWh"
    assert em1.bus == em2.bus != em3.bus and dl1.bus == ("dlt645", "10.0.0.6", 8899)

    def broken(index, change, message):
        data = field_config(tmp_path, "mqtt://127.0.0.1:1", json.loads(json.dumps(devices)))
        change(data["device"][index])
        with pytest.raises(ConfigError, match=message):
            parse(data)

    broken(0, lambda d: d.update(map="sdm999"), "map must be one of")
    broken(0, lambda d: d["points"][0].update(name="colour"), "has no point 'colour'")
    broken(1, lambda d: d["points"][0].update(function=6), "function must be 3")
    broken(1, lambda d: d["points"][0].update(type="float16"), "type must be one of")
    broken(1, lambda d: d.update(unit_id=1), "unit_id 1 is already EP01-EM-0001's")
    broken(1, lambda d: d.update(timeout_s=1.0), "timeout_s and baudrate must be the same")
    broken(2, lambda d: d.pop("serial"), "modbus_rtu needs serial")
    broken(3, lambda d: d.update(address="12345"), "12-digit address")
    broken(3, lambda d: d["points"][0].pop("di"), "di must be")
    broken(3, lambda d: d.update(codes={"x": "CS010201"}), "codes needs a map")

    async def build():  # devices on one host:port (or serial port) share ONE poller
        drivers = {d.source_id: make_driver(d) for d in cfg.devices}
        try:
            return drivers, [drivers[d.source_id].poller for d in cfg.devices]
        finally:
            for driver in drivers.values():
                await driver.close()

    drivers, pollers = asyncio.run(build())
    assert pollers[0] is pollers[1] and len({id(p) for p in pollers}) == 3
    assert [m.unit for m in pollers[0].devices] == [1, 2]
    assert isinstance(drivers["EP01-EM-0003"], ModbusDriver) and isinstance(drivers["EP01-DL-0001"], Dlt645TcpDriver)
    assert type(pollers[2].client).__name__ == "AsyncModbusSerialClient"  # RTU: constructed, not run here
    assert len(pollers[0].devices[0].plan) == 2  # only the configured points are read


def test_edge_imports_no_framework_at_runtime():
    script = ("import sys, apps.edge.agent, apps.edge.drivers, apps.protocols.pollers.modbus, "
              "apps.protocols.pollers.dlt645; assert not [m for m in sys.modules if m.startswith('django')]")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


@needs_mosquitto
def test_modbus_tcp_agent_with_a_silent_unit_backed_off(tmp_path):
    from apps.protocols.simulators import modbus_meter

    sim_box: dict = {}
    ready = threading.Event()

    async def serve():  # the simulator on its own loop and thread, like a meter on the network
        sim_box["sim"] = await modbus_meter.start(units=2, silent_units={1})
        sim_box["stop"] = asyncio.Event()
        sim_box["loop"] = asyncio.get_running_loop()
        ready.set()
        await sim_box["stop"].wait()
        await sim_box["sim"].stop()

    sim_thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    sim_thread.start()
    assert ready.wait(10)
    sim = sim_box["sim"]
    live, dead = "EP01-EM-0002", "EP01-EM-0001"
    try:
        with Mosquitto(tmp_path / "broker") as broker:
            sub = TestClient.connect(broker.url, "platform", protocol=4)
            sub.subscribe(f"carbonpark/{PARK}/+/data")
            got = Collector()
            common = {"driver": "modbus_tcp", "host": "127.0.0.1", "port": sim.port, "timeout_s": 0.5,
                      "map": "eastron-sdm630", "codes": {"import_energy": "CS010201"},
                      "points": [{"name": "total_power", "data_code": "CS010202"}]}
            cfg = parse(field_config(tmp_path, broker.url, [{"source_id": dead, "unit_id": 1, **common},
                                                            {"source_id": live, "unit_id": 2, **common}]))
            clock = ManualClock(T0 - 2000)
            agent = Agent(cfg, clock=clock)
            with InThread(agent) as run:
                probe = LatencyProbe(agent)
                assert agent.drivers[live].poller is agent.drivers[dead].poller  # one bus, one poller
                wait_until(lambda: agent.online, 10, "agent online")
                # round 1 (staggered 1 s apart): the silent unit times out (0.5 s) and is backed off
                run.advance(clock, 2000, 1)
                run.advance(clock, 1000, 2)
                assert sim.requests.get(1) == 1 and agent.drivers[dead].member.backoff.failures == 1
                took = []
                for n in range(2, 6):  # rounds 2-5: both devices due at the same moment
                    before = agent.stats["polls"]
                    t = time.perf_counter()
                    run.advance(clock, FIVE_MIN, before + 2)
                    took.append(time.perf_counter() - t)
                    if n == 2:
                        assert sim.requests.get(1) == 1  # backed off: not even asked
                got.drain(sub, lambda: len(got.records) == 10)
                assert sub.nothing(0.3)
        # a dead unit tried in rounds 1 and 3 only (skipped 1, then 2 polls), and never stalls the live one
        assert sim.requests.get(1) == 2
        assert agent.stats["read_errors"] == 5 and agent.stats["accepted"] == 10
        assert {r["sourceId"] for r in got.records} == {live}
        energy = [r["value"] for r in got.records if r["dataCode"] == "CS010201"]
        assert len(energy) == 5 and all(2000 <= v < 2100 for v in energy) and energy == sorted(energy)
        assert {r["unit"] for r in got.records if r["dataCode"] == "CS010202"} == {"W"}
        assert [r["timestamp"][11:19] for r in got.records if r["dataCode"] == "CS010201"] == [
            "00:00:01", "00:05:01", "00:10:01", "00:15:01", "00:20:01"]
        # R-5.2.1.3: request -> record in the buffer within 1 s, for every poll of the live unit; with the dead
        # unit backed off the live unit's rounds are not held up by its timeout
        assert len(probe.seconds[live]) == 5 and max(probe.seconds[live]) <= 1.0, probe.seconds
        assert dead not in probe.seconds
        assert max(took[0], took[2], took[3]) < 0.45, took  # rounds 2, 4, 5: no 0.5 s timeout on the bus
    finally:
        sim_box["loop"].call_soon_threadsafe(sim_box["stop"].set)
        sim_thread.join(10)


@needs_mosquitto
def test_dlt645_tcp_agent_behind_a_transparent_gateway(tmp_path):
    from apps.protocols.simulators import dlt645_meter

    sim_box: dict = {}
    ready = threading.Event()

    async def serve():
        sim_box["sim"] = await dlt645_meter.start(addresses=["000102030425", "000102030426"], preamble=4,
                                                  garbage=b"\x00\xfe\x55", chunk=7)
        sim_box["stop"] = asyncio.Event()
        sim_box["loop"] = asyncio.get_running_loop()
        ready.set()
        await sim_box["stop"].wait()
        await sim_box["sim"].stop()

    sim_thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    sim_thread.start()
    assert ready.wait(10)
    sim = sim_box["sim"]
    try:
        with Mosquitto(tmp_path / "broker") as broker:
            sub = TestClient.connect(broker.url, "platform", protocol=4)
            sub.subscribe(f"carbonpark/{PARK}/+/data")
            got = Collector()
            points = [{"di": "00010000", "data_code": "CS010201", "unit": "kWh"},
                      {"di": "02010100", "data_code": "CS010204", "unit": "V", "min": 200.0, "max": 240.0}]
            devices = [{"source_id": f"EP01-DL-00{a[-2:]}", "driver": "dlt645_tcp", "host": "127.0.0.1",
                        "port": sim.port, "address": a, "timeout_s": 0.5, "points": points}
                       for a in ("000102030425", "000102030426", "000102030499")]  # the last one is absent
            cfg = parse(field_config(tmp_path, broker.url, devices))
            clock = ManualClock(T0 - 2000)
            agent = Agent(cfg, clock=clock)
            with InThread(agent) as run:
                probe = LatencyProbe(agent)
                assert len({id(d.poller) for d in agent.drivers.values()}) == 1  # one gateway, one poller
                wait_until(lambda: agent.online, 10, "agent online")
                run.advance(clock, 2000, 1)
                run.advance(clock, 1000, 2)
                run.advance(clock, 1000, 3)
                run.advance(clock, FIVE_MIN, 6)
                got.drain(sub, lambda: len(got.records) == 8)
        by_source = {}
        for r in got.records:
            by_source.setdefault(r["sourceId"], []).append(r)
        assert sorted(by_source) == ["EP01-DL-0025", "EP01-DL-0026"]
        energy = [r for r in by_source["EP01-DL-0026"] if r["dataCode"] == "CS010201"]
        assert [r["timestamp"][11:19] for r in energy] == ["00:00:01", "00:05:01"]
        assert all(1306 <= r["value"] < 1310 and r["unit"] == "kWh" for r in energy)
        volts = [r for r in got.records if r["dataCode"] == "CS010204"]
        assert len(volts) == 4 and all(r["status"] == "N" and r["unit"] == "V" for r in volts)
        assert agent.stats["read_errors"] == 2  # the absent meter: timed out, then backed off
        assert agent.drivers["EP01-DL-0099"].member.backoff.failures == 1
        for source in ("EP01-DL-0025", "EP01-DL-0026"):
            assert len(probe.seconds[source]) == 2 and max(probe.seconds[source]) <= 1.0, probe.seconds
    finally:
        sim_box["loop"].call_soon_threadsafe(sim_box["stop"].set)
        sim_thread.join(10)


def test_dlt645_serial_driver_config_and_shared_line(tmp_path):
    """dlt645_serial: meters on one RS-485 line share one poller (one transaction at a time), 8E1 by default."""
    from apps.edge import config as edge_config
    from apps.edge.drivers import make_driver

    raw = {
        "platform": {"mqtt_url": "mqtt://127.0.0.1:1", "park": "TP01", "client_id": "gw"},
        "buffer": {"path": str(tmp_path / "b.sqlite3"), "max_bytes": 1 << 20, "allow_small_for_tests": True},
        "device": [
            {"source_id": f"TP01-DL-{n}", "driver": "dlt645_serial", "serial": "/dev/ttyS9", "baudrate": 2400,
             "address": f"00010203042{n}", "points": [{"di": "00010000", "data_code": "CS010201", "unit": "kWh"}]}
            for n in (5, 6)],
    }
    cfg = edge_config.parse(raw, tmp_path)
    assert [d.bus for d in cfg.devices] == [("serial", "/dev/ttyS9")] * 2
    async def build():  # shared per event loop, as the agent runs them
        return [make_driver(d) for d in cfg.devices]

    drivers = asyncio.run(build())
    poller = drivers[0].poller
    assert drivers[1].poller is poller and [m.address for m in poller.meters] == ["000102030425", "000102030426"]
    assert poller.line.port == "/dev/ttyS9" and poller.line.baudrate == 2400  # opened on the first poll
    import serial as pyserial

    assert poller.line.parity == pyserial.PARITY_EVEN  # DL/T 645-2007: 8E1
    bad = dict(raw, device=[dict(raw["device"][0], parity="X")])
    with pytest.raises(edge_config.ConfigError, match="parity"):
        edge_config.parse(bad, tmp_path)
    no_port = dict(raw, device=[{k: v for k, v in raw["device"][0].items() if k != "serial"}])
    with pytest.raises(edge_config.ConfigError, match="serial"):
        edge_config.parse(no_port, tmp_path)
