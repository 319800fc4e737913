"""The readings: request bodies for the HTTP run, the same readings as stored rows for the raw run."""

from __future__ import annotations

from datetime import datetime, timedelta

from .common import ITEM_CODE, TS_BASE


def reading_at(i: int, sources: list) -> tuple[str, int, datetime, float]:
    sid, pk = sources[i % len(sources)]
    ts = TS_BASE + timedelta(minutes=i // len(sources))
    return sid, pk, ts, (i % 100_000) * 0.125 + 1.5


def make_bodies(n: int, batch: int, fx: dict, offset: int = 0) -> list[bytes]:
    """Request bodies, serialised now so that no client spends time on JSON while the clock runs."""
    import zoneinfo

    import orjson

    tz = zoneinfo.ZoneInfo(fx["tz"])
    sources = fx["sources"]
    bodies = []
    local_of: dict[datetime, str] = {}
    for start in range(offset, offset + n, batch):
        records = []
        for i in range(start, min(start + batch, offset + n)):
            sid, _pk, ts, value = reading_at(i, sources)
            local = local_of.get(ts)
            if local is None:
                local = local_of[ts] = ts.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S.000")
            records.append({"sourceId": sid, "dataCode": ITEM_CODE, "timestamp": local, "value": value,
                            "unit": "kWh", "status": "N"})
        bodies.append(orjson.dumps(records))
    return bodies


def make_rows(n: int, batch: int, fx: dict, now: datetime) -> list[list[tuple]]:
    """The same readings as stored rows (what normalize makes of the bodies above), per batch."""
    sources = fx["sources"]
    park, item = fx["park_pk"], fx["item_pk"]
    out = []
    for b, start in enumerate(range(0, n, batch)):
        rows = []
        for i in range(start, min(start + batch, n)):
            _sid, pk, ts, value = reading_at(i, sources)
            rows.append((park, pk, item, ts, value, None, None, "", "N", 0, "http", b + 1, now))
        out.append(rows)
    return out
