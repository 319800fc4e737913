"""Simulated devices: publisher processes, each with a few paho-mqtt 2.x connections (gateways)
publishing QoS 1 JSON arrays, one source's consecutive readings per message, to
``carbonpark/{park}/{sourceId}/data``.

Every connection owns a disjoint set of sources and walks them round-robin; a message carries the next
10-50 (``--per-message``) minutes of one source, so no reading is ever a duplicate. Payloads are built
before the start signal. A connection keeps at most ``window`` messages unacknowledged (its own flow
control, so that the time taken at publish() is the time the message goes out, not when it was queued
in the client); a message counts as published once the broker's PUBACK is in."""

from __future__ import annotations

import random
import signal
import threading
import time

from .common import ITEM_CODE, PARK_TZ, topic_of, ts_of


def plan_messages(conn: int, n_conns: int, n_sources: int, readings: int, minute0: int, seed: int,
                  lo: int, hi: int) -> list[tuple[int, int, int]]:
    """(source index, first minute, readings) of each message of connection ``conn``."""
    rng = random.Random(seed * 1_000_003 + conn)
    sources = list(range(conn % n_sources, n_sources, n_conns)) or [conn % n_sources]
    cursor = dict.fromkeys(sources, minute0)
    out, k = [], 0
    while readings > 0:
        s = sources[k % len(sources)]
        k += 1
        n = min(rng.randint(lo, hi), readings)
        out.append((s, cursor[s], n))
        cursor[s] += n
        readings -= n
    return out


def add_poison(plan, conn: int, n_conns: int, every: int) -> list[tuple[int, int, int]]:
    """``plan`` with a poison message (readings 0; first minute -1: the NUL byte, -2: the deep nesting,
    alternately, starting with the connection's parity) inserted so that the connections together send
    one every ``every`` messages, the connections offset from each other."""
    if not every:
        return plan
    offset = conn * every // n_conns  # each connection 1 in ``every`` of its own: 1 in ``every`` in all
    out, kind = [], conn % 2
    for i, msg in enumerate(plan):
        out.append(msg)
        if (i + 1 + offset) % every == 0:
            out.append((msg[0], -1 - kind, 0))
            kind ^= 1
    return out


def build_payloads(plan, source_ids: list[str]) -> list[tuple[str, bytes, int]]:
    import zoneinfo

    import orjson

    from .common import POISON_PAYLOADS

    tz = zoneinfo.ZoneInfo(PARK_TZ)
    local: dict[int, str] = {}

    def stamp(m):
        s = local.get(m)
        if s is None:
            s = local[m] = ts_of(m).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        return s

    out = []
    for s, m0, n in plan:
        sid = source_ids[s]
        if n == 0:  # a poison message (add_poison)
            out.append((topic_of(sid), POISON_PAYLOADS[-1 - m0], 0))
            continue
        records = [{"sourceId": sid, "dataCode": ITEM_CODE, "timestamp": stamp(m), "value": m * 0.5 + s,
                    "unit": "kWh", "status": "N"} for m in range(m0, m0 + n)]
        out.append((topic_of(sid), orjson.dumps(records), n))
    return out


class Gateway:
    """One paho connection with its own window of unacknowledged messages."""

    def __init__(self, name: str, host: str, port: int, window: int):
        import paho.mqtt.client as mqtt

        self.window = threading.Semaphore(window)
        self.lock = threading.Lock()
        self.pending: dict[int, int] = {}  # mid -> message index
        self.early: set[int] = set()       # PUBACKs seen before publish() returned the mid
        self.acked: list[float] = []       # per message: PUBACK time, 0 = none
        self.errors: list[str] = []
        self.connected = threading.Event()
        c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=name,
                        protocol=mqtt.MQTTv5)
        c.max_inflight_messages_set(window)
        c.max_queued_messages_set(0)
        c.on_connect = lambda *_a: self.connected.set()
        c.on_disconnect = lambda _c, _u, _f, rc, _p: self.errors.append(f"{name}: disconnected: {rc}")
        c.on_publish = self._on_publish
        c.connect(host, port, 60)
        c.loop_start()
        self.client = c

    def _on_publish(self, _c, _u, mid, reason_code, _p):
        now = time.time()
        with self.lock:
            idx = self.pending.pop(mid, None)
            if idx is None:
                self.early.add(mid)
            elif not reason_code.is_failure:
                self.acked[idx] = now
        if reason_code.is_failure:
            self.errors.append(f"PUBACK {reason_code}")
        self.window.release()

    def run(self, payloads, abort, rate: float | None) -> list[float]:
        """Publish everything (``rate``: readings/s of this connection, None = as fast as possible);
        returns each message's publish time (0 = not sent)."""
        self.acked = [0.0] * len(payloads)
        sent = [0.0] * len(payloads)
        t0, cum = time.time(), 0
        for i, (topic, body, n) in enumerate(payloads):
            if rate:
                delay = t0 + cum / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
                cum += n
            while not self.window.acquire(timeout=1):
                if abort.is_set():
                    return sent
            sent[i] = time.time()
            info = self.client.publish(topic, body, qos=1)
            with self.lock:
                if info.mid in self.early:
                    self.early.discard(info.mid)
                    self.acked[i] = time.time()
                else:
                    self.pending[info.mid] = i
        return sent

    def wait_acked(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def publisher_main(spec: dict, results, start_evt, abort_evt) -> None:
    """A publisher process (spawned): build, connect, report ready, publish on the start signal."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (terminate())
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    idx, conns, n_conns = spec["index"], spec["conns"], spec["n_conns"]
    plans, payloads, gateways = {}, {}, {}
    for c in conns:
        share = spec["readings"] // n_conns + (1 if c < spec["readings"] % n_conns else 0)
        plans[c] = add_poison(plan_messages(c, n_conns, len(spec["source_ids"]), share, spec["minute0"],
                                            spec["seed"], *spec["per_message"]), c, n_conns, spec.get("poison", 0))
        payloads[c] = build_payloads(plans[c], spec["source_ids"])
    try:
        for c in conns:
            gateways[c] = Gateway(f"bench-dev-{spec['phase']}-{c}", spec["host"], spec["port"], spec["window"])
            if not gateways[c].connected.wait(30):
                raise RuntimeError(f"device connection {c} got no CONNACK")
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put(("error", idx, repr(exc)))
        return
    results.put(("ready", idx, None))
    start_evt.wait()
    cpu0 = time.process_time()
    rate = spec["rate"] / n_conns if spec["rate"] else None
    sent: dict[int, list[float]] = {}

    def work(c):
        if rate:  # stagger the connections so that they do not publish in step
            time.sleep(random.Random(c).random() * 30 / rate)
        sent[c] = gateways[c].run(payloads[c], abort_evt, rate)

    threads = [threading.Thread(target=work, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_published = time.time()
    for c in conns:
        gateways[c].wait_acked(spec.get("ack_timeout", 120))
    messages, errors = [], []
    for c in conns:
        g = gateways[c]
        errors += g.errors
        messages += [(s, m0, n, sent[c][i], g.acked[i]) for i, (s, m0, n) in enumerate(plans[c])]
        g.close()
    results.put(("done", idx, {"messages": messages, "errors": errors[:20], "cpu": time.process_time() - cpu0,
                               "t_published": t_published}))
