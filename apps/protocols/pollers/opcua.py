"""OPC UA (R-5.2.1.3): read configured nodes, or subscribe to their data changes, and turn values into
reading records (interfaces.md §1). asyncua; no Django here: the caller passes records on to
ingest_readings. Each record carries the value's source timestamp (the device's time) when the server
gives one, else the poll's start time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from asyncua import Client, ua


@dataclass(frozen=True)
class OpcuaPoint:
    node: str          # e.g. "ns=2;s=Meter1.Energy"
    data_code: str
    unit: str | None = None


def _record(source_id: str, point: OpcuaPoint, value, ts: datetime | None, fallback: datetime) -> dict:
    stamp = (ts or fallback).astimezone(UTC)
    rec = {"sourceId": source_id, "dataCode": point.data_code,
           "timestamp": stamp.isoformat(timespec="milliseconds"), "value": value,
           "status": "N"}
    if point.unit:
        rec["unit"] = point.unit
    return rec


def _status(dv) -> str:
    code = getattr(dv, "StatusCode", None)
    return "N" if code is None or code.is_good() else "D"


async def read_points(endpoint: str, source_id: str, points: list[OpcuaPoint], timeout: float = 5.0) -> list[dict]:
    """One poll: read every point's value (one Read request for all of them)."""
    started = datetime.now(UTC)
    async with Client(url=endpoint, timeout=timeout) as client:
        nodes = [client.get_node(p.node) for p in points]
        values = await client.read_attributes(nodes, ua.AttributeIds.Value)
    out = []
    for point, dv in zip(points, values, strict=True):
        rec = _record(source_id, point, dv.Value.Value, dv.SourceTimestamp, started)
        rec["status"] = _status(dv)
        out.append(rec)
    return out


async def read_history(endpoint: str, source_id: str, points: list[OpcuaPoint], since: datetime,
                       timeout: float = 5.0) -> list[dict]:
    """Every value the server's history holds for the points after ``since`` (HistoryRead raw, OPC UA
    Part 11): what an incremental pull fetches. A node without history gives its current value."""
    out = []
    async with Client(url=endpoint, timeout=timeout) as client:
        for point in points:
            node = client.get_node(point.node)
            try:
                values = await node.read_raw_history(starttime=since.astimezone(UTC).replace(tzinfo=None),
                                                     return_bounds=False)
            except ua.UaStatusCodeError:
                values = [await node.read_data_value()]
            for dv in values:
                ts = dv.SourceTimestamp.replace(tzinfo=UTC) if dv.SourceTimestamp else None
                if ts is not None and ts <= since:
                    continue
                rec = _record(source_id, point, dv.Value.Value, ts, datetime.now(UTC))
                rec["status"] = _status(dv)
                out.append(rec)
    return out


class _Handler:
    def __init__(self, source_id, by_node, on_records):
        self.source_id, self.by_node, self.on_records = source_id, by_node, on_records
        self.latencies: list[float] = []

    def datachange_notification(self, node, val, data):
        dv = data.monitored_item.Value
        point = self.by_node[node.nodeid.to_string()]
        rec = _record(self.source_id, point, val, dv.SourceTimestamp, datetime.now(UTC))
        rec["status"] = _status(dv)
        if dv.SourceTimestamp is not None:
            self.latencies.append(time.time() - dv.SourceTimestamp.replace(tzinfo=UTC).timestamp())
        self.on_records([rec])


class OpcuaSubscription:
    """Subscribe to data changes: ``on_records(list[dict])`` is called for each change. Use as
    ``async with OpcuaSubscription(...) as sub:``; ``sub.handler.latencies`` holds, per notification,
    the seconds from the server's source timestamp to its conversion into a record."""

    def __init__(self, endpoint: str, source_id: str, points: list[OpcuaPoint],
                 on_records: Callable[[list[dict]], None], period_ms: int = 200):
        self.endpoint, self.source_id, self.points = endpoint, source_id, points
        self.on_records, self.period_ms = on_records, period_ms
        self.client = Client(url=endpoint)
        self.handler = None

    async def __aenter__(self):
        await self.client.connect()
        nodes = [self.client.get_node(p.node) for p in self.points]
        self.handler = _Handler(self.source_id, {n.nodeid.to_string(): p for n, p in zip(nodes, self.points,
                                                                                         strict=True)},
                                self.on_records)
        sub = await self.client.create_subscription(self.period_ms, self.handler)
        await sub.subscribe_data_change(nodes)
        return self

    async def __aexit__(self, *exc):
        await self.client.disconnect()
