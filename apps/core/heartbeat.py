"""Heartbeats of the long-running processes, kept in Redis, read by /healthz and /metrics
(R-5.2.3.1 and R-5.2.3.2 d: access-state monitoring).

Each process instance that ingests or schedules (the MQTT consumer, the HJ 212 listener, a Celery worker,
Celery beat) writes one field of the hash ``carbonpark:heartbeat:<component>``: its instance name (stable
across restarts: a consumer's client id, a worker's node name, so that a restarted process takes over its
own entry) mapped to JSON ``{"ts": <unix time>, "host", "pid", …fields of the component}``. It writes every
``HEARTBEAT_INTERVAL_S`` seconds from a daemon thread (or an asyncio task), and removes its field when it
stops cleanly. A process that is frozen (SIGSTOP, a hung loop) or killed stops writing: its entry ages, and
the reader calls it stalled. Entries older than ``HEALTH_FORGET_S`` are dropped at read time (an instance
that was scaled away without a clean stop), after which an expected component with no instance is missing.

No Django app is imported here; the Redis URL and the thresholds come from settings when Django is
configured, else from the environment.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("carbonpark.heartbeat")

KEY_PREFIX = "carbonpark:heartbeat:"
COMPONENTS = ("mqtt", "hj212", "worker", "beat")


def _setting(name: str, default):
    try:
        from django.conf import settings

        if settings.configured:
            return getattr(settings, name, default)
    except ImportError:  # pragma: no cover - Django is always installed with the product
        pass
    return os.environ.get(name, default)


def _redis():
    import redis

    url = _setting("REDIS_URL", "redis://127.0.0.1:6379/0")
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)


def interval() -> float:
    return float(_setting("HEARTBEAT_INTERVAL_S", 5.0))


class Heartbeat:
    """One process instance's heartbeat. ``state()`` (optional) returns extra JSON-able fields, read at
    each beat. Use ``start()``/``stop()`` for a thread, or ``beat()`` directly, or ``run_async()``."""

    def __init__(self, component: str, instance: str, state: Callable[[], dict] | None = None):
        self.component, self.instance, self.state = component, instance, state
        self.key = KEY_PREFIX + component
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = None
        self._failing = False

    def beat(self) -> None:
        """Write this instance's entry now. A Redis failure is logged once per outage, never raised."""
        try:
            body = {"ts": time.time(), "host": socket.gethostname(), "pid": os.getpid()}
            if self.state is not None:
                body.update(self.state())
            if self._client is None:
                self._client = _redis()
            pipe = self._client.pipeline()
            pipe.hset(self.key, self.instance, json.dumps(body))
            # The whole hash goes if no instance of this component beats for a long time.
            pipe.expire(self.key, int(forget_after()) + 60)
            pipe.execute()
            if self._failing:
                log.warning("heartbeat %s/%s: Redis answers again", self.component, self.instance)
            self._failing = False
        except Exception as exc:  # noqa: BLE001 - a heartbeat must never take its process down
            if not self._failing:
                log.warning("heartbeat %s/%s not written: %s", self.component, self.instance, exc)
            self._failing = True

    def start(self) -> Heartbeat:
        self._stop.clear()
        self.beat()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{self.component}", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(interval()):
            self.beat()

    async def run_async(self) -> None:
        """Beat from the event loop itself, so that a blocked loop shows as stalled (Redis in a thread)."""
        import asyncio

        while True:
            await asyncio.to_thread(self.beat)
            await asyncio.sleep(interval())

    def stop(self) -> None:
        """A clean stop: the entry is removed, so a stopped instance is not reported as stalled."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        try:
            (self._client or _redis()).hdel(self.key, self.instance)
        except Exception as exc:  # noqa: BLE001
            log.warning("heartbeat %s/%s not removed: %s", self.component, self.instance, exc)


# --- reading ---------------------------------------------------------------------------------------

def forget_after() -> float:
    return float(_setting("HEALTH_FORGET_S", 600.0))


def expected_components() -> list[str]:
    value = _setting("HEALTH_EXPECT", ",".join(COMPONENTS))
    if isinstance(value, str):
        value = value.split(",")
    return [c.strip() for c in value if c and c.strip()]


@dataclass
class Instance:
    component: str
    name: str
    age: float
    status: str = "ok"
    reason: str = ""
    fields: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"instance": self.name, "status": self.status, "age": round(self.age, 1)}
        if self.reason:
            out["reason"] = self.reason
        for k in ("host", "pid", "pending", "oldestPendingAge", "lastCommitAge", "brokerDownFor"):
            if k in self.fields:
                out[k] = self.fields[k]
        return out


def read(client=None, now: float | None = None) -> dict[str, list[Instance]]:
    """Every instance that beat within HEALTH_FORGET_S, by component, with its age and verdict.
    Raises the Redis client's error when Redis does not answer."""
    client = client or _redis()
    now = time.time() if now is None else now
    stale_s = float(_setting("HEALTH_STALE_S", 30.0))
    lag_s = float(_setting("HEALTH_MQTT_LAG_S", 60.0))
    forget = forget_after()
    pipe = client.pipeline()
    names = sorted(set(COMPONENTS) | set(expected_components()))
    for c in names:
        pipe.hgetall(KEY_PREFIX + c)
    out: dict[str, list[Instance]] = {}
    for component, entries in zip(names, pipe.execute()):
        found = []
        for raw_name, raw in entries.items():
            name = raw_name.decode(errors="replace")
            try:
                body = json.loads(raw)
                age = now - float(body["ts"])
            except (ValueError, KeyError, TypeError):
                client.hdel(KEY_PREFIX + component, raw_name)
                continue
            if age > forget:
                client.hdel(KEY_PREFIX + component, raw_name)
                continue
            inst = Instance(component, name, max(age, 0.0), fields={"host": body.get("host"), "pid": body.get("pid")})
            if component == "mqtt":
                _mqtt_lag(inst, body, now, lag_s, stale_s)
            if inst.age > stale_s:
                inst.status, inst.reason = "stalled", f"no heartbeat for {inst.age:.0f} s (threshold {stale_s:g} s)"
            found.append(inst)
        out[component] = sorted(found, key=lambda i: i.name)
    return out


