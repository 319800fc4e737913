"""Platform-side polling (R-7.1.1.2): read a directly reachable device once and store what it gave
through ingest_readings. One driver per protocol; each returns reading records stamped with the
device's time or the poll's start time."""

from __future__ import annotations

import asyncio
import logging

from apps.ingestion.services import IngestResult, ingest_readings

log = logging.getLogger("carbonpark.poller")


async def _opcua(source, settings: dict) -> list[dict]:
    from apps.ingestion.channels.opcua import OpcuaPoint, read_points

    cfg = settings["opcua"]
    points = [OpcuaPoint(p["node"], p["data_code"], p.get("unit")) for p in cfg["nodes"]]
    return await read_points(cfg["endpoint"], source.source_id, points, timeout=cfg.get("timeout", 5))


DRIVERS = {"opcua": _opcua}


def poll_source(source_pk: int, mode: str = "full") -> IngestResult:
    """Poll one source now and ingest its readings. ``mode`` "full" reads every configured point;
    "incremental" reads the same points, and repeats of stored readings are dropped by their identity."""
    from apps.sources.models import DataSource

    source = DataSource.objects.select_related("park").get(pk=source_pk)
    driver = DRIVERS.get(source.protocol)
    if driver is None:
        raise ValueError(f"no platform-side poller for protocol {source.protocol}")
    records = asyncio.run(driver(source, source.settings or {}))
    return ingest_readings(records, channel="poller", actor=f"poller:{source.source_id}")
