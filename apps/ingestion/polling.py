"""Platform-side polling (R-7.1.1.2): read a directly reachable device once and store what it gave
through ingest_readings. One driver per protocol; each returns reading records stamped with the
device's time or the poll's start time."""

from __future__ import annotations

import asyncio
import logging

from apps.core.db import database_unavailable
from apps.ingestion.services import IngestResult, ingest_readings

log = logging.getLogger("carbonpark.poller")


async def _opcua(source, settings: dict, mode: str, since) -> list[dict]:
    """Current values; plus, from servers that keep history, every value since the last stored reading
    (incremental) or over the last ``full_window_hours`` (full, default 24 h)."""
    from datetime import UTC, datetime, timedelta

    from asyncua import ua

    from apps.protocols.pollers.opcua import OpcuaPoint, read_history, read_points

    cfg = settings["opcua"]
    points = [OpcuaPoint(p["node"], p["data_code"], p.get("unit")) for p in cfg["nodes"]]
    timeout = cfg.get("timeout", 5)
    if mode == "full":
        since = datetime.now(UTC) - timedelta(hours=cfg.get("full_window_hours", 24))
    try:
        records = await read_points(cfg["endpoint"], source.source_id, points, timeout=timeout)
        if since is not None:
            records = await read_history(cfg["endpoint"], source.source_id, points, since, timeout=timeout) + records
    except (OSError, TimeoutError, ua.UaError) as exc:
        # An unreachable or refusing server is the device's state, not a bug: one line, the next poll retries.
        log.warning("OPC UA poll of %s at %s failed: %s", source.source_id, cfg["endpoint"],
                    str(exc) or type(exc).__name__)
        return []
    return records


async def _modbus_tcp(source, settings: dict, mode: str, since) -> list[dict]:
    """settings["modbus"] = {"host", "port", "unit", "map": "eastron-sdm630" | "points": [...],
    "codes": {point name: data code}}: the mapped points of one meter behind a Modbus TCP endpoint."""
    from dataclasses import replace

    from apps.protocols.codecs import modbus as codec
    from apps.protocols.pollers.modbus import ModbusDevice, ModbusPoller

    cfg = settings["modbus"]
    points = codec.load_map(codec.REGISTER_MAPS[cfg["map"]]) if cfg.get("map") else [
        codec.Point(**p) for p in cfg["points"]]
    codes = cfg.get("codes", {})
    points = [replace(p, data_code=codes.get(p.name, p.data_code)) for p in points]
    poller = ModbusPoller([ModbusDevice(cfg.get("unit", 1), source.source_id, points)], host=cfg["host"],
                          port=cfg.get("port", 502), timeout=cfg.get("timeout", 1.0))
    return await _poll_once(poller, source, "modbus")


async def _dlt645(source, settings: dict, mode: str, since) -> list[dict]:
    """settings["dlt645"] = {"host", "port", "address", "points": [{"di", "data_code", "unit"}]}: a meter
    behind a serial-to-TCP transparent gateway."""
    from apps.protocols.pollers.dlt645 import Dlt645Meter, Dlt645Poller, MeterPoint

    cfg = settings["dlt645"]
    meter = Dlt645Meter(cfg["address"], source.source_id, [MeterPoint(**p) for p in cfg["points"]])
    poller = Dlt645Poller([meter], host=cfg["host"], port=cfg["port"], timeout=cfg.get("timeout", 1.5))
    return await _poll_once(poller, source, "DL/T 645")


async def _poll_once(poller, source, protocol: str) -> list[dict]:
    """One poll of a one-device poller, closed afterwards; device errors are logged (the poller backs off)."""
    try:
        result = await poller.poll()
    finally:
        await poller.close()
    if result.errors:
        log.warning("%s poll of %s: %s", protocol, source.source_id, result.errors)
    return result.records


DRIVERS = {"opcua": _opcua, "modbus_tcp": _modbus_tcp, "dlt645": _dlt645}


def poll_source(source_pk: int, mode: str = "incremental") -> IngestResult:
    """Poll one source now and ingest its readings (R-7.1.1.2). Every mode reads the current values.
    "incremental" also fetches, from devices that keep history (OPC UA historians), everything since the
    source's last stored reading, so a platform outage leaves no gap; "full" fetches the device's whole
    recent history window. Meters that keep none (Modbus, DL/T 645) give their current values in both;
    repeats of stored readings are dropped by their identity."""
    from django.db.models import Max

    from apps.ingestion.models import Reading
    from apps.sources.models import DataSource

    if mode not in ("incremental", "full"):
        raise ValueError("mode is incremental or full")
    source = DataSource.objects.select_related("park").get(pk=source_pk)
    driver = DRIVERS.get(source.protocol)
    if driver is None:
        raise ValueError(f"no platform-side poller for protocol {source.protocol}")
    since = Reading.objects.filter(source=source).aggregate(last=Max("ts"))["last"] if mode == "incremental" else None
    try:
        records = asyncio.run(driver(source, source.settings or {}, mode, since))
    except Exception as exc:  # noqa: BLE001 - a device or its settings; the next poll tries again
        if database_unavailable(exc):
            raise
        log.error("E7202 %s poll of %s failed: %s: %s", source.protocol, source.source_id, type(exc).__name__, exc,
                  exc_info=exc)
        return IngestResult()
    return ingest_readings(records, channel="poller", actor=f"poller:{source.source_id}")