def _mqtt_lag(inst: Instance, body: dict, now: float, lag_s: float, stale_s: float) -> None:
    """Messages received but not yet committed, the age of the oldest one, the last commit's age, and
    how long the broker connection has been down (a consumer that cannot reach its broker ingests nothing)."""
    pending = int(body.get("pending") or 0)
    inst.fields["pending"] = pending
    oldest = body.get("oldest_at")
    inst.fields["oldestPendingAge"] = round(now - float(oldest), 1) if pending and oldest else 0.0
    last = body.get("last_commit_at")
    inst.fields["lastCommitAge"] = round(now - float(last), 1) if last else None
    down = body.get("broker_down_since")
    inst.fields["brokerDownFor"] = round(now - float(down), 1) if down else None
    if inst.fields["oldestPendingAge"] > lag_s:
        inst.status = "stalled"
        inst.reason = (f"{pending} messages received and not committed, the oldest for "
                       f"{inst.fields['oldestPendingAge']:.0f} s (threshold {lag_s:g} s)")
    elif down and now - float(down) > stale_s:
        inst.status = "stalled"
        inst.reason = f"not connected to the MQTT broker for {now - float(down):.0f} s (threshold {stale_s:g} s)"


def evaluate(instances: dict[str, list[Instance]]) -> dict[str, dict]:
    """Per component: status ok / stalled / missing, whether it is expected, and its instances."""
    expected = set(expected_components())
    out = {}
    for component, found in instances.items():
        if not found and component not in expected:
            continue
        if not found:
            status = "missing"
        elif any(i.status != "ok" for i in found):
            status = "stalled"
        else:
            status = "ok"
        out[component] = {"status": status, "expected": component in expected,
                          "instances": [i.to_json() for i in found]}
    return out
