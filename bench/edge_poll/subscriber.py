"""The subscriber (a child process): counts what the broker delivers and checks it against the buffered set."""

from __future__ import annotations

import json
import time

from .common import CODES, PARK, POINTS, T0_MS, TZ, value_of


def _child(conn, url: str, sources: int, minutes: int) -> None:
    import paho.mqtt.client as mqtt

    from apps.edge.agent import parse_ts

    got: list[bytes] = []
    times = [0.0, 0.0]
    subscribed = []

    def on_message(_c, _u, msg):
        now = time.perf_counter()
        if not got:
            times[0] = now
        times[1] = now
        got.append(msg.payload)

    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="bench-edge-sub",
                         protocol=mqtt.MQTTv311, clean_session=True)
    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.append(1)
    host, port = url.split("//")[1].split(":")
    client.connect(host, int(port), 120)
    client.subscribe(f"carbonpark/{PARK}/+/data", qos=1)
    client.loop_start()
    while not subscribed:
        time.sleep(0.01)
    conn.send("ready")
    conn.recv()  # the agent says every reading is acknowledged
    last = -1
    while len(got) != last:  # then until nothing more arrives for 2 s
        last = len(got)
        time.sleep(2.0)
    client.loop_stop()
    client.disconnect()

    n = sources * POINTS * minutes
    seen = bytearray(n)
    out = {"messages": len(got), "readings": 0, "unexpected": 0, "duplicates": 0, "not_backfill": 0,
           "bad_value": 0, "out_of_order": 0, "first_to_last_s": times[1] - times[0]}
    code_index = {c: i for i, c in enumerate(CODES)}
    newest: dict[int, int] = {}
    ts_cache: dict[str, int] = {}
    for payload in got:
        for rec in json.loads(payload):
            out["readings"] += 1
            s = int(rec["sourceId"].rsplit("-", 1)[1]) - 1
            c = code_index.get(rec["dataCode"], -1)
            ts = ts_cache.get(rec["timestamp"])
            if ts is None:
                ts = ts_cache[rec["timestamp"]] = parse_ts(rec["timestamp"], TZ)
            minute, rest = divmod(ts - T0_MS, 60_000)
            if not (0 <= s < sources and c >= 0 and rest == 0 and 0 <= minute < minutes):
                out["unexpected"] += 1
                continue
            key = (s * POINTS + c) * minutes + minute
            if seen[key]:
                out["duplicates"] += 1
            seen[key] = 1
            if rec.get("backfill") is not True:
                out["not_backfill"] += 1
            if rec["value"] != value_of(s, c, minute):
                out["bad_value"] += 1
            if ts < newest.get(s, ts):
                out["out_of_order"] += 1
            newest[s] = max(ts, newest.get(s, ts))
    out["missing"] = n - sum(seen)
    conn.send(out)


class Subscriber:
    def __init__(self, url: str, sources: int, minutes: int) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_child, args=(child, url, sources, minutes), daemon=True, name="edge-sub")
        self.proc.start()
        if not self.conn.poll(30) or self.conn.recv() != "ready":
            raise RuntimeError("subscriber did not start")

    def finish(self, timeout: float = 600) -> dict:
        self.conn.send("done")
        if not self.conn.poll(timeout):
            raise RuntimeError("subscriber did not report")
        out = self.conn.recv()
        self.proc.join(10)
        return out
